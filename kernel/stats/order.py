"""Exact order statistics (quantiles, medians) of Table columns without gathering the rows.

Each wanted rank starts with the interval [min, max]. A pass over the table counts, for
every open interval, its values in 1024 equal-width buckets; the bucket that holds the rank
becomes the next interval. Once an interval holds at most a few thousand values they are
gathered as they are and the rank is read off. So only bucket counts and small groups of
values ever reach the driver, whatever the number of rows, and the answer is exact (the
same value numpy's sort would give); a handful of passes suffice even on skewed data.

Quantiles use numpy's default "linear" definition (pandas' too): level q lies at rank
h = (n - 1) q between the values of ranks floor(h) and floor(h) + 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.computing import Table
from kernel.errors import InvalidArgument
from kernel.stats.columns import float_column
from kernel.stats.constants import REFINE_BUCKETS, REFINE_GATHER_LIMIT, REFINE_MAX_PASSES

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass
class _Search:
    """Where one rank of one column is being looked for."""

    column: str
    rank: int
    low: float
    high: float
    closed: bool  # whether `high` itself belongs to the interval
    below: int  # values of the column under `low`
    inside: int  # values in the interval
    answer: float | None = None
    stalled: bool = False  # the last pass could not narrow the interval (a few floats wide)


# What a block reports for one open search: bucket counts, or the interval's distinct
# values with how often each occurs.
_Partial = IntArray | tuple[FloatArray, IntArray]


def _in_interval(values: FloatArray, low: float, high: float, closed: bool) -> npt.NDArray[np.bool_]:
    upper = values <= high if closed else values < high
    return np.asarray((values >= low) & upper)


def _bucket_edges(search: _Search) -> FloatArray:
    return np.linspace(search.low, search.high, REFINE_BUCKETS + 1)


def _pass_function(plan: list[tuple[str, float, float, bool, bool]]) -> Callable[[pa.Table], list[_Partial]]:
    """The block function of one pass; `plan` holds plain values so Spark can ship it."""

    def partial(block: pa.Table) -> list[_Partial]:
        cache: dict[str, FloatArray] = {}
        out: list[_Partial] = []
        for column, low, high, closed, gather in plan:
            if column not in cache:
                cache[column] = float_column(block, column)
            values = cache[column]
            chosen = values[_in_interval(values, low, high, closed)]
            if gather:
                distinct, repeats = np.unique(chosen, return_counts=True)
                out.append((distinct, repeats.astype(np.int64)))
            else:
                edges = np.linspace(low, high, REFINE_BUCKETS + 1)
                index = np.clip(np.searchsorted(edges, chosen, side="right") - 1, 0, REFINE_BUCKETS - 1)
                out.append(np.bincount(index, minlength=REFINE_BUCKETS).astype(np.int64))
        return out

    return partial


def _merge_partials(a: list[_Partial], b: list[_Partial]) -> list[_Partial]:
    merged: list[_Partial] = []
    for left, right in zip(a, b, strict=True):
        if isinstance(left, tuple) and isinstance(right, tuple):
            merged.append((np.concatenate([left[0], right[0]]), np.concatenate([left[1], right[1]])))
        elif isinstance(left, np.ndarray) and isinstance(right, np.ndarray):
            merged.append(left + right)
        else:
            raise InvalidArgument("order statistics: blocks answered one pass differently")
    return merged


def _gathers(search: _Search) -> bool:
    return search.inside <= REFINE_GATHER_LIMIT or search.stalled


def _advance(search: _Search, partial: _Partial) -> None:
    """Narrow the search with one pass's bucket counts, or answer it from gathered values."""
    position = search.rank - search.below
    if isinstance(partial, tuple):
        values, repeats = partial
        distinct, inverse = np.unique(values, return_inverse=True)
        cumulative = np.cumsum(np.bincount(inverse, weights=repeats, minlength=len(distinct)))
        if not len(cumulative) or int(cumulative[-1]) != search.inside:
            raise InvalidArgument(f"order statistics of {search.column!r}: the table changed between passes")
        search.answer = float(distinct[int(np.searchsorted(cumulative, position, side="right"))])
        return
    counts = np.asarray(partial, dtype=np.int64)
    cumulative = np.cumsum(counts)
    if cumulative[-1] != search.inside:
        raise InvalidArgument(f"order statistics of {search.column!r}: the table changed between passes")
    bucket = int(np.searchsorted(cumulative, position, side="right"))
    edges = _bucket_edges(search)
    low, high = float(edges[bucket]), float(edges[bucket + 1])
    closed = search.closed if bucket == REFINE_BUCKETS - 1 else False
    inside = int(counts[bucket])
    search.stalled = (low, high, inside) == (search.low, search.high, search.inside)
    search.below += int(cumulative[bucket - 1]) if bucket else 0
    search.low, search.high, search.closed, search.inside = low, high, closed, inside
    if low == high:
        search.answer = low


def order_statistics(
    table: Table, ranks: Mapping[str, Sequence[int]], counts: Mapping[str, int],
    mins: Mapping[str, float], maxs: Mapping[str, float],
) -> dict[str, dict[int, float]]:
    """The value at each 0-based `rank` of each column's sorted present values.

    `counts`, `mins` and `maxs` come from the column's moments (one pass already made).
    """
    searches: list[_Search] = []
    for column, wanted in ranks.items():
        for rank in sorted(set(wanted)):
            if not 0 <= rank < counts[column]:
                raise InvalidArgument(f"order statistics of {column!r}: rank {rank} outside 0..{counts[column] - 1}")
            search = _Search(column, rank, mins[column], maxs[column], True, 0, counts[column])
            if search.low == search.high:
                search.answer = search.low
            searches.append(search)
    for _ in range(REFINE_MAX_PASSES):
        open_searches = [s for s in searches if s.answer is None]
        if not open_searches:
            break
        plan = [(s.column, s.low, s.high, s.closed, _gathers(s)) for s in open_searches]
        partials = table.reduce(_pass_function(plan), _merge_partials)
        for search, partial in zip(open_searches, partials, strict=True):
            _advance(search, partial)
    result: dict[str, dict[int, float]] = {column: {} for column in ranks}
    for search in searches:
        if search.answer is None:
            raise InvalidArgument(f"order statistics of {search.column!r}: no answer after {REFINE_MAX_PASSES} passes")
        result[search.column][search.rank] = search.answer
    return result


def quantile_ranks(count: int, levels: Sequence[float]) -> list[int]:
    """The ranks the linear quantiles of `levels` need over `count` values."""
    ranks: set[int] = set()
    for level in levels:
        position = (count - 1) * level
        lower = int(math.floor(position))
        ranks.add(lower)
        ranks.add(min(lower + 1, count - 1))
    return sorted(ranks)


def linear_quantile(count: int, level: float, values: Mapping[int, float]) -> float:
    """Level `level` from the values at its two ranks (numpy's linear method)."""
    position = (count - 1) * level
    lower = int(math.floor(position))
    upper = min(lower + 1, count - 1)
    fraction = position - lower
    low, high = values[lower], values[upper]
    return low + (high - low) * fraction if fraction else low


def quantiles(
    table: Table, levels: Mapping[str, Sequence[float]], counts: Mapping[str, int],
    mins: Mapping[str, float], maxs: Mapping[str, float],
) -> dict[str, list[float | None]]:
    """Exact linear quantiles of each column at its levels (None for a column with no value)."""
    present = {c: lv for c, lv in levels.items() if counts[c] > 0}
    ranks = {c: quantile_ranks(counts[c], lv) for c, lv in present.items()}
    found = order_statistics(table, ranks, counts, mins, maxs)
    result: dict[str, list[float | None]] = {}
    for column, wanted in levels.items():
        if column not in present:
            result[column] = [None] * len(wanted)
        else:
            result[column] = [linear_quantile(counts[column], q, found[column]) for q in wanted]
    return result
