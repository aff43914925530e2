"""VertSecureBoost at the promoter: holds the label and the Paillier key, grows every tree.

Per tree (message by message in docs/algorithms/vert_secureboost.md): the promoter sends the
rows' gradients and hessians encrypted, packed one ciphertext per row, a chunk of rows a
message (`gradients`); per level it tells the providers which rows sit in which node and which
nodes to build; each provider returns its encrypted histograms of those nodes; the promoter
decrypts them, derives each sibling as parent minus child, finds every node's best split over
all members, and asks the winning provider to apply its split, naming every split of that
provider that ties for the gain (the provider picks one by a fixed rule). The provider keeps
the feature and threshold and answers with an opaque split id and the rows that go left.
"""

from __future__ import annotations

import functools
import itertools
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.blocks.payloads import PayloadCheck
from kernel.blocks.table_stream import messages
from kernel.components.vert_secureboost.constants import (
    COMPONENT,
    METRIC_FEATURE_IMPORTANCE,
    METRIC_LOSS,
    METRIC_NAMESPACE_TRAIN,
    METRIC_TREE_PHASES,
    METRIC_TREE_SECONDS,
    MIN_CHILD_HESSIAN,
    OWNER_FIRST_PROVIDER,
    OWNER_LEAF,
    OWNER_PROMOTER,
    PHASE_DECRYPT,
    PHASE_SEND,
    PHASE_SPLITS,
    PHASE_WAIT,
    PROVIDER_IMPORTANCE_KEY,
    ROW_INDEX_COLUMN,
)
from kernel.components.vert_secureboost.data import bin_counts, sample_features
from kernel.components.vert_secureboost.gradients import GradientEncoding, send_encrypted_gh
from kernel.components.vert_secureboost.histogram import decrypt_compressed, gh_headroom_bits
from kernel.components.vert_secureboost.level_rows import (
    DIRECTION_SCHEMA,
    LEFT_SCHEMA,
    PAIR_COLUMN,
    POSITION_SCHEMA,
    REQUEST_SCHEMA,
    StreamCheck,
    send_blocks,
    stream_rows,
)
from kernel.components.vert_secureboost.param import VertSecureBoostParam
from kernel.components.vert_secureboost.phases import PhaseClock
from kernel.components.vert_secureboost.rows import IndexedRows
from kernel.components.vert_secureboost.state import (
    ANSWER_SCHEMA,
    PAIR_ANSWER_SCHEMA,
    Keep,
    NodeMoves,
    PredictionPairs,
    PromoterRows,
    rechunk,
    with_provider,
    with_scores,
)
from kernel.components.vert_secureboost.tree import (
    Forest,
    Objective,
    SplitSearch,
    Tree,
    padded_histograms,
)
from kernel.components.vert_secureboost.variables import VertSecureBoostVariables
from kernel.computing import Table
from kernel.constants import BACKEND_LOCAL, PROVIDER
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.security.paillier import EncryptedVector, PaillierPrivateKey, generate_keypair
from kernel.security.paillier.parallel import resolve_workers

FloatArray = npt.NDArray[np.float64]
PAYLOAD: Final = PayloadCheck(COMPONENT)
IntArray = npt.NDArray[np.int64]


def _any_values(rows: IntArray, message: pa.Table, where: str) -> None:
    """split_rows' values need no check of their own: a boolean says nothing wrong."""


class _TreeRound:
    """The tree being grown and each of its nodes' parent and sibling (the rows are in `PromoterRows`)."""

    def __init__(self, drawn: int) -> None:
        self.tree = Tree()
        self.drawn = drawn
        self.parent: dict[int, int] = {}
        self.sibling: dict[int, int] = {}


class VertSecureBoostPromoter(ModelBase):
    """Holds the label and the private key; decides every split; predicts by walking the trees."""

    is_estimator = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.features: list[str] = []
        self.trees: list[Tree] = []
        self.init_score = 0.0
        self.objective_name = "binary"
        self.provider_members: list[str] = []
        self.loss_history: list[list[float]] = []
        self.importance: dict[str, dict[str, float]] = {}
        self.clock = PhaseClock()

    @property
    def param(self) -> VertSecureBoostParam:
        assert isinstance(self.model_param, VertSecureBoostParam)
        return self.model_param

    # -- training -----------------------------------------------------------------------------
    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> None:
        param = self.param
        label = data.label_column
        if label is None:
            raise InvalidArgument("VertSecureBoost: the promoter's training data has no label column (DataIO with_label)")
        self.features = list(data.feature_columns)
        indexed = IndexedRows.build(data.table, [data.id_column, label, *self.features])
        if indexed.rows == 0:
            raise InvalidArgument("VertSecureBoost: the training data has no rows")
        indexed.check_unique()
        objective = Objective(param.objective)
        providers = self.ctx.roles.parties(PROVIDER)
        thresholds = indexed.bin_thresholds(self.features, param.max_bin)
        with self._kept_versions("vert_secureboost_rows") as keep:
            state = PromoterRows.build(indexed.table, label, self.features, thresholds, objective,
                                       param.precision_bits, len(providers), indexed.rows, keep)
            self.provider_members = [p.member_id for p in providers]
            private_key = self._start_providers(indexed, param) if providers else None
            self._fit_trees(state, objective, bin_counts(thresholds), thresholds, private_key)

    def _fit_trees(self, state: PromoterRows, objective: Objective, bins: IntArray, thresholds: list[FloatArray],
                   private_key: PaillierPrivateKey | None) -> None:
        param = self.param
        self.objective_name, self.init_score = objective.name, objective.init_score_of_mean(state.label_mean)
        self.trees, self.loss_history = [], []
        self.importance = {name: {"split": 0, "gain": 0.0} for name in self.features}
        for member in self.provider_members:
            self.importance[PROVIDER_IMPORTANCE_KEY.format(member_id=member)] = {"split": 0, "gain": 0.0}
        seed = param.random_seed if param.random_seed is not None else secrets.randbits(62)
        durations: list[list[float]] = []
        phases: list[list[Any]] = []
        for t in range(param.num_trees):
            started = time.perf_counter()
            rng = np.random.default_rng([seed, t])
            drawn = state.start_tree(seed, t, param.subsample, self.init_score if t == 0 else None)
            tree = self._grow_tree(t, rng, state, _TreeRound(drawn), bins, thresholds, private_key)
            loss = state.add_leaves(np.asarray(tree.value))
            self.trees.append(tree)
            self.loss_history.append([t, loss])
            durations.append([t, time.perf_counter() - started])
            phases.append([t, self.clock.take()])
            self.tracker.set_progress(100.0 * (t + 1) / param.num_trees, f"tree {t + 1}: loss {loss:.6f}")
        self.tracker.log_metric(METRIC_LOSS, METRIC_NAMESPACE_TRAIN, self.loss_history, metric_type="loss")
        self.tracker.log_metric(METRIC_TREE_SECONDS, METRIC_NAMESPACE_TRAIN, durations)
        self.tracker.log_metric(METRIC_TREE_PHASES, METRIC_NAMESPACE_TRAIN, phases)
        self.tracker.log_metric(METRIC_FEATURE_IMPORTANCE, METRIC_NAMESPACE_TRAIN, self.importance)

    @contextmanager
    def _kept_versions(self, prefix: str, last_stays: bool = False) -> Iterator[Keep]:
        """How the versions of a table of rows are kept: LOCAL tables as they are (they are in
        memory); SPARK ones each written to the scratch area as `prefix`.<n> and read back, the
        version before deleted once the next is written, the last when the block ends (unless
        `last_stays`: the task's output is read from it; the scratch area goes with the task)."""
        if self.ctx.computing.backend == BACKEND_LOCAL:
            yield lambda table: table
            return
        # A name of its own per block: an earlier block's last version may still be read.
        scratch, name = self.ctx.scratch(), f"{prefix}.{self.ctx.flow.flow_id}.{secrets.token_hex(4)}"
        versions = itertools.count()

        def keep(table: Table) -> Table:
            version = next(versions)
            kept = scratch.keep(f"{name}.{version}", table)
            if version:
                scratch.delete(f"{name}.{version - 1}")
            return kept

        try:
            yield keep
        finally:
            written = next(versions)
            for version in range(written - 1 if last_stays else written):
                scratch.delete(f"{name}.{version}")

    def _start_providers(self, indexed: IndexedRows, param: VertSecureBoostParam) -> PaillierPrivateKey:
        """Send the key and the training plan; every provider must hold the same ids."""
        tv = self.ctx.variables(VertSecureBoostVariables)
        public_key, private_key = generate_keypair(param.key_bits)
        tv.pubkey.remote(public_key)
        tv.train_setup.remote({"rows": indexed.rows, "digest": indexed.digest, "num_trees": param.num_trees,
                               "max_depth": param.max_depth, "max_bin": param.max_bin})
        for k, ack in enumerate(tv.setup_ack.get_all()):
            if not isinstance(ack, dict) or ack.get("aligned") is not True:
                raise InvalidArgument(
                    f"VertSecureBoost: provider {k}'s rows do not match the promoter's {indexed.rows} ids; "
                    "run Intersection on both members' data first"
                )
        return private_key

    def _grow_tree(
        self, t: int, rng: np.random.Generator, state: PromoterRows, round_: _TreeRound, bins: IntArray,
        thresholds: list[FloatArray], private_key: PaillierPrivateKey | None,
    ) -> Tree:
        """Grow tree t level by level over the rows `state.start_tree` drew; every row ends at
        its leaf in `state`."""
        param, tv, tree = self.param, self.ctx.variables(VertSecureBoostVariables), round_.tree
        own = sample_features(len(self.features), param.colsample, rng)
        encoding: GradientEncoding | None = None
        if private_key is not None:
            encoding = send_encrypted_gh(tv.at(t), private_key, state.drawn_gradients, round_.drawn,
                                         state.gradient_bound(), param.precision_bits,
                                         gh_headroom_bits(round_.drawn, param.max_bin),
                                         resolve_workers(param.workers), self.clock)
        search = SplitSearch(param.reg_lambda, param.min_child_weight)
        least = max(param.min_child_weight, MIN_CHILD_HESSIAN)
        level = [0]
        previous: list[dict[int, FloatArray]] = [{} for _ in self.provider_members]
        slot_bins: list[IntArray] = [np.zeros(0, np.int64) for _ in self.provider_members]
        for depth in range(param.max_depth):
            sums = state.sums(len(tree.owner))
            h_sum, n_sum = sums.h(param.precision_bits)[level], sums.drawn[level]
            open_nodes = [node for node, hh, nn in zip(level, h_sum.tolist(), n_sum.tolist(), strict=True)
                          if nn >= 2 and hh >= 2 * least]
            if not open_nodes:
                if private_key is not None:
                    tv.at(t, depth).node_plan.remote({"done": True})
                break
            sizes = dict(zip(level, n_sum.tolist(), strict=True))
            compute = [0] if depth == 0 else self._smaller_children(level, open_nodes, sizes)
            position = np.full(len(tree.owner), -1, dtype=np.int64)
            position[level] = np.arange(len(level))
            if private_key is not None:
                self._send_node_rows(t, depth, state, tree, level, open_nodes, position[compute],
                                     int(sums.rows[open_nodes].sum()))
            with self.clock.phase(PHASE_SPLITS):
                candidates = [self._own_best(state, tree, open_nodes, own, bins, search)]
            provider_gains: list[FloatArray] = []
            for k in range(len(self.provider_members)):
                assert encoding is not None and private_key is not None
                level_hist, slot_bins[k] = self._provider_histograms(
                    k, t, depth, compute, round_, previous[k], slot_bins[k], encoding, round_.drawn, private_key
                )
                previous[k] = level_hist
                with self.clock.phase(PHASE_SPLITS):
                    stacked = np.stack([level_hist[node] for node in open_nodes])
                    provider_gains.append(search.gains(stacked, slot_bins[k]))
                    candidates.append(search.best_of(provider_gains[k]))
            level = self._apply_splits(t, depth, level, open_nodes, candidates, provider_gains, thresholds, state,
                                       round_, sums.rows)
            if not level:  # no node split: the providers wait for the next level's plan
                if private_key is not None and depth + 1 < param.max_depth:
                    tv.at(t, depth + 1).node_plan.remote({"done": True})
                break
        sums = state.sums(len(tree.owner))
        values = search.leaf_value(sums.g(param.precision_bits), sums.h(param.precision_bits), param.learning_rate)
        is_leaf = np.asarray(tree.owner) == OWNER_LEAF
        tree.value = np.where(is_leaf, values, 0.0).tolist()
        return tree

    def _send_node_rows(self, t: int, depth: int, state: PromoterRows, tree: Tree, level: list[int],
                        open_nodes: list[int], compute: IntArray, rows: int) -> None:
        """The level's plan (its nodes, those whose histograms to build, the `rows` rows of its
        open nodes that follow), then the stream `node_rows`: every row of an open node and the
        node's position in the level, in row order."""
        scope = self.ctx.variables(VertSecureBoostVariables).at(t, depth)
        position = np.full(len(tree.owner), -1, dtype=np.int64)
        position[open_nodes] = [level.index(node) for node in open_nodes]
        with self.clock.phase(PHASE_SEND):
            scope.node_plan.remote({"done": False, "rows": rows, "nodes": len(level), "compute": compute})
            sent = send_blocks(lambda index, block: scope.at(index).node_rows.remote(block), POSITION_SCHEMA,
                               rechunk(state.node_rows(position), stream_rows()))
        if sent != rows:
            raise InvalidArgument(f"{COMPONENT}: the level's open nodes hold {rows} rows but {sent} were sent")

    @staticmethod
    def _smaller_children(level: list[int], open_nodes: list[int], sizes: dict[int, int]) -> list[int]:
        """Of every pair of siblings with an open node, the child with fewer sampled rows."""
        wanted = set(open_nodes)
        chosen = []
        for left, right in zip(level[0::2], level[1::2], strict=True):
            if left in wanted or right in wanted:
                chosen.append(left if sizes[left] <= sizes[right] else right)
        return chosen

    @staticmethod
    def _own_best(state: PromoterRows, tree: Tree, open_nodes: list[int], own: IntArray, bins: IntArray,
                  search: SplitSearch) -> tuple[FloatArray, IntArray, IntArray]:
        """The best split of every open node over the promoter's sampled features (global indices)."""
        if not len(own):
            return np.full(len(open_nodes), -np.inf), np.zeros(len(open_nodes), np.int64), np.zeros(len(open_nodes), np.int64)
        position = np.full(len(tree.owner), -1, dtype=np.int64)
        position[open_nodes] = np.arange(len(open_nodes))
        hist = state.histograms(own, bins[own], position, len(open_nodes))
        gain, feature, bin_ = search.best(hist, bins[own])
        return gain, own[feature], bin_

    def _provider_histograms(
        self, k: int, t: int, depth: int, compute: list[int], round_: _TreeRound, parents: dict[int, FloatArray],
        known_bins: IntArray, encoding: GradientEncoding, sampled: int, private_key: PaillierPrivateKey,
    ) -> tuple[dict[int, FloatArray], IntArray]:
        """Provider k's histograms of every node of this level (decrypted, siblings by subtraction)
        and the bins of its feature slots, which stay the same within a tree."""
        with self.clock.phase(PHASE_WAIT):
            received = self.ctx.variables(VertSecureBoostVariables).at(t, depth).encrypted_histogram.get(idx=k)
        message = PAYLOAD.fields(received, f"provider {k}'s encrypted_histogram", "histogram", "bins", "per_ciphertext")
        bins = PAYLOAD.int_array(message["bins"], f"provider {k}'s histogram bins", 1, self.param.max_bin + 1)
        if not len(bins):
            raise InvalidArgument(f"VertSecureBoost: provider {k} sent a histogram of no features")
        if depth > 0 and not np.array_equal(known_bins, bins):
            raise InvalidArgument(f"VertSecureBoost: provider {k} changed its histogram bins within a tree")
        histogram = message["histogram"]
        if not isinstance(histogram, EncryptedVector) or histogram.public_key != private_key.public_key:
            raise InvalidArgument(f"VertSecureBoost: provider {k}'s histogram is not a vector under our key")
        layout = encoding.layout
        per = PAYLOAD.count(message["per_ciphertext"], f"provider {k}'s per_ciphertext", 1,
                    max(1, (private_key.public_key.n_bits - 2) // (layout.slots * layout.slot_bits)))
        total = int(bins.sum()) * len(compute)
        with self.clock.phase(PHASE_DECRYPT):
            flat = decrypt_compressed(private_key, histogram, layout.slot_bits, layout.slots, encoding.frac_bits,
                                      encoding.bound * sampled, per, total, self.param.workers)
        computed = padded_histograms(flat, bins, len(compute))
        level_hist = {node: computed[i] for i, node in enumerate(compute)}
        for node in compute:
            if node in round_.sibling:
                level_hist[round_.sibling[node]] = parents[round_.parent[node]] - level_hist[node]
        return level_hist, bins

    def _apply_splits(
        self, t: int, depth: int, level: list[int], open_nodes: list[int],
        candidates: list[tuple[FloatArray, IntArray, IntArray]], provider_gains: list[FloatArray],
        thresholds: list[FloatArray], state: PromoterRows, round_: _TreeRound, sizes: IntArray,
    ) -> list[int]:
        """Split every open node whose best gain is high enough; returns the next level's nodes.

        Ties between members go to the promoter, then to the providers in role order. A
        provider whose best split a node takes is sent every (slot, bin) of its own that ties
        for that gain and picks among them itself (`choose_among_ties`), so the secret slot
        order never decides. `sizes` is every node's rows before any row moves.
        """
        param, tv, tree = self.param, self.ctx.variables(VertSecureBoostVariables), round_.tree
        gains = np.stack([c[0] for c in candidates])
        winner = np.argmax(gains, axis=0)  # the first of equal gains: the promoter, then providers in role order
        best = gains[winner, np.arange(len(open_nodes))]
        splitting = [i for i in range(len(open_nodes)) if np.isfinite(best[i]) and best[i] > param.min_split_gain]
        requests: list[list[int]] = [[i for i in splitting if winner[i] == k + 1] for k in range(len(candidates) - 1)]
        for k, chosen in enumerate(requests):
            tied = [SplitSearch.ties(provider_gains[k][i], float(best[i])) for i in chosen]
            with self.clock.phase(PHASE_SEND):
                tv.at(t, depth).split_request.remote(
                    {"nodes": np.array([level.index(open_nodes[i]) for i in chosen], dtype=np.int64),
                     "ties": np.array([len(slots) for slots, _ in tied], dtype=np.int64),
                     "slots": np.concatenate([slots for slots, _ in tied] or [np.zeros(0, np.int64)]),
                     "bins": np.concatenate([bins_ for _, bins_ in tied] or [np.zeros(0, np.int64)])},
                    idx=k)
        _, own_feature, own_bin = candidates[0]
        split_ids: dict[int, int] = {}
        for k, chosen in enumerate(requests):
            with self.clock.phase(PHASE_WAIT):
                answer = tv.at(t, depth).split_result.get(idx=k)
            result = PAYLOAD.fields(answer, f"provider {k}'s split_result", "split_ids")
            ids = PAYLOAD.int_array(result["split_ids"], f"provider {k}'s split_ids", 0, 1 << 62, len(chosen))
            split_ids.update(zip(chosen, ids.tolist(), strict=True))
        next_level: list[int] = []
        ours: dict[int, tuple[int, int]] = {}
        theirs: dict[int, int] = {}
        for i in splitting:
            node = open_nodes[i]
            if winner[i] == 0:
                f, b = int(own_feature[i]), int(own_bin[i])
                left_child, right_child = tree.split(node, OWNER_PROMOTER, f, float(thresholds[f][b]), -1)
                self._credit(self.features[f], float(best[i]))
                ours[node] = (f, b)
            else:
                k = int(winner[i]) - 1
                left_child, right_child = tree.split(node, OWNER_FIRST_PROVIDER + k, -1, 0.0, split_ids[i])
                self._credit(PROVIDER_IMPORTANCE_KEY.format(member_id=self.provider_members[k]), float(best[i]))
                theirs[node] = k
            for child, other in ((left_child, right_child), (right_child, left_child)):
                round_.parent[child], round_.sibling[child] = node, other
            next_level += [left_child, right_child]
        size = len(tree.owner)
        feature, bin_, provider = (np.full(size, -1, dtype=np.int64) for _ in range(3))
        for node, (f, b) in ours.items():
            feature[node], bin_[node] = f, b
        for node, k in theirs.items():
            provider[node] = k
        moves = NodeMoves(feature, bin_, provider, np.asarray(tree.left, dtype=np.int64),
                          np.asarray(tree.right, dtype=np.int64))
        scope = tv.at(t, depth)
        expected = [int(sizes[[open_nodes[i] for i in chosen]].sum()) for chosen in requests]
        with self._answers(scope, "split_rows", LEFT_SCHEMA, ANSWER_SCHEMA, ROW_INDEX_COLUMN, state.rows, expected,
                           list(range(len(requests))), f"split_rows.{t}.{depth}") as answers:
            state.split(moves, answers)
        return next_level

    @contextmanager
    def _answers(self, scope: VertSecureBoostVariables, variable: str, schema: pa.Schema, kept: pa.Schema,
                 key: str, bound: int, expected: list[int], providers: list[int], name: str) -> Iterator[Table | None]:
        """Every provider's stream `variable` (of `schema`: an id below `bound`, then whether it
        goes left), `expected[k]` rows from provider k: written to the scratch area as it
        arrives, with the provider (`providers[k]`, its index in the model), and read back as
        one table of `kept` keyed by `key`; None when no provider was asked anything. Whether
        each row belongs to its provider, once, is checked where the rows are."""
        scratch = self.ctx.scratch()
        names: list[str] = []
        try:
            tables: list[Table] = []
            for k, count in enumerate(expected):
                check = StreamCheck(f"provider {k}'s {variable}", schema, bound, count, False, _any_values)
                names.append(f"vert_secureboost_{name}.{self.ctx.flow.flow_id}.{k}")
                with self.clock.phase(PHASE_WAIT):
                    received = messages(functools.partial(self._answer, scope, variable, k), check)
                    if scratch.write(names[-1], kept, (with_provider(m, providers[k]) for m in received)):
                        tables.append(scratch.read(self.ctx.computing, names[-1], key))
            if not tables:
                yield None
                return
            answers = tables[0]
            for more in tables[1:]:
                answers = answers.union(more)
            yield answers
        finally:
            for done in names:
                scratch.delete(done)

    @staticmethod
    def _answer(scope: VertSecureBoostVariables, variable: str, k: int, index: int) -> Any:
        return getattr(scope.at(index), variable).get(idx=k)

    def _credit(self, key: str, gain: float) -> None:
        self.importance[key]["split"] += 1
        self.importance[key]["gain"] += gain

    # -- prediction ---------------------------------------------------------------------------
    def predict(self, data: LabeledTable) -> LabeledTable:
        tv, param = self.ctx.variables(VertSecureBoostVariables), self.param
        missing = [f for f in self.features if f not in data.table.schema.names]
        if missing:
            raise InvalidArgument(f"VertSecureBoost: the data lacks the model's feature(s) {', '.join(missing)}")
        label = data.label_column
        keep_columns = [data.id_column] + ([label] if label else [])
        indexed = IndexedRows.build(data.table, keep_columns + self.features)
        indexed.check_unique()
        forest = Forest(self.trees)
        n = indexed.rows
        order = self._provider_order()
        if order:
            tv.predict_setup.remote({"rows": n, "digest": indexed.digest, "max_depth": forest.depth,
                                     "trees": len(self.trees)})
            for k, ack in enumerate(tv.predict_ack.get_all()):
                if not isinstance(ack, dict) or ack.get("aligned") is not True:
                    raise InvalidArgument(
                        f"VertSecureBoost: provider {k}'s prediction rows do not match the promoter's {n} ids; "
                        "run Intersection on the prediction data too"
                    )
        with self._kept_versions("vert_secureboost_pairs", last_stays=True) as keep:
            pairs = PredictionPairs(indexed.table, forest, self.features, len(self.provider_members), keep)
            for depth in range(forest.depth):
                counts = pairs.counts()
                if not counts.internal:
                    for k in range(len(order)):
                        tv.at(depth).predict_request.remote({"done": True}, idx=k)
                    break
                scope = tv.at(depth)
                asked = [int(counts.asked[model_k]) for model_k in order]
                for k, model_k in enumerate(order):
                    scope.predict_request.remote({"done": False, "pairs": asked[k]}, idx=k)
                    sent = send_blocks(functools.partial(self._put_request, scope, k), REQUEST_SCHEMA,
                                       rechunk(pairs.requests(model_k), stream_rows()))
                    if sent != asked[k]:
                        raise InvalidArgument(f"{COMPONENT}: {asked[k]} pairs were to go to provider {k}, "
                                              f"{sent} went")
                with self._answers(scope, "predict_directions", DIRECTION_SCHEMA, PAIR_ANSWER_SCHEMA, PAIR_COLUMN,
                                   n * len(self.trees), asked, order, f"predict.{depth}") as answers:
                    pairs.step(answers)
            else:
                pairs.counts()
            raw = pairs.raw_scores()
            out = keep(with_scores(indexed.table, keep_columns, raw, self.init_score, Objective(self.objective_name),
                                   param.threshold))
        return LabeledTable(out, label, ())

    @staticmethod
    def _put_request(scope: VertSecureBoostVariables, k: int, index: int, block: pa.Table) -> None:
        scope.at(index).predict_rows.remote(block, idx=k)

    def _provider_order(self) -> list[int]:
        """For each provider of this job (in role order), its index in the model's providers."""
        members = [p.member_id for p in self.ctx.roles.parties(PROVIDER)]
        if sorted(members) != sorted(self.provider_members):
            raise InvalidArgument(
                f"VertSecureBoost: the model was trained with providers {self.provider_members}, "
                f"this job has {members}"
            )
        return [self.provider_members.index(m) for m in members]

    # -- model ----------------------------------------------------------------------------------
    def export_model(self) -> dict[str, Any]:
        return {
            "role": "promoter", "objective": self.objective_name, "init_score": self.init_score,
            "features": list(self.features), "providers": list(self.provider_members),
            "trees": [tree.to_dict() for tree in self.trees], "loss_history": self.loss_history,
            "feature_importance": self.importance,
        }

    def load_model(self, model: dict[str, Any]) -> None:
        if model.get("role") != "promoter":
            raise InvalidArgument("VertSecureBoost: the promoter needs the promoter's model")
        try:
            self.objective_name = str(model["objective"])
            Objective(self.objective_name)
            self.init_score = float(model["init_score"])
            self.features = [str(f) for f in model["features"]]
            self.provider_members = [str(m) for m in model["providers"]]
            self.trees = [Tree.from_dict(raw, f"tree {i}") for i, raw in enumerate(model["trees"])]
            self.loss_history = [list(p) for p in model.get("loss_history", [])]
            self.importance = dict(model.get("feature_importance", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"VertSecureBoost: the model input is not a VertSecureBoost model ({exc})") from None
        for i, tree in enumerate(self.trees):
            for node, owner in enumerate(tree.owner):
                if owner == OWNER_PROMOTER and not 0 <= tree.feature[node] < len(self.features):
                    raise InvalidArgument(f"VertSecureBoost: tree {i} splits on a feature the model does not list")
                if owner >= OWNER_FIRST_PROVIDER + len(self.provider_members):
                    raise InvalidArgument(f"VertSecureBoost: tree {i} names a provider the model does not list")
