"""VertSecureBoost at a provider: builds encrypted histograms of its features and keeps its splits.

The provider never sees a gradient, a hessian or a label in the clear. It learns which rows
share a node (the promoter tells it, so that it can build the node's histograms) and, for a
node the promoter gives it, those of its own splits that tie for the best gain (by slot and
bin); it applies one of them by a fixed rule (`choose_among_ties`). The feature and threshold
of each of its splits stay here, named to the promoter only by a random split id.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.blocks.payloads import PayloadCheck
from kernel.blocks.table_stream import messages, send_table
from kernel.components.vert_secureboost.constants import (
    COMPONENT,
    MAX_BIN,
    MAX_DEPTH,
    MAX_TREES,
    METRIC_FEATURE_IMPORTANCE,
    METRIC_NAMESPACE_TRAIN,
    METRIC_TREE_PHASES,
    PHASE_COMPRESS,
    PHASE_HISTOGRAMS,
    PHASE_SEND,
    PHASE_WAIT,
    ROW_INDEX_COLUMN,
    SPLIT_ID_BITS,
)
from kernel.components.vert_secureboost.data import sample_features
from kernel.components.vert_secureboost.gradients import GradientStream
from kernel.components.vert_secureboost.histogram import compress, rows_per_ciphertext
from kernel.components.vert_secureboost.level_rows import (
    DIRECTION_SCHEMA,
    LEFT_SCHEMA,
    PAIR_COLUMN,
    POSITION_SCHEMA,
    REQUEST_SCHEMA,
    StreamCheck,
    positions_in,
    send_arrays,
    stream_rows,
    tie_pick,
)
from kernel.components.vert_secureboost.param import VertSecureBoostParam
from kernel.components.vert_secureboost.phases import PhaseClock
from kernel.components.vert_secureboost.rows import (
    GH_SCHEMA,
    BinnedRows,
    DriverGradients,
    IndexedRows,
    Level,
    PartitionGradients,
    gathered_directions,
    gradient_block,
)
from kernel.components.vert_secureboost.variables import VertSecureBoostVariables
from kernel.computing import Table
from kernel.constants import BACKEND_LOCAL
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.security.paillier import PaillierPublicKey
from kernel.security.paillier.parallel import resolve_workers

FloatArray = npt.NDArray[np.float64]
PAYLOAD: Final = PayloadCheck(COMPONENT)
IntArray = npt.NDArray[np.int64]


class VertSecureBoostProvider(ModelBase):
    """Holds some features; answers the promoter's histogram, split and prediction requests."""

    is_estimator = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.features: list[str] = []
        self.split_ids: list[int] = []
        self.split_features: list[int] = []
        self.split_thresholds: list[float] = []
        self.importance: dict[str, int] = {}
        self.clock = PhaseClock()

    @property
    def param(self) -> VertSecureBoostParam:
        assert isinstance(self.model_param, VertSecureBoostParam)
        return self.model_param

    # -- training -----------------------------------------------------------------------------
    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> None:
        tv, param = self.ctx.variables(VertSecureBoostVariables), self.param
        self.features = list(data.feature_columns)
        if not self.features:
            raise InvalidArgument("VertSecureBoost: the provider's data has no feature columns")
        indexed = IndexedRows.build(data.table, [data.id_column, *self.features])
        public_key = tv.pubkey.get()
        setup = PAYLOAD.fields(tv.train_setup.get(), "train_setup", "rows", "digest", "num_trees", "max_depth", "max_bin")
        n = indexed.rows
        aligned = setup["rows"] == n and setup["digest"] == indexed.digest and indexed.unique
        tv.setup_ack.remote({"rows": n, "aligned": aligned})
        indexed.check_unique()
        if not aligned:
            raise InvalidArgument(
                f"VertSecureBoost: this provider's {n} rows do not match the promoter's {setup['rows']} ids; "
                "run Intersection on both members' data first"
            )
        num_trees = PAYLOAD.count(setup["num_trees"], "train_setup.num_trees", 1, MAX_TREES)
        max_depth = PAYLOAD.count(setup["max_depth"], "train_setup.max_depth", 1, MAX_DEPTH)
        max_bin = PAYLOAD.count(setup["max_bin"], "train_setup.max_bin", 2, MAX_BIN)
        thresholds = indexed.bin_thresholds(self.features, max_bin)
        binned = indexed.binned(self.features, thresholds)
        self.split_ids, self.split_features, self.split_thresholds = [], [], []
        self.importance = {name: 0 for name in self.features}
        seed = param.random_seed if param.random_seed is not None else secrets.randbits(62)
        phases: list[list[Any]] = []
        for t in range(num_trees):
            chosen = sample_features(len(self.features), param.colsample, np.random.default_rng([seed, t]))
            # Slots are the drawn features in a fresh secret order: the promoter cannot tell which is which.
            slots = chosen[np.random.default_rng(secrets.randbits(128)).permutation(len(chosen))]
            self._grow_tree(t, max_depth, n, slots, binned, thresholds, public_key)
            phases.append([t, self.clock.take()])
            self.tracker.set_progress(100.0 * (t + 1) / num_trees, f"tree {t + 1}")
        self.tracker.log_metric(METRIC_FEATURE_IMPORTANCE, METRIC_NAMESPACE_TRAIN,
                                {name: {"split": splits} for name, splits in self.importance.items()})
        self.tracker.log_metric(METRIC_TREE_PHASES, METRIC_NAMESPACE_TRAIN, phases)

    def _grow_tree(self, t: int, max_depth: int, n: int, slots: IntArray, binned: BinnedRows,
                   thresholds: list[FloatArray], public_key: PaillierPublicKey) -> None:
        tv, workers = self.ctx.variables(VertSecureBoostVariables), self.param.workers
        slot_bins = binned.bins[slots]
        processes = binned.processes(resolve_workers(workers))
        with self._gradients(t, n, binned, slots, public_key) as gradients:
            per_ciphertext = rows_per_ciphertext(gradients.encoding.layout, public_key.n_bits)
            for depth in range(max_depth):
                with self.clock.phase(PHASE_WAIT):
                    received = tv.at(t, depth).node_plan.get()
                plan = PAYLOAD.fields(received, "node_plan", "done")
                if plan["done"] is True:
                    break
                PAYLOAD.fields(plan, "node_plan", "rows", "nodes", "compute")
                nodes = PAYLOAD.count(plan["nodes"], "node_plan.nodes", 1, 1 << max_depth)
                count = PAYLOAD.count(plan["rows"], "node_plan.rows", 1, n)
                compute = PAYLOAD.sorted_unique(PAYLOAD.int_array(plan["compute"], "node_plan.compute", 0, nodes),
                                                "node_plan.compute")
                slot_of = np.full(nodes, -1, dtype=np.int64)
                slot_of[compute] = np.arange(len(compute))
                with self._level(t, depth, n, nodes, count, binned) as level:
                    with self.clock.phase(PHASE_HISTOGRAMS):
                        if isinstance(gradients, DriverGradients):
                            assert isinstance(level, np.ndarray)
                            node_of_row = np.where(level >= 0, slot_of[np.maximum(level, 0)], -1)
                            histogram = gradients.encrypted_histograms(node_of_row, slots, len(compute), processes)
                        else:
                            assert not isinstance(level, np.ndarray)
                            histogram = gradients.encrypted_histograms(level, slot_of, slots, len(compute),
                                                                       processes)
                    with self.clock.phase(PHASE_COMPRESS):
                        packed = compress(histogram, gradients.encoding.bound * gradients.count, per_ciphertext,
                                          workers)
                    with self.clock.phase(PHASE_SEND):
                        tv.at(t, depth).encrypted_histogram.remote(
                            {"histogram": packed, "bins": slot_bins, "per_ciphertext": per_ciphertext})
                    self._split(t, depth, level, nodes, slots, slot_bins, binned, thresholds)

    @contextmanager
    def _level(self, t: int, depth: int, n: int, nodes: int, count: int,
               binned: BinnedRows) -> Iterator[IntArray | Level]:
        """The level's `node_rows` from the promoter: the rows of its open nodes and their positions.

        LOCAL: one vector of every row's position (-1: in no open node). SPARK: at most one
        message's rows are kept as (row index, position) arrays and handed to the tasks with
        their work; more are written to the scratch area message by message as they arrive
        and read back as a table of (row index, position), joined with the rows where they
        are, and deleted when the level is done.
        """
        tv = self.ctx.variables(VertSecureBoostVariables).at(t, depth)
        check = StreamCheck("the promoter's node_rows", POSITION_SCHEMA, n, count, True, positions_in(nodes))
        if binned.table.backend == BACKEND_LOCAL:
            position = np.full(n, -1, dtype=np.int64)
            with self.clock.phase(PHASE_WAIT):
                for message in messages(lambda index: tv.at(index).node_rows.get(), check):
                    position[message.column(0).to_numpy()] = message.column(1).to_numpy()
            yield position
            return
        if count <= stream_rows():
            with self.clock.phase(PHASE_WAIT):
                blocks = list(messages(lambda index: tv.at(index).node_rows.get(), check))
            pairs = pa.concat_tables(blocks) if blocks else POSITION_SCHEMA.empty_table()
            yield (np.asarray(pairs.column(0).to_numpy(), dtype=np.int64),
                   np.asarray(pairs.column(1).to_numpy(), dtype=np.int64))
            return
        scratch, part = self.ctx.scratch(), f"vert_secureboost_nodes.{self.ctx.flow.flow_id}.{t}.{depth}"
        with self.clock.phase(PHASE_WAIT):
            scratch.write(part, POSITION_SCHEMA, messages(lambda index: tv.at(index).node_rows.get(), check))
        try:
            yield scratch.read(self.ctx.computing, part, ROW_INDEX_COLUMN)
        finally:
            scratch.delete(part)

    @contextmanager
    def _gradients(self, t: int, n: int, binned: BinnedRows, slots: IntArray,
                   public_key: PaillierPublicKey) -> Iterator[DriverGradients | PartitionGradients]:
        """Tree t's encrypted g/h from the promoter, for the tree's levels.

        LOCAL: gathered into one vector in this process. SPARK: each chunk written to the
        scratch area as it arrives, then joined with the drawn rows by row index in the
        partitions (the driver holds one chunk at a time); freed when the tree is done.
        """
        tv = self.ctx.variables(VertSecureBoostVariables).at(t)
        if binned.table.backend == BACKEND_LOCAL:
            with self.clock.phase(PHASE_WAIT):
                here = binned.gradients_here(GradientStream(tv, n, public_key))
            yield here
            return
        scratch, part = self.ctx.scratch(), f"vert_secureboost_gh.{self.ctx.flow.flow_id}.{t}"
        with self.clock.phase(PHASE_WAIT):
            stream = GradientStream(tv, n, public_key)
            scratch.write(part, GH_SCHEMA, (gradient_block(rows, gh) for rows, gh in stream))
        assert stream.encoding is not None
        gradients = binned.gradients_beside(scratch.read(self.ctx.computing, part, ROW_INDEX_COLUMN),
                                            stream.encoding, stream.count, slots)
        try:
            yield gradients
        finally:
            gradients.release()
            scratch.delete(part)

    def _split(self, t: int, depth: int, level: IntArray | Level, nodes: int, slots: IntArray,
               slot_bins: IntArray, binned: BinnedRows, thresholds: list[FloatArray]) -> None:
        """Apply the splits the promoter chose among ours: record them, say which rows go left.

        For every node the promoter names each (slot, bin) of ours that ties for the node's
        best gain; `choose_among_ties` picks the one to apply from where each candidate sends
        the node's rows (asked of the partitions holding them). The answer is the split ids,
        then the stream `split_rows` of every row of the chosen nodes and whether it goes left.
        """
        tv = self.ctx.variables(VertSecureBoostVariables)
        with self.clock.phase(PHASE_WAIT):
            received = tv.at(t, depth).split_request.get()
        request = PAYLOAD.fields(received, "split_request", "nodes", "ties", "slots", "bins")
        chosen_nodes = PAYLOAD.sorted_unique(PAYLOAD.int_array(request["nodes"], "split_request.nodes", 0, nodes),
                                             "split_request.nodes")
        ties = PAYLOAD.int_array(request["ties"], "split_request.ties", 1, int(slot_bins.sum()) + 1, len(chosen_nodes))
        total = int(ties.sum())
        tied_slots = PAYLOAD.int_array(request["slots"], "split_request.slots", 0, len(slots), total)
        tied_bins = PAYLOAD.int_array(request["bins"], "split_request.bins", 0, int(slot_bins.max()), total)
        tied_features = slots[tied_slots]
        if any(b >= len(thresholds[f]) for f, b in zip(tied_features.tolist(), tied_bins.tolist(), strict=True)):
            raise InvalidArgument("VertSecureBoost: split_request names a bin past the feature's last threshold")
        ends = np.cumsum(ties)
        picks: list[int]
        answers: tuple[IntArray, npt.NDArray[np.bool_]] | Table
        if not len(chosen_nodes):  # none of ours: no row to ask about
            picks, answers = [], (np.zeros(0, np.int64), np.zeros(0, np.bool_))
        elif isinstance(level, np.ndarray):
            picks, rows, left = self._choose_here(level, chosen_nodes, ties, tied_features, tied_bins, binned)
            answers = (rows, left)
        else:
            picks, answers = self._choose_beside(level, nodes, chosen_nodes, ends, tied_features, tied_bins, binned)
        ids: list[int] = []
        for start, pick in zip((ends - ties).tolist(), picks, strict=True):
            feature, bin_ = int(tied_features[start + pick]), int(tied_bins[start + pick])
            split_id = self._new_split_id()
            ids.append(split_id)
            self.split_ids.append(split_id)
            self.split_features.append(feature)
            self.split_thresholds.append(float(thresholds[feature][bin_]))
            self.importance[self.features[feature]] += 1
        scope = tv.at(t, depth)
        with self.clock.phase(PHASE_SEND):
            scope.split_result.remote({"split_ids": np.array(ids, dtype=np.int64)})

            def put(index: int, block: pa.Table) -> None:
                scope.at(index).split_rows.remote(block)

            if isinstance(answers, tuple):
                send_arrays(put, LEFT_SCHEMA, answers[0], answers[1])
            else:
                send_table(put, answers, stream_rows())

    @staticmethod
    def _choose_here(position: IntArray, chosen_nodes: IntArray, ties: IntArray, tied_features: IntArray,
                     tied_bins: IntArray, binned: BinnedRows) -> tuple[list[int], IntArray, npt.NDArray[np.bool_]]:
        """LOCAL: every chosen node's pick and its rows (node after node, each in row order) with
        whether each goes left, from the rows' positions in this process."""
        ends = np.cumsum(ties)
        node_rows = [np.flatnonzero(position == node) for node in chosen_nodes.tolist()]
        # Every candidate of every node, asked in one pass: the node's rows once per candidate.
        asked_rows = [rows for rows, count in zip(node_rows, ties.tolist(), strict=True) for _ in range(count)]
        sizes = np.repeat([len(rows) for rows in node_rows], ties).astype(np.int64)
        answers = np.zeros(0, dtype=np.bool_)
        if asked_rows:
            answers = binned.compare(np.concatenate(asked_rows), np.repeat(tied_features.astype(np.int64), sizes),
                                     np.repeat(tied_bins.astype(np.float64), sizes))
        picks: list[int] = []
        lefts: list[npt.NDArray[np.bool_]] = []
        offset = 0
        for rows, start, end in zip(node_rows, (ends - ties).tolist(), ends.tolist(), strict=True):
            span = (end - start) * len(rows)
            masks = answers[offset:offset + span].reshape(end - start, len(rows)).T
            offset += span
            pick = choose_among_ties(masks, tied_features[start:end], tied_bins[start:end])
            picks.append(pick)
            lefts.append(masks[:, pick])
        rows = np.concatenate([np.zeros(0, np.int64)] + node_rows)
        left = np.concatenate([np.zeros(0, np.bool_)] + lefts)
        return picks, rows, left

    @staticmethod
    def _choose_beside(positions: Level, nodes: int, chosen_nodes: IntArray, ends: IntArray,
                       tied_features: IntArray, tied_bins: IntArray,
                       binned: BinnedRows) -> tuple[list[int], tuple[IntArray, npt.NDArray[np.bool_]] | Table]:
        """SPARK: every chosen node's pick, ordered from the partitions' `tie_summary` of their
        rows of the node (only where a node has two candidates or more), and the (row index,
        goes left) of the chosen nodes' rows, computed where the rows are: a table to stream,
        or, for a level whose rows came in one message, gathered."""
        features = np.unique(tied_features)
        level = binned.at_positions(positions, features)
        starts = ends - np.diff(ends, prepend=0)
        summaries = binned.tie_summaries(level, chosen_nodes, ends, tied_features, tied_bins) \
            if bool((ends - starts > 1).any()) else {}
        picks = [tie_pick(summaries.get(i, []), tied_features[start:end], tied_bins[start:end])
                 for i, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True))]
        at = starts + np.array(picks, dtype=np.int64)
        directions = binned.directions(level, chosen_nodes, tied_features[at], tied_bins[at], nodes)
        return picks, directions if level.pairs is None else gathered_directions(directions)

    def _new_split_id(self) -> int:
        taken = set(self.split_ids)
        while True:
            candidate = secrets.randbits(SPLIT_ID_BITS)
            if candidate not in taken:
                return candidate

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, data: LabeledTable) -> None:
        tv = self.ctx.variables(VertSecureBoostVariables)
        missing = [f for f in self.features if f not in data.table.schema.names]
        if missing:
            raise InvalidArgument(f"VertSecureBoost: the data lacks the model's feature(s) {', '.join(missing)}")
        indexed = IndexedRows.build(data.table, [data.id_column, *self.features])
        setup = PAYLOAD.fields(tv.predict_setup.get(), "predict_setup", "rows", "digest", "max_depth", "trees")
        n = indexed.rows
        aligned = setup["rows"] == n and setup["digest"] == indexed.digest and indexed.unique
        tv.predict_ack.remote({"rows": n, "aligned": aligned})
        indexed.check_unique()
        if not aligned:
            raise InvalidArgument(
                f"VertSecureBoost: this provider's {n} prediction rows do not match the promoter's "
                f"{setup['rows']} ids; run Intersection on the prediction data too"
            )
        max_depth = PAYLOAD.count(setup["max_depth"], "predict_setup.max_depth", 0, MAX_DEPTH)
        trees = PAYLOAD.count(setup["trees"], "predict_setup.trees", 0, MAX_TREES)
        order = np.argsort(np.asarray(self.split_ids, dtype=np.int64), kind="stable")
        known = np.asarray(self.split_ids, dtype=np.int64)[order]
        features = np.asarray(self.split_features, dtype=np.int64)[order]
        cuts = np.asarray(self.split_thresholds, dtype=np.float64)[order]
        for depth in range(max_depth):
            request = PAYLOAD.fields(tv.at(depth).predict_request.get(), "predict_request", "done")
            if request["done"] is True:
                break
            PAYLOAD.fields(request, "predict_request", "pairs")
            # A row sits at one node of each tree, and a tree that asks us has a split of ours.
            count = PAYLOAD.count(request["pairs"], "predict_request.pairs", 0, n * max(len(known), 1))
            self._predict_level(depth, n, n * trees, count, indexed, known, features, cuts)
        return None

    def _predict_level(self, depth: int, n: int, pair_bound: int, count: int, indexed: IndexedRows, known: IntArray,
                       features: IntArray, cuts: FloatArray) -> None:
        """One level of prediction: the promoter's stream `predict_rows` of (pair, row index,
        split id), every pair of a tree and a row at one of our splits (`count` of them, each
        pair id below `pair_bound`, increasing); answered by the stream
        `predict_directions` of (pair, goes left). LOCAL, or no more pairs than one message
        holds: gathered here and compared where the rows are. SPARK: written to the scratch area
        as it arrives, joined with the rows by row index and compared on the executors; the
        answers stream back a partition at a time."""
        scope = self.ctx.variables(VertSecureBoostVariables).at(depth)

        def known_splits(pairs: IntArray, message: pa.Table, where: str) -> None:
            rows = np.asarray(message.column(1).to_numpy(), dtype=np.int64)
            wanted = np.asarray(message.column(2).to_numpy(), dtype=np.int64)
            if int(rows.min()) < 0 or int(rows.max()) >= n:
                raise InvalidArgument(f"{COMPONENT}: {where} names a row outside [0, {n})")
            at = np.minimum(np.searchsorted(known, wanted), max(len(known) - 1, 0))
            if not len(known) or not np.array_equal(known[at], wanted):
                raise InvalidArgument(f"{COMPONENT}: {where} names a split id this provider never made")

        check = StreamCheck("the promoter's predict_rows", REQUEST_SCHEMA, pair_bound, count, True, known_splits)
        received = messages(lambda index: scope.at(index).predict_rows.get(), check)

        def put(index: int, block: pa.Table) -> None:
            scope.at(index).predict_directions.remote(block)

        if indexed.table.backend == BACKEND_LOCAL or count <= stream_rows():
            blocks = list(received)
            asked = pa.concat_tables(blocks) if blocks else REQUEST_SCHEMA.empty_table()
            pairs, rows, wanted = (np.asarray(asked.column(i).to_numpy(), dtype=np.int64) for i in range(3))
            where = np.searchsorted(known, wanted)
            go_left = indexed.compare(self.features, rows, features[where], cuts[where])
            send_arrays(put, DIRECTION_SCHEMA, pairs, go_left)
            return
        scratch, part = self.ctx.scratch(), f"vert_secureboost_predict.{self.ctx.flow.flow_id}.{depth}"
        scratch.write(part, REQUEST_SCHEMA, received)
        try:
            requests = scratch.read(self.ctx.computing, part, PAIR_COLUMN)
            send_table(put, indexed.directions(self.features, requests, known, features, cuts), stream_rows())
        finally:
            scratch.delete(part)

    # -- model ----------------------------------------------------------------------------------
    def export_model(self) -> dict[str, Any]:
        return {
            "role": "provider", "features": list(self.features), "split_ids": list(self.split_ids),
            "split_features": list(self.split_features), "split_thresholds": list(self.split_thresholds),
            "feature_importance": dict(self.importance),
        }

    def load_model(self, model: dict[str, Any]) -> None:
        if model.get("role") != "provider":
            raise InvalidArgument("VertSecureBoost: the provider needs the provider's model")
        try:
            self.features = [str(f) for f in model["features"]]
            self.split_ids = [int(v) for v in model["split_ids"]]
            self.split_features = [int(v) for v in model["split_features"]]
            self.split_thresholds = [float(v) for v in model["split_thresholds"]]
            self.importance = {str(k): int(v) for k, v in dict(model.get("feature_importance", {})).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"VertSecureBoost: the model input is not a VertSecureBoost model ({exc})") from None
        if not len(self.split_ids) == len(self.split_features) == len(self.split_thresholds):
            raise InvalidArgument("VertSecureBoost: the provider model's split arrays differ in length")
        if any(not 0 <= f < len(self.features) for f in self.split_features):
            raise InvalidArgument("VertSecureBoost: the provider model splits on a feature it does not list")


def choose_among_ties(masks: npt.NDArray[np.bool_], features: IntArray, bins: IntArray) -> int:
    """Which of several splits of equal gain a provider applies: an index into `features`, `bins`.

    `masks[:, j]` says which rows of the node (in row order) candidate j sends left. Among
    the candidates, the one whose left side is first in row order wins (the first row where
    two candidates differ goes left under the winner); of candidates that send the same rows
    left, the lowest feature index, then the lowest bin. The promoter sees only the rows that
    go left, so it learns nothing of the provider's feature order: that order decides only
    between splits whose rows are the same.
    """
    # packbits over ~mask: a row that goes left is a 0 bit, so the first-going-left mask sorts first.
    keys = np.packbits(~masks, axis=0)
    return min(range(len(features)), key=lambda j: (keys[:, j].tobytes(), int(features[j]), int(bins[j])))
