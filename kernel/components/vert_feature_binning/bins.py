"""Bin edges, bin indices, and WOE / IV from per-bin event counts (plain numpy).

A feature with inner edges e_1 < ... < e_{B-1} has B value bins, bin i holding
e_i <= x < e_{i+1} (bin 0 everything below e_1, the last everything from e_{B-1} up), and
one more bin, index B, for missing values (NaN). So a feature has len(edges) + 2 bins.

WOE of bin i is ln(event share / non-event share), where the event share is the bin's
events over all events (label 1) and the non-event share likewise for label 0. A bin with
no events or no non-events gets `adjustment` added to both of its counts first. Empty bins
have WOE 0 and add nothing to IV = sum over bins of (event share - non-event share) * WOE.

On a Table (`table_edges`, `table_bin_counts`) the same edges and counts come from
aggregates: per feature the count, lowest and highest present value (one pass), the exact
order statistics the quantile levels need (`kernel.stats.order`: bucket counts narrowed
pass by pass), and per feature and bin the rows and events. No row reaches the driver.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.computing import Table
from kernel.stats.columns import float_column
from kernel.stats.order import order_statistics

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# Per feature: present values, lowest and highest.
Extent = dict[str, tuple[int, float, float]]


def bin_edges(values: FloatArray, method: str, bin_num: int) -> FloatArray:
    """Inner edges: equal-frequency ("quantile") or equal-width ("bucket"); duplicates merged."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return np.zeros(0)
    levels = np.arange(1, bin_num) / bin_num
    if method == "quantile":
        edges = np.quantile(present, levels)
    else:
        low, high = float(present.min()), float(present.max())
        edges = low + (high - low) * levels
    edges = np.unique(edges)
    # An edge at the minimum would leave bin 0 empty.
    result: FloatArray = edges[edges > present.min()]
    return result


def bin_indices(values: FloatArray, edges: FloatArray) -> IntArray:
    """The bin of every value; NaN goes to the missing bin, len(edges) + 1."""
    index = np.searchsorted(edges, values, side="right").astype(np.int64)
    index[np.isnan(values)] = len(edges) + 1
    return index


def woe_iv(events: IntArray, counts: IntArray, adjustment: float) -> tuple[FloatArray, float]:
    """WOE per bin and the feature's IV from event and row counts per bin."""
    events_f = events.astype(np.float64)
    non_events_f = (counts - events).astype(np.float64)
    total_events, total_non_events = events_f.sum(), non_events_f.sum()
    if total_events == 0 or total_non_events == 0:
        return np.zeros(len(counts)), 0.0
    needs = (events_f == 0) | (non_events_f == 0)
    adjusted_events = np.where(needs, events_f + adjustment, events_f)
    adjusted_non_events = np.where(needs, non_events_f + adjustment, non_events_f)
    event_share = adjusted_events / total_events
    non_event_share = adjusted_non_events / total_non_events
    occupied = counts > 0
    woe = np.where(occupied, np.log(event_share / non_event_share), 0.0)
    iv = float(np.sum(np.where(occupied, (event_share - non_event_share) * woe, 0.0)))
    return woe, iv


def _lerp(low: float, high: float, fraction: float) -> float:
    """numpy's linear interpolation of a quantile between two order statistics."""
    step = high - low
    return high - step * (1 - fraction) if fraction >= 0.5 else low + step * fraction


def _edges_from(extent: tuple[int, float, float], method: str, bin_num: int,
                ranks: dict[int, float]) -> FloatArray:
    count, low, high = extent
    if count == 0:
        return np.zeros(0)
    levels = np.arange(1, bin_num) / bin_num
    if method == "quantile":
        positions = (count - 1) * levels
        edges = np.array([ranks[count - 1] if position >= count - 1 else _lerp(
            ranks[math.floor(position)], ranks[math.floor(position) + 1], float(position - math.floor(position)))
            for position in positions.tolist()], dtype=np.float64)
    else:
        edges = low + (high - low) * levels
    edges = np.unique(edges)
    result: FloatArray = edges[edges > low]
    return result


def _extent(features: tuple[str, ...], block: pa.Table) -> Extent:
    out: Extent = {}
    for name in features:
        values = float_column(block, name)
        present = values[~np.isnan(values)]
        out[name] = (len(present), float(present.min()) if len(present) else math.inf,
                     float(present.max()) if len(present) else -math.inf)
    return out


def _merge_extents(a: Extent, b: Extent) -> Extent:
    return {name: (a[name][0] + b[name][0], min(a[name][1], b[name][1]), max(a[name][2], b[name][2])) for name in a}


def _quantile_ranks(count: int, bin_num: int) -> list[int]:
    ranks: set[int] = set()
    for position in ((count - 1) * (np.arange(1, bin_num) / bin_num)).tolist():
        lower = min(math.floor(position), count - 1)
        ranks.update((lower, min(lower + 1, count - 1)))
    return sorted(ranks)


def table_edges(table: Table, features: list[str], method: str, bin_num: int) -> dict[str, FloatArray]:
    """`bin_edges` of every feature over every row of `table`, from aggregates."""
    extent = table.select(features).reduce(functools.partial(_extent, tuple(features)), _merge_extents)
    found: dict[str, dict[int, float]] = {}
    if method == "quantile":
        wanted = {name: _quantile_ranks(extent[name][0], bin_num) for name in features if extent[name][0] > 0}
        found = order_statistics(table, wanted, {n: extent[n][0] for n in wanted},
                                 {n: extent[n][1] for n in wanted}, {n: extent[n][2] for n in wanted})
    return {name: _edges_from(extent[name], method, bin_num, found.get(name, {})) for name in features}


Counts = dict[str, tuple[IntArray, IntArray]]


def _counts(edges: dict[str, FloatArray], label: str | None, block: pa.Table) -> Counts:
    events_per_row = float_column(block, label) if label is not None else np.zeros(block.num_rows)
    out: Counts = {}
    for name, inner in edges.items():
        index = bin_indices(float_column(block, name), inner)
        width = len(inner) + 2
        out[name] = (np.bincount(index, minlength=width).astype(np.int64),
                     np.bincount(index, weights=events_per_row, minlength=width).astype(np.int64))
    return out


def _merge_counts(a: Counts, b: Counts) -> Counts:
    return {name: (a[name][0] + b[name][0], a[name][1] + b[name][1]) for name in a}


def table_bin_counts(table: Table, edges: dict[str, FloatArray], label: str | None) -> Counts:
    """Per feature, the rows and the events (label 1; zeros without a label) in each bin."""
    columns = [*edges, *([label] if label is not None and label not in edges else [])]
    result: Counts = table.select(columns).reduce(functools.partial(_counts, edges, label), _merge_counts)
    return result
