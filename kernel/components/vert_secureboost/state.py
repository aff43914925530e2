"""The promoter's training rows where they are: bins, label, score, and each tree's draw and node.

The promoter keeps no vector of its rows in its driver. Its rows are one table of the
partitions, keyed by row index: the bins of its features, the label, the raw score so far,
and for the tree being grown whether the row was drawn and the node it sits in. Gradients
are computed from the score and the label where the rows are, when they are needed.

What reaches the driver is aggregates whose size does not grow with the rows: per node
sums (exact integers on the fixed-point grid), the promoter's histograms, a bound of the
gradients, the loss. What passes through it row by row is streamed a bounded piece at a
time, in row order: the encrypted gradients (a chunk at a time), a level's `node_rows`.

Each change of the rows (a tree drawn, a level split, the scores moved) makes a new table.
On SPARK that table is written to the task's scratch area and read back (`ScratchArea.keep`),
so each version is planned from files and not from every version before it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from kernel.components.vert_secureboost.constants import (
    COMPONENT,
    OWNER_FIRST_PROVIDER,
    OWNER_LEAF,
    OWNER_PROMOTER,
    PREDICT_RESULT_COLUMN,
    PREDICT_SCORE_COLUMN,
    ROW_INDEX_COLUMN,
)
from kernel.components.vert_secureboost.data import (
    FloatArray,
    IntArray,
    bin_matrix,
    feature_matrix,
    row_draws,
)
from kernel.components.vert_secureboost.level_rows import (
    LEFT_COLUMN,
    PAIR_COLUMN,
    POSITION_COLUMN,
    SPLIT_COLUMN,
)
from kernel.components.vert_secureboost.rows import reduce_blocks
from kernel.components.vert_secureboost.tree import (
    Forest,
    Objective,
    fixed_point,
    integer_sums,
    plain_histograms,
)
from kernel.computing import Table
from kernel.errors import InvalidArgument

LABEL_COLUMN: Final = "__weft_secureboost_label"
SCORE_COLUMN: Final = "__weft_secureboost_score"
DRAWN_COLUMN: Final = "__weft_secureboost_drawn"
NODE_COLUMN: Final = "__weft_secureboost_node"
# Which provider's answer a row's last move broke (0: none): checked with the next sums.
MARK_COLUMN: Final = "__weft_secureboost_mark"
GRADIENT_COLUMN: Final = "__weft_secureboost_g"
HESSIAN_COLUMN: Final = "__weft_secureboost_h"
PROVIDER_COLUMN: Final = "__weft_secureboost_provider"

# A provider's split_rows as the promoter keeps them: row index, goes left, which provider.
ANSWER_SCHEMA: Final = pa.schema([pa.field(ROW_INDEX_COLUMN, pa.int64()), pa.field(LEFT_COLUMN, pa.bool_()),
                                  pa.field(PROVIDER_COLUMN, pa.int32())])

BoolArray = npt.NDArray[np.bool_]
#: Writes a table and reads it back (the lineage cut of `ScratchArea.keep`), or hands it back.
Keep = Callable[[Table], Table]


def _index(block: pa.Table) -> IntArray:
    return np.asarray(block.column(ROW_INDEX_COLUMN).to_numpy(), dtype=np.int64)


def _floats(block: pa.Table, column: str) -> FloatArray:
    return np.asarray(block.column(column).to_numpy(zero_copy_only=False), dtype=np.float64)


def _ints(block: pa.Table, column: str) -> IntArray:
    return np.asarray(block.column(column).to_numpy(zero_copy_only=False), dtype=np.int64)


def _bools(block: pa.Table, column: str) -> BoolArray:
    return np.asarray(block.column(column).to_numpy(zero_copy_only=False), dtype=np.bool_)


def _with(block: pa.Table, **columns: npt.NDArray[np.generic]) -> pa.Table:
    """`block` with the state columns named (by their constants' keys) replaced."""
    names = {"drawn": DRAWN_COLUMN, "node": NODE_COLUMN, "score": SCORE_COLUMN, "mark": MARK_COLUMN}
    for key, values in columns.items():
        name = names[key]
        at = block.schema.get_field_index(name)
        block = block.set_column(at, block.schema.field(name), pa.array(values, block.schema.field(name).type))
    return block


@dataclass(frozen=True)
class NodeSums:
    """Per node of a tree: gradient and hessian sums of the drawn rows (in units of
    2**-precision_bits), drawn rows, all rows; and the rows marked by a provider's bad answer."""

    g_units: IntArray
    h_units: IntArray
    drawn: IntArray
    rows: IntArray
    marked: IntArray
    total: int

    def add(self, other: NodeSums) -> NodeSums:
        return NodeSums(self.g_units + other.g_units, self.h_units + other.h_units, self.drawn + other.drawn,
                        self.rows + other.rows, self.marked + other.marked, self.total + other.total)

    def g(self, precision_bits: int) -> FloatArray:
        return np.ldexp(self.g_units.astype(np.float64), -precision_bits)

    def h(self, precision_bits: int) -> FloatArray:
        return np.ldexp(self.h_units.astype(np.float64), -precision_bits)


@dataclass(frozen=True)
class LabelSummary:
    rows: int
    total: float
    not_binary: int
    not_finite: int

    def add(self, other: LabelSummary) -> LabelSummary:
        return LabelSummary(self.rows + other.rows, self.total + other.total, self.not_binary + other.not_binary,
                            self.not_finite + other.not_finite)


class PromoterRows:
    """The promoter's rows of one training (see the module's doc): `table` is the current version."""

    def __init__(self, table: Table, rows: int, label_mean: float, features: list[str], objective: Objective,
                 precision_bits: int, providers: int, keep: Keep) -> None:
        self.table = table
        self.rows = rows
        self.label_mean = label_mean
        self.features = features
        self.objective = objective
        self.precision_bits = precision_bits
        self.providers = providers
        self._keep = keep

    @classmethod
    def build(cls, indexed: Table, label: str, features: list[str], thresholds: list[FloatArray],
              objective: Objective, precision_bits: int, providers: int, rows: int, keep: Keep) -> PromoterRows:
        """The rows of `indexed` (row index, label, features) binned, with their label checked
        for `objective`; the score is set by `start`."""
        summary: LabelSummary = reduce_blocks(indexed, functools.partial(_label_summary, label), LabelSummary.add)
        if summary.not_finite:
            raise InvalidArgument(f"{COMPONENT}: label column {label!r} has missing or infinite values")
        if objective.name == "binary" and summary.not_binary:
            raise InvalidArgument(f"{COMPONENT}: label column {label!r} must hold 0 and 1 only (objective binary)")
        fields = [pa.field(ROW_INDEX_COLUMN, pa.int64())] + [pa.field(f, pa.int16()) for f in features] + [
            pa.field(LABEL_COLUMN, pa.float64()), pa.field(SCORE_COLUMN, pa.float64()),
            pa.field(DRAWN_COLUMN, pa.bool_()), pa.field(NODE_COLUMN, pa.int32()), pa.field(MARK_COLUMN, pa.int32())]
        table = indexed.with_id_column(ROW_INDEX_COLUMN).map_partitions(
            functools.partial(_state_block, label, features, thresholds), schema=pa.schema(fields))
        return cls(keep(table), rows, summary.total / max(summary.rows, 1), features, objective, precision_bits,
                   providers, keep)

    def _replace(self, table: Table) -> None:
        self.table = self._keep(table)

    # -- per tree -------------------------------------------------------------------------------

    def start_tree(self, seed: int, tree: int, subsample: float, init_score: float | None) -> int:
        """Draw tree `tree`'s rows (every row with subsample 1; else those whose `row_draws` is
        below it, the row of the lowest draw when none is), put every row at the root; with
        `init_score`, set every score to it first. Returns the rows drawn."""
        draw: DrawSummary = reduce_blocks(self.table, functools.partial(_draw_summary, seed, tree, subsample),
                                          DrawSummary.add)
        forced = draw.lowest_row if draw.drawn == 0 else -1
        self._replace(self.table.map_partitions(
            functools.partial(_draw_block, seed, tree, subsample, forced, init_score), schema=self.table.schema))
        return draw.drawn or 1

    def gradient_bound(self) -> int:
        """The largest fixed-point |g| or |h| of the drawn rows (what `encode` makes of them)."""
        return int(reduce_blocks(self.table, functools.partial(_bound_block, self.objective, self.precision_bits),
                                 max))

    def drawn_gradients(self, chunk_rows: int) -> Iterator[tuple[IntArray, FloatArray]]:
        """The drawn rows' (row index, (g, h)) in increasing row order, `chunk_rows` rows a chunk
        (the last may be smaller): only one partition's rows are in this process at a time."""
        schema = pa.schema([pa.field(ROW_INDEX_COLUMN, pa.int64()), pa.field(GRADIENT_COLUMN, pa.float64()),
                            pa.field(HESSIAN_COLUMN, pa.float64())])
        pairs = self.table.map_partitions(functools.partial(_gradient_block, self.objective), schema=schema)
        for block in rechunk(pairs.sort_by(ROW_INDEX_COLUMN).iter_blocks(), chunk_rows):
            yield _index(block), np.column_stack([_floats(block, GRADIENT_COLUMN), _floats(block, HESSIAN_COLUMN)])

    def sums(self, nodes: int) -> NodeSums:
        """`NodeSums` of nodes [0, nodes); refuses rows a provider's answer broke and rows lost or doubled."""
        sums: NodeSums = reduce_blocks(
            self.table, functools.partial(_sums_block, self.objective, self.precision_bits, nodes, self.providers), NodeSums.add)
        bad = np.flatnonzero(sums.marked)
        if len(bad):
            raise InvalidArgument(f"{COMPONENT}: provider {int(bad[0])}'s split_rows names a row that is not in a "
                                  "node of its splits, or leaves one of them out")
        if sums.total != self.rows:
            raise InvalidArgument(f"{COMPONENT}: a provider's split_rows named a row twice ({sums.total} rows "
                                  f"after the level, {self.rows} before)")
        return sums

    def node_rows(self, position_of_node: IntArray) -> Iterator[pa.Table]:
        """(row index, position) of every row whose node has a position >= 0, in increasing
        row order, one partition at a time."""
        schema = pa.schema([pa.field(ROW_INDEX_COLUMN, pa.int64()), pa.field(POSITION_COLUMN, pa.int32())])
        pairs = self.table.map_partitions(functools.partial(_position_block, position_of_node), schema=schema)
        return pairs.sort_by(ROW_INDEX_COLUMN).iter_blocks()

    def histograms(self, own: IntArray, bins: IntArray, position_of_node: IntArray, nodes: int) -> FloatArray:
        """The promoter's histograms of features `own` (bins `bins`) of the drawn rows of every
        node with a position >= 0: (nodes, features, max bins, 2), summed partition by partition."""
        columns = [self.features[f] for f in own.tolist()]
        result: FloatArray = reduce_blocks(self.table, functools.partial(
            _histogram_block, self.objective, self.precision_bits, columns, bins, position_of_node, nodes), np.add)
        return result

    def split(self, moves: NodeMoves, answers: Table | None) -> None:
        """Move every row of a split node to its child: the promoter's splits by the row's bin,
        a provider's by its answer in `answers` (row index, goes left, provider); a row of a
        provider's split without an answer, or with an answer but not in one of its nodes, is
        marked (and refused by the next `sums`)."""
        move = functools.partial(_move_block, self.features, moves)
        if answers is None:
            self._replace(self.table.map_partitions(move, schema=self.table.schema))
            return
        joined = self.table.join(answers.with_id_column(ROW_INDEX_COLUMN), how="left")
        self._replace(joined.map_partitions(move, schema=self.table.schema))

    def add_leaves(self, value_of_node: FloatArray) -> float:
        """Add every row's leaf value to its score; returns the mean loss after."""
        self._replace(self.table.map_partitions(functools.partial(_score_block, value_of_node),
                                                schema=self.table.schema))
        total, rows = reduce_blocks(self.table, functools.partial(_loss_block, self.objective), _add_pairs)
        return total / max(rows, 1)


@dataclass(frozen=True)
class NodeMoves:
    """A level's splits, by node id: the promoter's (`feature` >= 0, its index in the
    promoter's features, and `bin`), a provider's (`provider` >= 0); each split node's children."""

    feature: IntArray
    bin: IntArray
    provider: IntArray
    left: IntArray
    right: IntArray


@dataclass(frozen=True)
class DrawSummary:
    drawn: int
    lowest: float
    lowest_row: int

    def add(self, other: DrawSummary) -> DrawSummary:
        low = self if (self.lowest, self.lowest_row) <= (other.lowest, other.lowest_row) else other
        return DrawSummary(self.drawn + other.drawn, low.lowest, low.lowest_row)


def with_provider(message: pa.Table, provider: int) -> pa.Table:
    """A message of `provider`'s split_rows (row index, goes left) as a table of `ANSWER_SCHEMA`."""
    return message.append_column(PROVIDER_COLUMN, pa.array(np.full(message.num_rows, provider, dtype=np.int32)))


def rechunk(blocks: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The rows of `blocks`, in order, as tables of `rows` rows (the last may hold fewer)."""
    pending: list[pa.Table] = []
    held = 0
    for block in blocks:
        while block.num_rows:
            take = min(rows - held, block.num_rows)
            pending.append(block.slice(0, take))
            held += take
            block = block.slice(take)
            if held == rows:
                yield pa.concat_tables(pending).combine_chunks()
                pending, held = [], 0
    if held:
        yield pa.concat_tables(pending).combine_chunks()


def _label_summary(label: str, block: pa.Table) -> LabelSummary:
    values = np.asarray(pc.cast(block.column(label), pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    finite = np.isfinite(values)
    return LabelSummary(len(values), float(values[finite].sum()), int((~np.isin(values, (0.0, 1.0))).sum()),
                        int((~finite).sum()))


def _state_block(label: str, features: list[str], thresholds: list[FloatArray], block: pa.Table) -> pa.Table:
    binned = bin_matrix(feature_matrix(block, features), thresholds)
    rows = block.num_rows
    columns: dict[str, pa.Array | pa.ChunkedArray] = {ROW_INDEX_COLUMN: block.column(ROW_INDEX_COLUMN)}
    for j, name in enumerate(features):
        columns[name] = pa.array(binned[:, j].astype(np.int16))
    columns[LABEL_COLUMN] = pc.cast(block.column(label), pa.float64())
    columns[SCORE_COLUMN] = pa.array(np.zeros(rows))
    columns[DRAWN_COLUMN] = pa.array(np.ones(rows, dtype=np.bool_))
    columns[NODE_COLUMN] = pa.array(np.zeros(rows, dtype=np.int32))
    columns[MARK_COLUMN] = pa.array(np.zeros(rows, dtype=np.int32))
    return pa.table(columns)


def _draws(seed: int, tree: int, subsample: float, index: IntArray) -> tuple[FloatArray, BoolArray]:
    if subsample >= 1.0:
        return np.zeros(len(index)), np.ones(len(index), dtype=np.bool_)
    draws = row_draws(seed, tree, index)
    return draws, draws < subsample


def _draw_summary(seed: int, tree: int, subsample: float, block: pa.Table) -> DrawSummary:
    index = _index(block)
    if not len(index):
        return DrawSummary(0, np.inf, -1)
    draws, drawn = _draws(seed, tree, subsample, index)
    low = int(np.lexsort((index, draws))[0])
    return DrawSummary(int(drawn.sum()), float(draws[low]), int(index[low]))


def _draw_block(seed: int, tree: int, subsample: float, forced: int, init_score: float | None,
                block: pa.Table) -> pa.Table:
    index = _index(block)
    _, drawn = _draws(seed, tree, subsample, index)
    if forced >= 0:
        drawn = index == forced
    columns: dict[str, npt.NDArray[np.generic]] = {"drawn": drawn, "node": np.zeros(len(index), dtype=np.int32)}
    if init_score is not None:
        columns["score"] = np.full(len(index), init_score)
    return _with(block, **columns)


def _gradients(objective: Objective, block: pa.Table) -> tuple[FloatArray, FloatArray]:
    return objective.gradients(_floats(block, SCORE_COLUMN), _floats(block, LABEL_COLUMN))


def _bound_block(objective: Objective, precision_bits: int, block: pa.Table) -> int:
    drawn = _bools(block, DRAWN_COLUMN)
    if not drawn.any():
        return 0
    g, h = _gradients(objective, block.filter(pa.array(drawn)))
    # What `encode` makes of the largest |g| or |h|: round(|v| * 2**precision_bits).
    return int(np.rint(np.ldexp(np.maximum(np.abs(g).max(), np.abs(h).max()), precision_bits)))


def _gradient_block(objective: Objective, block: pa.Table) -> pa.Table:
    drawn = block.filter(block.column(DRAWN_COLUMN))
    g, h = _gradients(objective, drawn)
    return pa.table({ROW_INDEX_COLUMN: drawn.column(ROW_INDEX_COLUMN), GRADIENT_COLUMN: pa.array(g),
                     HESSIAN_COLUMN: pa.array(h)})


def _sums_block(objective: Objective, precision_bits: int, nodes: int, providers: int, block: pa.Table) -> NodeSums:
    node = _ints(block, NODE_COLUMN)
    drawn = _bools(block, DRAWN_COLUMN)
    mark = _ints(block, MARK_COLUMN)
    g, h = _gradients(objective, block)
    g_units = np.rint(np.ldexp(g[drawn], precision_bits)).astype(np.int64)
    h_units = np.rint(np.ldexp(h[drawn], precision_bits)).astype(np.int64)
    marked = np.bincount(mark[mark > 0] - 1, minlength=providers).astype(np.int64)
    return NodeSums(integer_sums(node[drawn], g_units, nodes), integer_sums(node[drawn], h_units, nodes),
                    np.bincount(node[drawn], minlength=nodes).astype(np.int64),
                    np.bincount(node, minlength=nodes).astype(np.int64), marked, len(node))


def _position_block(position_of_node: IntArray, block: pa.Table) -> pa.Table:
    position = position_of_node[_ints(block, NODE_COLUMN)]
    keep = position >= 0
    return pa.table({ROW_INDEX_COLUMN: pa.array(_index(block)[keep]),
                     POSITION_COLUMN: pa.array(position[keep].astype(np.int32))})


def _histogram_block(objective: Objective, precision_bits: int, columns: list[str], bins: IntArray,
                     position_of_node: IntArray, nodes: int, block: pa.Table) -> FloatArray:
    position = position_of_node[_ints(block, NODE_COLUMN)]
    keep = (position >= 0) & _bools(block, DRAWN_COLUMN)
    rows = block.filter(pa.array(keep))
    g, h = _gradients(objective, rows)
    binned = np.column_stack([np.asarray(rows.column(c).to_numpy(), dtype=np.uint16) for c in columns]) \
        if columns else np.zeros((rows.num_rows, 0), dtype=np.uint16)
    return plain_histograms(position[keep], binned, bins, fixed_point(g, precision_bits),
                            fixed_point(h, precision_bits), nodes)


def _move_block(columns: list[str], moves: NodeMoves, block: pa.Table) -> pa.Table:
    node = _ints(block, NODE_COLUMN)
    moved = node.copy()
    ours = moves.feature[node] >= 0
    for f in np.unique(moves.feature[node[ours]]).tolist():
        at = np.flatnonzero(ours & (moves.feature[node] == f))
        bins = np.asarray(block.column(columns[f]).to_numpy(), dtype=np.int64)[at]
        left = bins <= moves.bin[node[at]]
        moved[at] = np.where(left, moves.left[node[at]], moves.right[node[at]])
    theirs = moves.provider[node]
    answers = _answers(block, len(node))
    good, mark = _answered_moves(theirs, answers)
    moved[good] = np.where(answers[1][good], moves.left[node[good]], moves.right[node[good]])
    state = block.select([name for name in block.schema.names if name not in (LEFT_COLUMN, PROVIDER_COLUMN)])
    return _with(state, node=moved.astype(np.int32), mark=mark)


def _score_block(value_of_node: FloatArray, block: pa.Table) -> pa.Table:
    score = _floats(block, SCORE_COLUMN) + value_of_node[_ints(block, NODE_COLUMN)]
    return _with(block, score=score)


def _loss_block(objective: Objective, block: pa.Table) -> tuple[float, int]:
    if not block.num_rows:
        return 0.0, 0
    return objective.loss(_floats(block, SCORE_COLUMN), _floats(block, LABEL_COLUMN)) * block.num_rows, block.num_rows


def _add_pairs(a: tuple[float, int], b: tuple[float, int]) -> tuple[float, int]:
    return a[0] + b[0], a[1] + b[1]


# -- prediction -------------------------------------------------------------------------------

# Prediction's (tree, row) pairs: pair id (row index * trees + tree), row index, node, mark.
PAIR_SCHEMA: Final = pa.schema([pa.field(PAIR_COLUMN, pa.int64()), pa.field(ROW_INDEX_COLUMN, pa.int64()),
                                pa.field(NODE_COLUMN, pa.int64()), pa.field(MARK_COLUMN, pa.int32())])
# A provider's predict_directions as the promoter keeps them: pair, goes left, which provider.
PAIR_ANSWER_SCHEMA: Final = pa.schema([pa.field(PAIR_COLUMN, pa.int64()), pa.field(LEFT_COLUMN, pa.bool_()),
                                       pa.field(PROVIDER_COLUMN, pa.int32())])
VALUE_COLUMN: Final = "__weft_secureboost_value"


@dataclass(frozen=True)
class PairCounts:
    """Per level of prediction: pairs at an internal node, at each provider's splits, marked
    by each provider's bad answer; and all pairs."""

    internal: int
    asked: IntArray
    marked: IntArray
    total: int

    def add(self, other: PairCounts) -> PairCounts:
        return PairCounts(self.internal + other.internal, self.asked + other.asked, self.marked + other.marked,
                          self.total + other.total)


class PredictionPairs:
    """Every (tree, row) pair of a prediction at the promoter, where the rows are: the pair's
    id (row index * trees + tree), the row index, the forest node it has reached, its mark.

    Per level each pair at a promoter split moves by the row's feature value (joined by row
    index with `rows`); each pair at a provider's split by that provider's answer (joined by
    pair id). What reaches the driver is counts per level and, streamed a partition at a time
    in pair order, the pairs each provider is asked about.
    """

    def __init__(self, rows: Table, forest: Forest, features: list[str], providers: int, keep: Keep) -> None:
        self.rows = rows.with_id_column(ROW_INDEX_COLUMN)
        self.forest = forest
        self.trees = len(forest.roots)
        self.features = features
        self.providers = providers
        self._keep = keep
        self.count = 0
        pairs = self.rows.map_partitions(functools.partial(_pairs_block, forest.roots), schema=PAIR_SCHEMA)
        self.table = keep(pairs.with_id_column(PAIR_COLUMN))

    def counts(self) -> PairCounts:
        """`PairCounts` of the pairs now; refuses pairs a provider's answer broke, lost or doubled."""
        counts: PairCounts = reduce_blocks(self.table, functools.partial(
            _pair_counts_block, self.forest.owner, self.providers), PairCounts.add)
        bad = np.flatnonzero(counts.marked)
        if len(bad):
            raise InvalidArgument(f"{COMPONENT}: provider {int(bad[0])}'s predict_directions names a pair that is "
                                  "not at one of its splits, or leaves one of them out")
        if self.count and counts.total != self.count:
            raise InvalidArgument(f"{COMPONENT}: a provider's predict_directions named a pair twice "
                                  f"({counts.total} pairs after the level, {self.count} before)")
        self.count = counts.total
        return counts

    def requests(self, provider: int) -> Iterator[pa.Table]:
        """(pair, row index, split id) of every pair at a split of `provider`, in pair order, one
        partition at a time."""
        schema = pa.schema([pa.field(PAIR_COLUMN, pa.int64()), pa.field(ROW_INDEX_COLUMN, pa.int64()),
                            pa.field(SPLIT_COLUMN, pa.int64())])
        asked = self.table.map_partitions(functools.partial(
            _request_block, self.forest.owner, self.forest.split_id, provider), schema=schema)
        return asked.sort_by(PAIR_COLUMN).iter_blocks()

    def step(self, answers: Table | None) -> None:
        """Move every pair at an internal node one level down (see the class's doc)."""
        forest = self.forest
        used = sorted({int(f) for f in forest.feature[forest.owner == OWNER_PROMOTER].tolist()})
        pairs = self.table
        if answers is not None:
            pairs = pairs.join(answers.with_id_column(PAIR_COLUMN), how="left")
        if used:
            values = self.rows.select([self.features[f] for f in used])
            pairs = pairs.with_id_column(ROW_INDEX_COLUMN).join(values)
        move = functools.partial(_pair_step_block, forest.owner, forest.feature, forest.threshold, forest.left,
                                 forest.right, {f: self.features[f] for f in used})
        self.table = self._keep(pairs.map_partitions(move, schema=PAIR_SCHEMA).with_id_column(PAIR_COLUMN))

    def raw_scores(self) -> Table:
        """(row index, sum of the leaf values the row reached in every tree) of every row with a pair."""
        schema = pa.schema([pa.field(ROW_INDEX_COLUMN, pa.int64()), pa.field(VALUE_COLUMN, pa.float64())])
        values = self.table.with_id_column(ROW_INDEX_COLUMN).map_partitions(
            functools.partial(_value_block, self.forest.value), schema=schema)
        return values.sum_by_id([VALUE_COLUMN])


def _pairs_block(roots: IntArray, block: pa.Table) -> pa.Table:
    index = _index(block)
    trees = len(roots)
    pair = (index[:, None] * trees + np.arange(trees)[None, :]).ravel()
    return pa.table({PAIR_COLUMN: pa.array(pair, pa.int64()), ROW_INDEX_COLUMN: pa.array(np.repeat(index, trees)),
                     NODE_COLUMN: pa.array(np.tile(roots, len(index)), pa.int64()),
                     MARK_COLUMN: pa.array(np.zeros(len(pair), dtype=np.int32))})


def _pair_counts_block(owner: IntArray, providers: int, block: pa.Table) -> PairCounts:
    at = owner[_ints(block, NODE_COLUMN)]
    theirs = at[at >= OWNER_FIRST_PROVIDER] - OWNER_FIRST_PROVIDER
    mark = _ints(block, MARK_COLUMN)
    return PairCounts(int((at != OWNER_LEAF).sum()), np.bincount(theirs, minlength=providers).astype(np.int64),
                      np.bincount(mark[mark > 0] - 1, minlength=providers).astype(np.int64), block.num_rows)


def _request_block(owner: IntArray, split_id: IntArray, provider: int, block: pa.Table) -> pa.Table:
    node = _ints(block, NODE_COLUMN)
    keep = owner[node] == OWNER_FIRST_PROVIDER + provider
    return pa.table({PAIR_COLUMN: pa.array(_ints(block, PAIR_COLUMN)[keep]),
                     ROW_INDEX_COLUMN: pa.array(_index(block)[keep]),
                     SPLIT_COLUMN: pa.array(split_id[node[keep]])})


def _answers(block: pa.Table, rows: int) -> tuple[BoolArray, BoolArray, IntArray]:
    """Whether each row has a provider's answer, the answer (goes left) and the provider."""
    if LEFT_COLUMN not in block.schema.names:
        none = np.zeros(rows, dtype=np.bool_)
        return none, none, np.full(rows, -1, dtype=np.int64)
    answered = ~np.asarray(block.column(LEFT_COLUMN).is_null().to_numpy(zero_copy_only=False), dtype=np.bool_)
    left = np.asarray(block.column(LEFT_COLUMN).fill_null(False).to_numpy(zero_copy_only=False), dtype=np.bool_)
    by = np.asarray(block.column(PROVIDER_COLUMN).fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return answered, left, by


def _answered_moves(theirs: IntArray,
                    answers: tuple[BoolArray, BoolArray, IntArray]) -> tuple[BoolArray, npt.NDArray[np.int32]]:
    """Which rows move by their provider's answer, and each row's mark: 1 + the provider whose
    answer is for a row not at its split, or whose split's row has no answer; 0 otherwise."""
    answered, _, by = answers
    good = answered & (theirs >= 0) & (by == theirs)
    mark = np.zeros(len(theirs), dtype=np.int32)
    wrong = answered & ~good
    mark[wrong] = by[wrong] + 1
    missing = (theirs >= 0) & ~answered
    mark[missing] = theirs[missing] + 1
    return good, mark


def _pair_step_block(owner: IntArray, feature: IntArray, threshold: FloatArray, left_of: IntArray,
                     right_of: IntArray, columns: dict[int, str], block: pa.Table) -> pa.Table:
    node = _ints(block, NODE_COLUMN)
    moved = node.copy()
    at = owner[node]
    ours = at == OWNER_PROMOTER
    for f in np.unique(feature[node[ours]]).tolist():
        rows = np.flatnonzero(ours & (feature[node] == f))
        values = feature_matrix(block.take(pa.array(rows)), [columns[f]])[:, 0]
        moved[rows] = np.where(values <= threshold[node[rows]], left_of[node[rows]], right_of[node[rows]])
    theirs = np.where(at >= OWNER_FIRST_PROVIDER, at - OWNER_FIRST_PROVIDER, -1)
    answers = _answers(block, len(node))
    good, mark = _answered_moves(theirs, answers)
    moved[good] = np.where(answers[1][good], left_of[node[good]], right_of[node[good]])
    return pa.table({PAIR_COLUMN: block.column(PAIR_COLUMN), ROW_INDEX_COLUMN: block.column(ROW_INDEX_COLUMN),
                     NODE_COLUMN: pa.array(moved, pa.int64()), MARK_COLUMN: pa.array(mark)})


def _value_block(value: FloatArray, block: pa.Table) -> pa.Table:
    return pa.table({ROW_INDEX_COLUMN: block.column(ROW_INDEX_COLUMN),
                     VALUE_COLUMN: pa.array(value[_ints(block, NODE_COLUMN)], pa.float64())})


def with_scores(rows: Table, keep: list[str], raw: Table, init_score: float, objective: Objective,
                threshold: float) -> Table:
    """Columns `keep` of `rows` (the id first) with `predict_score` and `predict_result`: each
    row's raw score (`init_score` plus its sum in `raw`, joined by row index) as `objective`
    reports it; for binary, 1 where the probability is at least `threshold`."""
    joined = rows.with_id_column(ROW_INDEX_COLUMN).select(keep).join(raw, how="left")
    fields = [rows.schema.field(name) for name in keep] + [
        pa.field(PREDICT_SCORE_COLUMN, pa.float64()),
        pa.field(PREDICT_RESULT_COLUMN, pa.int64() if objective.name == "binary" else pa.float64())]
    return joined.with_id_column(keep[0]).map_partitions(
        functools.partial(_scores_block, keep, init_score, objective, threshold), schema=pa.schema(fields))


def _scores_block(keep: list[str], init_score: float, objective: Objective, threshold: float,
                  block: pa.Table) -> pa.Table:
    summed = np.asarray(block.column(VALUE_COLUMN).fill_null(0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
    score = objective.output(init_score + summed)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {name: block.column(name) for name in keep}
    columns[PREDICT_SCORE_COLUMN] = pa.array(score)
    columns[PREDICT_RESULT_COLUMN] = pa.array((score >= threshold).astype(np.int64) if objective.name == "binary"
                                              else score)
    return pa.table(columns)
