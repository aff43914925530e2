"""VertSecureBoost's rows where they are: a shared row index, bins, and per-partition sums and comparisons.

Every member keys each row by a 64-bit hash of its id, on the workers, and sorts the rows
by key there: a row's *index* is the rank of its key, the same at every member holding the
same ids, found from one (first key, last key, rows) triple per block of sorted rows; the
members compare an order-free digest of their id sets to check that they hold the same. The index names the row in what crosses between
members (the promoter's encrypted gradients, a level's streams of rows) and is a column of
the partitions.

The features stay in the partitions. Bin thresholds come from a bounded sample (the rows
of the `BIN_SAMPLE_ROWS` smallest keys; every row of a smaller table), gathered a few
features at a time. Histograms are built partition by partition and added; a split's or a
prediction's comparisons are answered by the partitions holding the asked rows. What
reaches a driver per call is a histogram (nodes x bins per feature), one answer per asked
row (a provider's level of at most one message, or LOCAL) or a few numbers per tied
candidate, never a feature matrix; a SPARK provider's answers are a table of the
partitions, streamed. (The promoter's rows are in `state`.)

A provider's encrypted gradients of a tree sit either in its process as one vector
(`DriverGradients`, LOCAL) or, received chunk by chunk into a table of row index and
ciphertext, joined with the drawn rows in the partitions (`PartitionGradients`, SPARK):
there each row's ciphertext is read where the row is, and no driver holds them all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from gmpy2 import mpz

from kernel.blocks.row_chunks import id_digest
from kernel.blocks.row_keys import id_keys
from kernel.components.vert_secureboost.constants import (
    BIN_SAMPLE_ROWS,
    BIN_SAMPLE_VALUES_PER_PASS,
    COMPONENT,
    PRODUCT_WORKERS,
    ROW_INDEX_COLUMN,
)
from kernel.components.vert_secureboost.data import (
    BinArray,
    FloatArray,
    IntArray,
    bin_counts,
    bin_matrix,
    feature_matrix,
    fit_bins,
)
from kernel.components.vert_secureboost.gradients import GradientEncoding
from kernel.components.vert_secureboost.histogram import build_histograms
from kernel.components.vert_secureboost.level_rows import (
    LEFT_COLUMN,
    PAIR_COLUMN,
    POSITION_COLUMN,
    SPLIT_COLUMN,
    TieSummary,
    tie_summary,
)
from kernel.computing import Table
from kernel.constants import BACKEND_LOCAL
from kernel.errors import InvalidArgument
from kernel.security.paillier import EncryptedVector

BoolArray = npt.NDArray[np.bool_]
T = TypeVar("T")

# Name of the column of a tree's drawn rows holding each row's encrypted g/h, and the
# schema of the table of them a provider receives (row index, ciphertext bytes).
GH_COLUMN: Final = "__weft_secureboost_gh"
# Each row's key while the rows are numbered (dropped after).
KEY_COLUMN: Final = "__weft_secureboost_key"
GH_SCHEMA: Final = pa.schema([pa.field(ROW_INDEX_COLUMN, pa.int64()), pa.field(GH_COLUMN, pa.binary())])


#: Runs of sorted keys, one per block: first key, last key, rows, whether a key repeats inside.
Runs = tuple[IntArray, IntArray, IntArray, BoolArray]


def _add_key(id_column: str, block: pa.Table) -> pa.Table:
    return block.append_column(KEY_COLUMN, pa.array(id_keys(id_column, block), pa.int64()))


def _keys(block: pa.Table) -> IntArray:
    return np.asarray(block.column(KEY_COLUMN).to_numpy(), dtype=np.int64)


def _run_of_block(block: pa.Table) -> Runs:
    keys = np.sort(_keys(block))
    if not len(keys):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=np.bool_)
    repeats = bool(len(keys) > 1 and (keys[1:] == keys[:-1]).any())
    return (np.array([keys[0]]), np.array([keys[-1]]), np.array([len(keys)], dtype=np.int64),
            np.array([repeats]))


def _concat_runs(a: Runs, b: Runs) -> Runs:
    return (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]), np.concatenate([a[2], b[2]]),
            np.concatenate([a[3], b[3]]))


def _index_by_run(firsts: IntArray, offsets: IntArray, block: pa.Table) -> pa.Table:
    """The block's rows (a run of the sorted keys) with their index: the run's offset plus each
    key's rank within the run; the key column dropped."""
    keys = _keys(block)
    run = int(np.searchsorted(firsts, keys.min()))
    rank = np.empty(len(keys), dtype=np.int64)
    rank[np.argsort(keys, kind="stable")] = np.arange(len(keys))
    rows = block.drop_columns([KEY_COLUMN])
    return rows.append_column(ROW_INDEX_COLUMN, pa.array(offsets[run] + rank, pa.int64()))


def reduce_blocks(table: Table, map_fn: Callable[[pa.Table], T], reduce_fn: Callable[[T, T], T]) -> T:
    """`table.reduce`, except that LOCAL blocks are taken in the calling thread, one after the
    other: members run in one process share the LOCAL thread pool, where one member's level
    would wait behind the other's histograms, and a histogram's parallel work is already on
    the security kernel's worker processes."""
    if table.backend != BACKEND_LOCAL:
        return table.reduce(map_fn, reduce_fn)
    values = [map_fn(block) for block in table.iter_blocks()]
    if not values:
        return map_fn(table.schema.empty_table())
    return functools.reduce(reduce_fn, values)


def _index(block: pa.Table) -> IntArray:
    return np.asarray(block.column(ROW_INDEX_COLUMN).to_numpy(), dtype=np.int64)


@dataclass(frozen=True)
class IndexedRows:
    """A member's rows with their index column: `rows` of them, `digest` of their sorted keys.

    `unique` is false when two rows share a key (a repeated id): such rows cannot be told
    apart, so the caller refuses to train on them once the members have compared digests.
    """

    table: Table
    rows: int
    digest: str
    unique: bool

    @classmethod
    def build(cls, table: Table, columns: list[str]) -> IndexedRows:
        """`columns` of `table` (the id first) plus the row index, the rank of the row's key.

        The rows are sorted by key where they are, so that every block holds a run of the
        sorted keys; the driver receives one (first key, last key, rows) per block and hands
        each block the count of rows in the blocks before it. The id set is compared by an
        order-free digest (`id_digest`).
        """
        selected = table.select(columns)
        keyed = selected.map_partitions(functools.partial(_add_key, table.id_column),
                                        schema=selected.schema.append(pa.field(KEY_COLUMN, pa.int64())))
        ordered = keyed.sort_by(KEY_COLUMN).cache()
        firsts, lasts, counts, repeats = reduce_blocks(ordered, _run_of_block, _concat_runs)
        order = np.argsort(firsts, kind="stable")
        firsts, lasts, counts = firsts[order], lasts[order], counts[order]
        unique = not (bool(repeats.any()) or bool((lasts[:-1] >= firsts[1:]).any()))
        offsets = np.cumsum(counts) - counts
        schema = selected.schema.append(pa.field(ROW_INDEX_COLUMN, pa.int64()))
        indexed = ordered.map_partitions(functools.partial(_index_by_run, firsts, offsets), schema=schema)
        rows, digest = id_digest(selected)
        return cls(indexed, rows, digest, unique)

    def check_unique(self) -> None:
        """Refuse rows that share an id."""
        if not self.unique:
            raise InvalidArgument(f"{COMPONENT}: two rows share one id; run Intersection first")

    # -- values gathered by row index -------------------------------------------------------

    def column(self, name: str) -> FloatArray:
        """One numeric column as a float vector in row-index order (the promoter's label)."""
        pairs = reduce_blocks(self.table, functools.partial(_column_pairs, name), _concat_pairs)
        out = np.zeros(self.rows)
        out[pairs[0]] = pairs[1]
        return out

    def bin_thresholds(self, features: list[str], max_bin: int) -> list[FloatArray]:
        """Every feature's thresholds (`data.bin_thresholds`) over the sample rows: index below
        `BIN_SAMPLE_ROWS`, gathered at most `BIN_SAMPLE_VALUES_PER_PASS` values a pass."""
        sample = min(self.rows, BIN_SAMPLE_ROWS)
        per_pass = max(1, BIN_SAMPLE_VALUES_PER_PASS // max(sample, 1))
        thresholds: list[FloatArray] = []
        for start in range(0, len(features), per_pass):
            chunk = features[start:start + per_pass]
            values = reduce_blocks(self.table, functools.partial(_sample_values, chunk, sample), _stack)
            thresholds += fit_bins(values, max_bin)
        return thresholds

    def binned(self, features: list[str], thresholds: list[FloatArray]) -> BinnedRows:
        """The rows' bin of every feature, computed and kept in the partitions."""
        fields = [pa.field(self.table.id_column, self.table.schema.field(self.table.id_column).type),
                  pa.field(ROW_INDEX_COLUMN, pa.int64())] + [pa.field(f, pa.int16()) for f in features]
        table = self.table.map_partitions(functools.partial(_bin_block, self.table.id_column, features, thresholds),
                                          schema=pa.schema(fields)).cache()
        return BinnedRows(table, self.rows, features, bin_counts(thresholds))

    def compare(self, features: list[str], rows: IntArray, feature: IntArray, limit: FloatArray) -> BoolArray:
        """For every j: is the value of `features[feature[j]]` at row `rows[j]` <= `limit[j]`?"""
        return _compare(self.table, features, self.rows, rows, feature, limit)

    def directions(self, features: list[str], requests: Table, known: IntArray, feature: IntArray,
                   limit: FloatArray) -> Table:
        """(pair, goes left) of every (pair, row index, split id) of `requests`: whether the
        value of `features[feature[s]]` at the row is <= `limit[s]`, where `s` is the split id's
        place in `known` (sorted); joined with the rows by row index where they are."""
        used = np.unique(feature)
        names = [features[f] for f in used.tolist()] or features[:1]
        rows = self.table.with_id_column(ROW_INDEX_COLUMN).select(names)
        joined = rows.join(requests.with_id_column(ROW_INDEX_COLUMN))
        schema = pa.schema([pa.field(PAIR_COLUMN, pa.int64()), pa.field(LEFT_COLUMN, pa.bool_())])
        return joined.with_id_column(PAIR_COLUMN).map_partitions(
            functools.partial(_predict_block, names, np.searchsorted(used, feature), known, limit), schema=schema)


def _column_pairs(name: str, block: pa.Table) -> tuple[IntArray, FloatArray]:
    values = np.asarray(pc.cast(block.column(name), pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    return _index(block), values


def _concat_pairs(a: tuple[IntArray, FloatArray], b: tuple[IntArray, FloatArray]) -> tuple[IntArray, FloatArray]:
    return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])


def _sample_values(features: list[str], sample: int, block: pa.Table) -> FloatArray:
    keep = _index(block) < sample
    result: FloatArray = feature_matrix(block.filter(pa.array(keep)), features)
    return result


def _stack(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.concatenate([a, b])


def _bin_block(id_column: str, features: list[str], thresholds: list[FloatArray], block: pa.Table) -> pa.Table:
    binned = bin_matrix(feature_matrix(block, features), thresholds)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        id_column: block.column(id_column), ROW_INDEX_COLUMN: block.column(ROW_INDEX_COLUMN)}
    for j, name in enumerate(features):
        # int16 holds every bin (max_bin <= 1024) and is a type Spark keeps as it is.
        columns[name] = pa.array(binned[:, j].astype(np.int16))
    return pa.table(columns)


def _bins_of(block: pa.Table, columns: list[str]) -> BinArray:
    if not columns:
        return np.zeros((block.num_rows, 0), dtype=np.uint16)
    return np.column_stack([np.asarray(block.column(c).to_numpy(), dtype=np.uint16) for c in columns])


@dataclass(frozen=True)
class BinnedRows:
    """A member's binned rows (kept in the partitions) and the bin count of every feature."""

    table: Table
    rows: int
    features: list[str]
    bins: IntArray

    def processes(self, workers: int) -> int:
        """Worker processes of one partition's histogram: LOCAL partitions share this process's
        pool; a Spark task is one core already."""
        return workers if self.table.backend == BACKEND_LOCAL else 1

    def gradients_here(self, chunks: Iterable[tuple[IntArray, EncryptedVector]]) -> DriverGradients:
        """A tree's encrypted g/h, chunks of (drawn rows, ciphertexts), as one vector in this
        process: for LOCAL rows, whose blocks are in this process too."""
        parts = list(chunks)
        vector = EncryptedVector.concatenate([gh for _, gh in parts])
        cipher_of_row = np.full(self.rows, -1, dtype=np.int64)
        cipher_of_row[np.concatenate([rows for rows, _ in parts])] = np.arange(len(vector))
        return DriverGradients(self, vector, cipher_of_row)

    def gradients_beside(self, gradients: Table, encoding: GradientEncoding, count: int,
                         slots: IntArray) -> PartitionGradients:
        """The drawn rows of a tree (the `count` rows of `gradients`, a table of row index and
        ciphertext) with their bins of features `slots` and their ciphertexts, joined by row
        index in the partitions and cached for the tree's levels."""
        binned = self.table.with_id_column(ROW_INDEX_COLUMN).select([self.features[s] for s in slots.tolist()])
        joined = binned.join(gradients.with_id_column(ROW_INDEX_COLUMN))
        # Rebalanced: the join decides its own partitions, and every level's histograms work per partition.
        joined = joined.repartition(self.table.num_partitions).cache()
        return PartitionGradients(joined, self.features, self.bins, encoding, count)

    def compare(self, rows: IntArray, feature: IntArray, limit: FloatArray) -> BoolArray:
        """For every j: is the bin of feature `feature[j]` at row `rows[j]` <= `limit[j]`?"""
        return _compare(self.table, self.features, self.rows, rows, feature, limit)

    def at_positions(self, level: Level, features: IntArray) -> LevelRows:
        """The rows with their bins of `features` and their positions in `level`: joined with
        its table by row index where the rows are, or handed its pairs."""
        binned = self.table.with_id_column(ROW_INDEX_COLUMN).select([self.features[f] for f in features.tolist()])
        if isinstance(level, Table):
            return LevelRows(binned.join(level.with_id_column(ROW_INDEX_COLUMN)), None)
        return LevelRows(binned, level)

    def tie_summaries(self, level: LevelRows, nodes: IntArray, ends: IntArray, features: IntArray,
                      bins: IntArray) -> dict[int, list[TieSummary]]:
        """For the i-th of `nodes` (positions) with its candidates `ends[i-1]:ends[i]` of
        `features` and `bins`, when there are two or more: every partition's `tie_summary`
        over its rows of the node (`level` from `at_positions`)."""
        columns = [self.features[f] for f in features.tolist()]
        return reduce_blocks(level.table, functools.partial(_tie_block, nodes, ends, columns, bins, level.pairs),
                       _merge_summaries)

    def directions(self, level: LevelRows, nodes: IntArray, features: IntArray, bins: IntArray,
                   positions: int) -> Table:
        """(row index, goes left) of every row of `level` (from `at_positions`) in one of
        `nodes` (positions, of `positions` in the level), node i split by feature
        `features[i]` at bin `bins[i]`, computed where the rows are."""
        columns = [self.features[f] for f in features.tolist()]
        schema = pa.schema([pa.field(ROW_INDEX_COLUMN, pa.int64()), pa.field(LEFT_COLUMN, pa.bool_())])
        return level.table.map_partitions(
            functools.partial(_direction_block, nodes, columns, bins, positions, level.pairs), schema=schema)


#: A level's (row index, node position) pairs at a provider: a table of the partitions, or,
#: when they came in one message, the increasing row indices and their positions.
Pairs = tuple[IntArray, IntArray]
Level = Table | Pairs


@dataclass(frozen=True)
class LevelRows:
    """A provider's rows for a level: `table` holds the position column when `pairs` is None,
    else each row's position is looked up in `pairs` (-1: in no open node)."""

    table: Table
    pairs: Pairs | None


def gathered_directions(directions: Table) -> tuple[IntArray, BoolArray]:
    """The rows and answers of a table from `BinnedRows.directions`, gathered (for a level whose
    rows came in one message, so no more rows than that)."""
    return reduce_blocks(directions, _direction_arrays, _concat_answers)


def _direction_arrays(block: pa.Table) -> tuple[IntArray, BoolArray]:
    return _index(block), np.asarray(block.column(LEFT_COLUMN).to_numpy(zero_copy_only=False), dtype=np.bool_)


@dataclass(frozen=True)
class DriverGradients:
    """A tree's encrypted g/h as one vector in this process: row i's ciphertext is
    `vector[cipher_of_row[i]]` (-1: not drawn). For LOCAL rows only: the histograms take the
    chosen rows of every block into one call, which deals the feature groups to the worker
    processes once for the level."""

    binned: BinnedRows
    vector: EncryptedVector
    cipher_of_row: IntArray

    @property
    def encoding(self) -> GradientEncoding:
        assert self.vector.layout is not None
        return GradientEncoding(self.vector.public_key, self.vector.layout, self.vector.frac_bits, self.vector.bound)

    @property
    def count(self) -> int:
        return len(self.vector)

    def encrypted_histograms(self, node_of_row: IntArray, slots: IntArray, nodes: int,
                             processes: int) -> EncryptedVector:
        """Per slot feature, per node, per bin: the sum of the ciphertexts of the rows in it
        (row i counts in node `node_of_row[i]` when it is >= 0 and the row was drawn)."""
        columns = [self.binned.features[s] for s in slots.tolist()]
        chosen = [_chosen_rows(columns, self.cipher_of_row, node_of_row, block)
                  for block in self.binned.table.iter_blocks()]
        rows = np.concatenate([np.zeros(0, np.int64)] + [c[0] for c in chosen])
        binned = np.concatenate([np.zeros((0, len(columns)), np.uint16)] + [c[1] for c in chosen])
        return build_histograms(self.vector[self.cipher_of_row[rows]], node_of_row[rows], binned,
                                self.binned.bins[slots], nodes, PRODUCT_WORKERS, processes=processes)

    def release(self) -> None:
        """Nothing to free before the vector is dropped."""


@dataclass(frozen=True)
class PartitionGradients:
    """A tree's drawn rows in the partitions, each with its bins and its encrypted g/h (column
    `GH_COLUMN`): a level's histograms read every row's ciphertext where the row is."""

    table: Table
    features: list[str]
    bins: IntArray
    encoding: GradientEncoding
    count: int

    def encrypted_histograms(self, level: Level, slot_of: IntArray, slots: IntArray, nodes: int,
                             processes: int) -> EncryptedVector:
        """Per slot feature, per node, per bin: the sum of the ciphertexts of the rows in it.

        `level` is the level's (row index, node position) pairs, a table or arrays; a row
        counts in node `slot_of[position]` when that is >= 0. The drawn rows are joined with
        the table by row index where they are (or handed the arrays); each partition builds
        the histograms of its rows; the partitions' histograms are added."""
        columns = [self.features[s] for s in slots.tolist()]
        bins = self.bins[slots]
        if isinstance(level, Table):
            rows, pairs = self.table.join(level.with_id_column(ROW_INDEX_COLUMN)), None
        else:
            rows, pairs = self.table, level
        histogram = reduce_blocks(rows, functools.partial(_gradient_block, columns, bins, self.encoding, slot_of,
                                                    nodes, processes, pairs), _add_encrypted)
        if histogram is None:  # no row in any node: the zero histograms
            empty = np.zeros(0, dtype=np.int64)
            return build_histograms(self.encoding.vector([]), empty, np.zeros((0, len(columns)), np.uint16), bins,
                                    nodes, PRODUCT_WORKERS)
        return histogram

    def release(self) -> None:
        """Free the cached rows (the tree is done)."""
        self.table.unpersist()


def gradient_block(rows: IntArray, gh: EncryptedVector) -> pa.Table:
    """Drawn rows and their ciphertexts as a block of `GH_SCHEMA` (fixed-width big-endian bytes)."""
    width = gh.public_key.ciphertext_bytes
    return pa.table({ROW_INDEX_COLUMN: pa.array(rows, pa.int64()),
                     GH_COLUMN: pa.array([c.to_bytes(width, "big") for c in gh.ciphertexts], pa.binary())})


def _positions(pairs: Pairs | None, block: pa.Table) -> IntArray:
    """Each row's position in the level: its column, or looked up in `pairs` (-1: absent)."""
    if pairs is None:
        return np.asarray(block.column(POSITION_COLUMN).to_numpy(), dtype=np.int64)
    rows, positions = pairs
    index = _index(block)
    if not len(rows):
        return np.full(len(index), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(rows, index), len(rows) - 1)
    return np.where(rows[at] == index, positions[at], -1).astype(np.int64)


def _lookup(table: IntArray, position: IntArray) -> IntArray:
    """`table[position]`, -1 where the position is -1."""
    return np.where(position >= 0, table[np.maximum(position, 0)], -1)


def _gradient_block(columns: list[str], bins: IntArray, encoding: GradientEncoding, slot_of: IntArray,
                    nodes: int, processes: int, pairs: Pairs | None, block: pa.Table) -> EncryptedVector | None:
    node = _lookup(slot_of, _positions(pairs, block))
    keep = node >= 0
    if not keep.any():
        return None
    chosen = block.filter(pa.array(keep))
    gh = encoding.vector([mpz.from_bytes(raw, "big") for raw in chosen.column(GH_COLUMN).to_pylist()])
    return build_histograms(gh, node[keep], _bins_of(chosen, columns), bins, nodes,
                            PRODUCT_WORKERS, processes=processes)


def _chosen_rows(columns: list[str], cipher_of_row: IntArray, node_of_row: IntArray,
                 block: pa.Table) -> tuple[IntArray, BinArray]:
    """The block's rows that count in a histogram (by index) and their bins of `columns`."""
    index = _index(block)
    keep = (cipher_of_row[index] >= 0) & (node_of_row[index] >= 0)
    return index[keep], _bins_of(block.filter(pa.array(keep)), columns)


def _tie_block(nodes: IntArray, ends: IntArray, columns: list[str], bins: IntArray, pairs: Pairs | None,
               block: pa.Table) -> dict[int, list[TieSummary]]:
    index, position = _index(block), _positions(pairs, block)
    order = np.argsort(index, kind="stable")
    out: dict[int, list[TieSummary]] = {}
    for i, (node, start, end) in enumerate(zip(nodes.tolist(), (ends - np.diff(ends, prepend=0)).tolist(),
                                               ends.tolist(), strict=True)):
        if end - start < 2:
            continue
        rows = order[position[order] == node]
        if not len(rows):
            continue
        masks = np.column_stack([np.asarray(block.column(columns[j]).to_numpy(), dtype=np.int64)[rows] <= bins[j]
                                 for j in range(start, end)])
        out[i] = [tie_summary(masks, index[rows])]
    return out


def _merge_summaries(a: dict[int, list[TieSummary]], b: dict[int, list[TieSummary]]) -> dict[int, list[TieSummary]]:
    merged = {key: list(value) for key, value in a.items()}
    for key, value in b.items():
        merged.setdefault(key, []).extend(value)
    return merged


def _direction_block(nodes: IntArray, columns: list[str], bins: IntArray, positions: int, pairs: Pairs | None,
                     block: pa.Table) -> pa.Table:
    split_of = np.full(positions, -1, dtype=np.int64)
    split_of[nodes] = np.arange(len(nodes))
    split = _lookup(split_of, _positions(pairs, block))
    keep = np.flatnonzero(split >= 0)
    left = np.zeros(len(keep), dtype=np.bool_)
    for column in sorted(set(columns)):
        uses = [i for i, name in enumerate(columns) if name == column]
        at = np.isin(split[keep], uses)
        values = np.asarray(block.column(column).to_numpy(), dtype=np.int64)[keep[at]]
        left[at] = values <= bins[split[keep[at]]]
    return pa.table({ROW_INDEX_COLUMN: pa.array(_index(block)[keep], pa.int64()), LEFT_COLUMN: pa.array(left)})


def _predict_block(names: list[str], column_of: IntArray, known: IntArray, limit: FloatArray,
                   block: pa.Table) -> pa.Table:
    split = np.searchsorted(known, np.asarray(block.column(SPLIT_COLUMN).to_numpy(), dtype=np.int64))
    column = column_of[split]
    left = np.zeros(block.num_rows, dtype=np.bool_)
    for c in np.unique(column).tolist():
        at = np.flatnonzero(column == c)
        values = feature_matrix(block.take(pa.array(at)), [names[c]])[:, 0]
        left[at] = values <= limit[split[at]]
    return pa.table({PAIR_COLUMN: block.column(PAIR_COLUMN), LEFT_COLUMN: pa.array(left)})


def _add_encrypted(a: EncryptedVector | None, b: EncryptedVector | None) -> EncryptedVector | None:
    if a is None:
        return b
    if b is None:
        return a
    return a.add(b, PRODUCT_WORKERS)


Answers = tuple[IntArray, BoolArray]


def _compare(table: Table, features: list[str], total: int, rows: IntArray, feature: IntArray,
             limit: FloatArray) -> BoolArray:
    if not len(rows):
        return np.zeros(0, dtype=np.bool_)
    asked = np.unique(feature)
    answers = reduce_blocks(table,
        functools.partial(_compare_block, [features[f] for f in asked.tolist()], total, rows,
                          np.searchsorted(asked, feature), limit), _concat_answers)
    out = np.zeros(len(rows), dtype=np.bool_)
    out[answers[0]] = answers[1]
    if len(answers[0]) != len(rows) or len(np.unique(answers[0])) != len(rows):
        raise InvalidArgument(f"{COMPONENT}: a row asked for is not among this member's rows")
    return out


def _compare_block(columns: list[str], total: int, rows: IntArray, column: IntArray, limit: FloatArray,
                   block: pa.Table) -> Answers:
    index = _index(block)
    where = np.full(total, -1, dtype=np.int64)
    where[index] = np.arange(len(index))
    local = where[rows]
    hit = np.flatnonzero(local >= 0)
    if not len(hit):
        return hit, np.zeros(0, dtype=np.bool_)
    wanted = np.unique(column[hit])
    matrix = feature_matrix(block, [columns[c] for c in wanted.tolist()])
    values = matrix[local[hit], np.searchsorted(wanted, column[hit])]
    return hit, np.asarray(values <= limit[hit])


def _concat_answers(a: Answers, b: Answers) -> Answers:
    return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])
