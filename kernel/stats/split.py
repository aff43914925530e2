"""Split keys: a reproducible uniform key per row id, and exact per-stratum thresholds on it.

Row i's key is SplitMix64(XXH3-64(str(id)) xor seed) scaled to [0, 1), so any member holding
the same id and seed computes the same key without exchanging rows. Parts are cut on the
keys stratum by stratum: with cumulative counts c_1 < c_2 < ... of a stratum of n rows, the
rows whose key ranks below c_1 form part 0, those from c_1 to c_2 part 1, and so on. The
thresholds are the keys at those ranks, found by exact order statistics (kernel/stats/order),
so every part holds exactly its share of each stratum and no row leaves the executors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from kernel.computing import Table
from kernel.errors import InvalidArgument
from kernel.stats.constants import ABOVE_ALL_KEYS, ALL_ROWS, MAX_STRATA
from kernel.stats.counts import block_value_counts, merge_value_counts
from kernel.stats.distinct import splitmix64
from kernel.stats.moments import block_moments, merge_table_moments
from kernel.stats.order import order_statistics

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]



def row_keys(ids: pa.Array | pa.ChunkedArray, seed: int) -> FloatArray:
    """The uniform [0, 1) key of every id for `seed`."""
    texts = pc.cast(ids, pa.string()).to_pylist()
    digests = np.fromiter((xxhash.xxh3_64_intdigest(t.encode("utf-8")) for t in texts), dtype=np.uint64,
                          count=len(texts))
    mixed = splitmix64(digests ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF))
    return np.ldexp((mixed >> np.uint64(11)).astype(np.float64), -53)


def cumulative_counts(rows: int, fractions: Sequence[float]) -> list[int]:
    """Rows before the end of each part: cumulative shares of `rows`, rounded (a last end at
    a share of 1 takes every row, so rounding never drops one)."""
    ends, running = [], 0.0
    for fraction in fractions:
        running += fraction
        ends.append(rows if running > 1.0 - 1e-9 else int(round(rows * running)))
    return ends


def strata_of(block: pa.Table, label: str | None) -> list[Any]:
    """The stratum of every row: its label value, or the one stratum when not stratified."""
    if label is None:
        return [ALL_ROWS] * block.num_rows
    values: list[Any] = block.column(label).to_pylist()
    return values


def stratum_thresholds(
    table: Table, label: str | None, fractions: Mapping[Any, Sequence[float]] | Sequence[float], seed: int,
) -> tuple[dict[Any, list[float]], dict[Any, list[int]]]:
    """Per stratum, the key thresholds that cut it into parts of the given fractions, and the part sizes.

    `fractions` is one list for every stratum, or a list per label value (strata without one
    keep no row in any part).
    """
    id_column = table.id_column
    if label is None:
        sizes = {ALL_ROWS: table.count()}
    else:
        counts = table.select([label]).reduce(
            lambda block: block_value_counts(block, [label], MAX_STRATA, "stratified split"),
            lambda a, b: merge_value_counts(a, b, MAX_STRATA, "stratified split"),
        )[label]
        nulls = table.select([label]).reduce(lambda block: block.column(label).null_count, lambda a, b: a + b)
        if nulls:
            raise InvalidArgument(f"stratified split: label column {label!r} has {nulls} missing values")
        sizes = dict(counts)
    per_stratum = fractions if isinstance(fractions, Mapping) else {s: fractions for s in sizes}
    strata = sorted(sizes, key=str)
    slots = {s: f"k{i}" for i, s in enumerate(strata)}

    def keys_by_stratum(block: pa.Table) -> pa.Table:
        keys = row_keys(block.column(id_column), seed)
        which = strata_of(block, label)
        columns: dict[str, Any] = {id_column: block.column(id_column)}
        for stratum, slot in slots.items():
            mask = np.fromiter((w == stratum for w in which), dtype=bool, count=len(which))
            columns[slot] = pa.array(np.where(mask, keys, np.nan))
        return pa.table(columns)

    schema = pa.schema([table.schema.field(id_column), *[pa.field(slot, pa.float64()) for slot in slots.values()]])
    keyed = table.map_partitions(keys_by_stratum, schema=schema)
    moments = keyed.reduce(lambda block: block_moments({s: block.column(s).to_numpy(zero_copy_only=False)
                                                        for s in slots.values()}), merge_table_moments)
    ends = {s: cumulative_counts(sizes[s], per_stratum.get(s, [])) if per_stratum.get(s) else [] for s in strata}
    ranks = {slots[s]: [e for e in ends[s] if 0 < e < sizes[s]] for s in strata}
    found = order_statistics(keyed, ranks, {slots[s]: sizes[s] for s in strata},
                             {slots[s]: moments[slots[s]].min for s in strata},
                             {slots[s]: moments[slots[s]].max for s in strata})
    thresholds: dict[Any, list[float]] = {}
    part_sizes: dict[Any, list[int]] = {}
    for stratum in strata:
        values = found.get(slots[stratum], {})
        cut = []
        for end in ends[stratum]:
            cut.append(0.0 if end == 0 else ABOVE_ALL_KEYS if end >= sizes[stratum] else values[end])
        thresholds[stratum] = cut
        part_sizes[stratum] = [b - a for a, b in zip([0, *ends[stratum][:-1]], ends[stratum], strict=True)]
    return thresholds, part_sizes


def assign_parts(keys: FloatArray, strata: Sequence[Any], thresholds: Mapping[Any, Sequence[float]]) -> IntArray:
    """The part of every row (-1: in no part) from its key, its stratum and the thresholds."""
    parts = np.full(len(keys), -1, dtype=np.int64)
    which = np.asarray(strata, dtype=object)
    for stratum, cut in thresholds.items():
        mask = which == stratum
        if not cut or not mask.any():
            continue
        index = np.searchsorted(np.asarray(cut, dtype=np.float64), keys[mask], side="right")
        parts[mask] = np.where(index < len(cut), index, -1)
    return parts
