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
import secrets
import time
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
    PREDICT_RESULT_COLUMN,
    PREDICT_SCORE_COLUMN,
    PROVIDER_IMPORTANCE_KEY,
)
from kernel.components.vert_secureboost.data import row_draws, sample_features
from kernel.components.vert_secureboost.gradients import GradientEncoding, send_encrypted_gh
from kernel.components.vert_secureboost.histogram import decrypt_compressed, gh_headroom_bits
from kernel.components.vert_secureboost.level_rows import (
    DIRECTION_SCHEMA,
    LEFT_SCHEMA,
    POSITION_SCHEMA,
    REQUEST_SCHEMA,
    StreamCheck,
    send_arrays,
)
from kernel.components.vert_secureboost.param import VertSecureBoostParam
from kernel.components.vert_secureboost.phases import PhaseClock
from kernel.components.vert_secureboost.rows import BinnedRows, IndexedRows, with_values
from kernel.components.vert_secureboost.tree import (
    Forest,
    Objective,
    SplitSearch,
    Tree,
    fixed_point,
    fixed_point_integers,
    integer_sums,
    padded_histograms,
)
from kernel.components.vert_secureboost.variables import VertSecureBoostVariables
from kernel.constants import PROVIDER
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.security.paillier import EncryptedVector, PaillierPrivateKey, generate_keypair
from kernel.security.paillier.parallel import resolve_workers

FloatArray = npt.NDArray[np.float64]
PAYLOAD: Final = PayloadCheck(COMPONENT)
IntArray = npt.NDArray[np.int64]


class _TreeRound:
    """The state of the tree being grown: its nodes, where every row is, the sampled rows."""

    def __init__(self, rows: int, sampled: IntArray, g: FloatArray, h: FloatArray, precision_bits: int) -> None:
        self.tree = Tree()
        self.node_of_row: IntArray = np.zeros(rows, dtype=np.int64)
        self.sampled = sampled
        self.precision_bits = precision_bits
        # g and h on the encrypted values' fixed-point grid: the promoter's own histograms and
        # every node's sums hold what a provider's decrypted histograms would for the same rows.
        self.g_fixed, self.h_fixed = fixed_point(g, precision_bits), fixed_point(h, precision_bits)
        self.g_units = fixed_point_integers(g, precision_bits)
        self.h_units = fixed_point_integers(h, precision_bits)
        self.parent: dict[int, int] = {}
        self.sibling: dict[int, int] = {}

    def sums(self, nodes: list[int]) -> tuple[FloatArray, FloatArray, IntArray]:
        """Gradient sum, hessian sum and sampled row count of each of `nodes`: exact sums of the
        fixed-point values, whatever the order of the rows."""
        size = len(self.tree.owner)
        at = self.node_of_row[self.sampled]
        g = np.ldexp(integer_sums(at, self.g_units[self.sampled], size).astype(np.float64), -self.precision_bits)
        h = np.ldexp(integer_sums(at, self.h_units[self.sampled], size).astype(np.float64), -self.precision_bits)
        n = np.bincount(at, minlength=size).astype(np.int64)
        return g[nodes], h[nodes], n[nodes]


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
        labels = indexed.column(label)
        objective.check_labels(labels, label)
        thresholds = indexed.bin_thresholds(self.features, param.max_bin)
        binned = indexed.binned(self.features, thresholds)
        providers = self.ctx.roles.parties(PROVIDER)
        self.provider_members = [p.member_id for p in providers]
        private_key = self._start_providers(indexed, param) if providers else None

        self.objective_name, self.init_score = objective.name, objective.init_score(labels)
        self.trees, self.loss_history = [], []
        self.importance = {name: {"split": 0, "gain": 0.0} for name in self.features}
        for member in self.provider_members:
            self.importance[PROVIDER_IMPORTANCE_KEY.format(member_id=member)] = {"split": 0, "gain": 0.0}
        seed = param.random_seed if param.random_seed is not None else secrets.randbits(62)
        score = np.full(len(labels), self.init_score)
        durations: list[list[float]] = []
        phases: list[list[Any]] = []
        for t in range(param.num_trees):
            started = time.perf_counter()
            rng = np.random.default_rng([seed, t])
            g, h = objective.gradients(score, labels)
            tree, leaf_of_row = self._grow_tree(t, seed, rng, g, h, binned, thresholds, private_key)
            score = score + np.asarray(tree.value)[leaf_of_row]
            self.trees.append(tree)
            loss = objective.loss(score, labels)
            self.loss_history.append([t, loss])
            durations.append([t, time.perf_counter() - started])
            phases.append([t, self.clock.take()])
            self.tracker.set_progress(100.0 * (t + 1) / param.num_trees, f"tree {t + 1}: loss {loss:.6f}")
        self.tracker.log_metric(METRIC_LOSS, METRIC_NAMESPACE_TRAIN, self.loss_history, metric_type="loss")
        self.tracker.log_metric(METRIC_TREE_SECONDS, METRIC_NAMESPACE_TRAIN, durations)
        self.tracker.log_metric(METRIC_TREE_PHASES, METRIC_NAMESPACE_TRAIN, phases)
        self.tracker.log_metric(METRIC_FEATURE_IMPORTANCE, METRIC_NAMESPACE_TRAIN, self.importance)

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
        self, t: int, seed: int, rng: np.random.Generator, g: FloatArray, h: FloatArray, binned: BinnedRows,
        thresholds: list[FloatArray], private_key: PaillierPrivateKey | None,
    ) -> tuple[Tree, IntArray]:
        """Grow tree t level by level; returns it with every training row's leaf.

        With subsample < 1 the tree's rows are those whose draw (`row_draws` of the seed, the
        tree and the row index) is below it; the row of the lowest draw when none is."""
        param, tv = self.param, self.ctx.variables(VertSecureBoostVariables)
        rows = len(g)
        sampled = np.arange(rows, dtype=np.int64)
        if param.subsample < 1.0:
            draws = row_draws(seed, t, sampled)
            sampled = np.flatnonzero(draws < param.subsample).astype(np.int64)
            if not len(sampled):
                sampled = np.array([int(np.argmin(draws))], dtype=np.int64)
        own = sample_features(len(self.features), param.colsample, rng)
        state = _TreeRound(rows, sampled, g, h, param.precision_bits)
        encoding: GradientEncoding | None = None
        if private_key is not None:
            encoding = send_encrypted_gh(tv.at(t), private_key, sampled, np.column_stack([g[sampled], h[sampled]]),
                                         param.precision_bits, gh_headroom_bits(len(sampled), param.max_bin),
                                         resolve_workers(param.workers), self.clock)
        search = SplitSearch(param.reg_lambda, param.min_child_weight)
        least = max(param.min_child_weight, MIN_CHILD_HESSIAN)
        level = [0]
        previous: list[dict[int, FloatArray]] = [{} for _ in self.provider_members]
        slot_bins: list[IntArray] = [np.zeros(0, np.int64) for _ in self.provider_members]
        for depth in range(param.max_depth):
            _, h_sum, n_sum = state.sums(level)
            open_nodes = [node for node, hh, nn in zip(level, h_sum.tolist(), n_sum.tolist(), strict=True)
                          if nn >= 2 and hh >= 2 * least]
            if not open_nodes:
                if private_key is not None:
                    tv.at(t, depth).node_plan.remote({"done": True})
                break
            sizes = dict(zip(level, n_sum.tolist(), strict=True))
            compute = [0] if depth == 0 else self._smaller_children(level, open_nodes, sizes)
            position = np.full(len(state.tree.owner), -1, dtype=np.int64)
            position[level] = np.arange(len(level))
            if private_key is not None:
                self._send_node_rows(t, depth, state, level, open_nodes, position[compute])
            with self.clock.phase(PHASE_SPLITS):
                candidates = [self._own_best(state, open_nodes, own, binned, search)]
            provider_gains: list[FloatArray] = []
            for k in range(len(self.provider_members)):
                assert encoding is not None and private_key is not None
                level_hist, slot_bins[k] = self._provider_histograms(
                    k, t, depth, compute, state, previous[k], slot_bins[k], encoding, len(sampled), private_key
                )
                previous[k] = level_hist
                with self.clock.phase(PHASE_SPLITS):
                    stacked = np.stack([level_hist[node] for node in open_nodes])
                    provider_gains.append(search.gains(stacked, slot_bins[k]))
                    candidates.append(search.best_of(provider_gains[k]))
            level = self._apply_splits(t, depth, level, open_nodes, candidates, provider_gains, thresholds, binned,
                                       state)
            if not level:  # no node split: the providers wait for the next level's plan
                if private_key is not None and depth + 1 < param.max_depth:
                    tv.at(t, depth + 1).node_plan.remote({"done": True})
                break
        g_leaf, h_leaf, _ = state.sums(list(range(len(state.tree.owner))))
        values = search.leaf_value(g_leaf, h_leaf, param.learning_rate)
        is_leaf = np.asarray(state.tree.owner) == OWNER_LEAF
        state.tree.value = np.where(is_leaf, values, 0.0).tolist()
        return state.tree, state.node_of_row

    def _send_node_rows(self, t: int, depth: int, state: _TreeRound, level: list[int], open_nodes: list[int],
                        compute: IntArray) -> None:
        """The level's plan (its nodes, those whose histograms to build, the rows that follow),
        then the stream `node_rows`: every row of an open node and the node's position in the
        level, in row order."""
        scope = self.ctx.variables(VertSecureBoostVariables).at(t, depth)
        position = np.full(len(state.tree.owner), -1, dtype=np.int32)
        position[open_nodes] = [level.index(node) for node in open_nodes]
        at = position[state.node_of_row]
        rows = np.flatnonzero(at >= 0).astype(np.int64)
        with self.clock.phase(PHASE_SEND):
            scope.node_plan.remote({"done": False, "rows": len(rows), "nodes": len(level), "compute": compute})
            send_arrays(lambda index, block: scope.at(index).node_rows.remote(block), POSITION_SCHEMA, rows,
                        at[rows])

    @staticmethod
    def _smaller_children(level: list[int], open_nodes: list[int], sizes: dict[int, int]) -> list[int]:
        """Of every pair of siblings with an open node, the child with fewer sampled rows."""
        wanted = set(open_nodes)
        chosen = []
        for left, right in zip(level[0::2], level[1::2], strict=True):
            if left in wanted or right in wanted:
                chosen.append(left if sizes[left] <= sizes[right] else right)
        return chosen

    def _own_best(self, state: _TreeRound, open_nodes: list[int], own: IntArray, binned: BinnedRows,
                  search: SplitSearch) -> tuple[FloatArray, IntArray, IntArray]:
        """The best split of every open node over the promoter's sampled features (global indices)."""
        if not len(own):
            return np.full(len(open_nodes), -np.inf), np.zeros(len(open_nodes), np.int64), np.zeros(len(open_nodes), np.int64)
        index = np.full(len(state.tree.owner), -1, dtype=np.int64)
        index[open_nodes] = np.arange(len(open_nodes))
        node_of_row = np.full(len(state.node_of_row), -1, dtype=np.int64)
        node_of_row[state.sampled] = index[state.node_of_row[state.sampled]]
        hist = binned.plain_histograms(own, node_of_row, state.g_fixed, state.h_fixed, len(open_nodes))
        gain, feature, bin_ = search.best(hist, binned.bins[own])
        return gain, own[feature], bin_

    def _provider_histograms(
        self, k: int, t: int, depth: int, compute: list[int], state: _TreeRound, parents: dict[int, FloatArray],
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
            if node in state.sibling:
                level_hist[state.sibling[node]] = parents[state.parent[node]] - level_hist[node]
        return level_hist, bins

    def _apply_splits(
        self, t: int, depth: int, level: list[int], open_nodes: list[int],
        candidates: list[tuple[FloatArray, IntArray, IntArray]], provider_gains: list[FloatArray],
        thresholds: list[FloatArray], binned: BinnedRows, state: _TreeRound,
    ) -> list[int]:
        """Split every open node whose best gain is high enough; returns the next level's nodes.

        Ties between members go to the promoter, then to the providers in role order. A
        provider whose best split a node takes is sent every (slot, bin) of its own that ties
        for that gain and picks among them itself (`choose_among_ties`), so the secret slot
        order never decides.
        """
        param, tv, tree = self.param, self.ctx.variables(VertSecureBoostVariables), state.tree
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
        ours = [i for i in splitting if winner[i] == 0]
        our_rows = [np.flatnonzero(state.node_of_row == open_nodes[i]) for i in ours]
        our_left = self._our_directions(binned, our_rows, own_feature[ours], own_bin[ours])
        split_ids: dict[int, int] = {}
        for k, chosen in enumerate(requests):
            with self.clock.phase(PHASE_WAIT):
                answer = tv.at(t, depth).split_result.get(idx=k)
            result = PAYLOAD.fields(answer, f"provider {k}'s split_result", "split_ids")
            ids = PAYLOAD.int_array(result["split_ids"], f"provider {k}'s split_ids", 0, 1 << 62, len(chosen))
            split_ids.update(zip(chosen, ids.tolist(), strict=True))
        # Every row of a provider's chosen node, counted before any row moves.
        sizes = np.bincount(state.node_of_row, minlength=len(tree.owner))
        next_level: list[int] = []
        for i in splitting:
            node = open_nodes[i]
            if winner[i] == 0:
                f, b = int(own_feature[i]), int(own_bin[i])
                left_child, right_child = tree.split(node, OWNER_PROMOTER, f, float(thresholds[f][b]), -1)
                self._credit(self.features[f], float(best[i]))
            else:
                k = int(winner[i]) - 1
                left_child, right_child = tree.split(node, OWNER_FIRST_PROVIDER + k, -1, 0.0, split_ids[i])
                self._credit(PROVIDER_IMPORTANCE_KEY.format(member_id=self.provider_members[k]), float(best[i]))
            for child, other in ((left_child, right_child), (right_child, left_child)):
                state.parent[child], state.sibling[child] = node, other
            next_level += [left_child, right_child]
        left_of, right_of = np.asarray(tree.left, dtype=np.int64), np.asarray(tree.right, dtype=np.int64)
        for i, rows, go_left in zip(ours, our_rows, our_left, strict=True):
            node = open_nodes[i]
            state.node_of_row[rows] = np.where(go_left, left_of[node], right_of[node])
        for k, chosen in enumerate(requests):
            self._receive_directions(t, depth, k, [open_nodes[i] for i in chosen], sizes, left_of, right_of, state)
        return next_level

    def _receive_directions(self, t: int, depth: int, k: int, nodes: list[int], sizes: IntArray, left_of: IntArray,
                            right_of: IntArray, state: _TreeRound) -> None:
        """Provider k's stream `split_rows` for its chosen `nodes`: every row of them once, with
        whether it goes left; each message's rows are moved to their children as it arrives
        (a row named twice is then in no chosen node, and refused)."""
        scope = self.ctx.variables(VertSecureBoostVariables).at(t, depth)
        asked = np.zeros(len(left_of), dtype=np.bool_)
        asked[nodes] = True

        def move(rows: IntArray, message: pa.Table, where: str) -> None:
            if len(np.unique(rows)) != len(rows) or not asked[state.node_of_row[rows]].all():
                raise InvalidArgument(f"{COMPONENT}: {where} names a row that is not in a node of provider {k}'s "
                                      "splits, or one named before")
            at = state.node_of_row[rows]
            left = np.asarray(message.column(1).to_numpy(zero_copy_only=False), dtype=np.bool_)
            state.node_of_row[rows] = np.where(left, left_of[at], right_of[at])

        check = StreamCheck(f"provider {k}'s split_rows", LEFT_SCHEMA, len(state.node_of_row),
                            int(sizes[nodes].sum()), False, move)
        with self.clock.phase(PHASE_WAIT):
            for _ in messages(lambda index: scope.at(index).split_rows.get(idx=k), check):
                pass

    @staticmethod
    def _our_directions(binned: BinnedRows, row_lists: list[IntArray], features: IntArray,
                        bins: IntArray) -> list[npt.NDArray[np.bool_]]:
        """For each of our chosen splits, whether each of its node's rows goes left (bin <= the split's)."""
        if not row_lists:
            return []
        sizes = [len(rows) for rows in row_lists]
        left = binned.compare(np.concatenate(row_lists), np.repeat(features.astype(np.int64), sizes),
                              np.repeat(bins.astype(np.float64), sizes))
        return np.split(left, np.cumsum(sizes)[:-1])

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
        columns = [data.id_column] + ([label] if label else []) + self.features
        indexed = IndexedRows.build(data.table, columns)
        indexed.check_unique()
        forest = Forest(self.trees)
        n = indexed.rows
        order = self._provider_order()
        if order:
            tv.predict_setup.remote({"rows": n, "digest": indexed.digest,
                                     "max_depth": forest.depth})
            for k, ack in enumerate(tv.predict_ack.get_all()):
                if not isinstance(ack, dict) or ack.get("aligned") is not True:
                    raise InvalidArgument(
                        f"VertSecureBoost: provider {k}'s prediction rows do not match the promoter's {n} ids; "
                        "run Intersection on the prediction data too"
                    )
        current = forest.start(n)
        for depth in range(forest.depth):
            internal = forest.owner[current] != OWNER_LEAF
            if not internal.any():
                for k in range(len(order)):
                    tv.at(depth).predict_request.remote({"done": True}, idx=k)
                break
            _, go_left = forest.promoter_directions_by(
                current, lambda rows, features, cuts: indexed.compare(self.features, rows, features, cuts))
            asked = []
            scope = tv.at(depth)
            for k, model_k in enumerate(order):
                at = forest.owner[current] == OWNER_FIRST_PROVIDER + model_k
                _, row_index = np.nonzero(at)
                scope.predict_request.remote({"done": False, "pairs": len(row_index)}, idx=k)
                send_arrays(functools.partial(self._put_request, scope, k), REQUEST_SCHEMA,
                            np.arange(len(row_index), dtype=np.int64), row_index.astype(np.int64),
                            forest.split_id[current[at]])
                asked.append((k, at, len(row_index)))
            for k, at, size in asked:
                go_left[at] = self._receive_predictions(scope, k, size)
            current = forest.step(current, internal, go_left)
        raw = self.init_score + forest.value[current].sum(axis=0) if len(self.trees) else np.full(n, self.init_score)
        score = Objective(self.objective_name).output(np.asarray(raw, dtype=np.float64))
        out: dict[str, npt.NDArray[Any]] = {PREDICT_SCORE_COLUMN: score}
        if self.objective_name == "binary":
            out[PREDICT_RESULT_COLUMN] = (score >= param.threshold).astype(np.int64)
        else:
            out[PREDICT_RESULT_COLUMN] = score
        table = with_values(indexed, [data.id_column] + ([label] if label else []), out)
        return LabeledTable(table, label, ())

    @staticmethod
    def _put_request(scope: VertSecureBoostVariables, k: int, index: int, block: pa.Table) -> None:
        scope.at(index).predict_rows.remote(block, idx=k)

    @staticmethod
    def _receive_predictions(scope: VertSecureBoostVariables, k: int, size: int) -> npt.NDArray[np.bool_]:
        """Provider k's stream `predict_directions`: whether each of the `size` pairs asked goes
        left, every pair once (in any order)."""
        go_left = np.zeros(size, dtype=np.bool_)
        seen = np.zeros(size, dtype=np.bool_)

        def fill(pairs: IntArray, message: pa.Table, where: str) -> None:
            if len(np.unique(pairs)) != len(pairs) or seen[pairs].any():
                raise InvalidArgument(f"{COMPONENT}: {where} names a pair twice")
            seen[pairs] = True
            go_left[pairs] = np.asarray(message.column(1).to_numpy(zero_copy_only=False), dtype=np.bool_)

        check = StreamCheck(f"provider {k}'s predict_directions", DIRECTION_SCHEMA, size, size, False, fill)
        for _ in messages(lambda index: scope.at(index).predict_directions.get(idx=k), check):
            pass
        return go_left

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
