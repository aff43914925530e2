"""VertSecureBoost's parts: encrypted histograms against plaintext sums, the split search, binning, params."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from kernel.blocks.row_keys import id_keys
from kernel.components.vert_secureboost import histogram as histogram_module
from kernel.components.vert_secureboost import rows as rows_module
from kernel.components.vert_secureboost.constants import ROW_INDEX_COLUMN
from kernel.components.vert_secureboost.data import bin_matrix, bin_thresholds, fit_bins, row_draws
from kernel.components.vert_secureboost.gradients import packed_slot_bits
from kernel.components.vert_secureboost.histogram import (
    build_histograms,
    compress,
    decrypt_compressed,
    feature_groups,
    gh_headroom_bits,
    rows_per_ciphertext,
)
from kernel.components.vert_secureboost.level_rows import (
    LEFT_COLUMN,
    POSITION_SCHEMA,
    tie_pick,
    tie_summary,
)
from kernel.components.vert_secureboost.param import VertSecureBoostParam
from kernel.components.vert_secureboost.provider import choose_among_ties
from kernel.components.vert_secureboost.rows import IndexedRows, gathered_directions, gradient_block
from kernel.components.vert_secureboost.state import PROVIDER_COLUMN, NodeMoves, PromoterRows
from kernel.components.vert_secureboost.tree import (
    Objective,
    SplitSearch,
    Tree,
    fixed_point,
    fixed_point_integers,
    integer_sums,
    padded_histograms,
    plain_histograms,
)
from kernel.computing import Table, local_session, spark_session
from kernel.errors import InvalidArgument, ParamError
from kernel.security.paillier import (
    EncryptedVector,
    PaillierKeypair,
    WeakKeyWarning,
    generate_keypair,
)


@pytest.fixture(scope="module")
def keypair() -> PaillierKeypair:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        return generate_keypair(1024)


@pytest.mark.parametrize(("rows", "nodes"), [(3000, 3), (20, 2)])
def test_encrypted_histograms_equal_plaintext_sums(keypair: PaillierKeypair, rows: int, nodes: int) -> None:
    # Prepare: features of different bin counts; 3000 rows pair the small ones, 20 rows do not.
    rng = np.random.default_rng(rows)
    bins = np.array([2, 5, 7, 16, 3], dtype=np.int64)
    binned = np.column_stack([rng.integers(0, b, rows) for b in bins]).astype(np.int64)
    node = rng.integers(0, nodes, rows).astype(np.int64)
    g, h = rng.normal(size=rows), rng.uniform(0.0, 0.25, rows)
    encrypted = EncryptedVector.encrypt_packed(keypair.private_key, np.column_stack([g, h]), precision_bits=24,
                                               headroom_bits=gh_headroom_bits(rows, 16))
    assert encrypted.layout is not None

    # Execute: build, compress, send nothing, decrypt under the promoter's own layout and bound.
    histogram = build_histograms(encrypted, node, binned, bins, nodes, workers=2)
    per = rows_per_ciphertext(encrypted.layout, keypair.public_key.n_bits)
    packed = compress(histogram, encrypted.bound * rows, per, workers=2)
    flat = decrypt_compressed(keypair.private_key, packed, encrypted.layout.slot_bits, 2, encrypted.frac_bits,
                              encrypted.bound * rows, per, len(histogram), workers=2)

    # Assert
    paired = any(len(group) == 2 for group in feature_groups(bins, rows, nodes))
    assert paired == (rows == 3000)
    assert len(packed) == -(-len(histogram) // per) and per > 1
    expected = plain_histograms(node, binned, bins, g, h, nodes)
    np.testing.assert_allclose(padded_histograms(flat, bins, nodes), expected, atol=rows * 2.0**-24)


def test_histograms_on_worker_processes_are_the_same_ciphertexts(keypair: PaillierKeypair,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a threshold low enough that 600 rows go to two worker processes, with pairs
    monkeypatch.setattr(histogram_module, "HISTOGRAM_PROCESS_MIN_PRODUCTS", 100)
    rng = np.random.default_rng(11)
    rows, nodes = 600, 2
    bins = np.array([2, 5, 7, 16, 3, 4, 9], dtype=np.int64)
    binned = np.column_stack([rng.integers(0, b, rows) for b in bins]).astype(np.uint16)
    node = rng.integers(0, nodes, rows).astype(np.int64)
    encrypted = EncryptedVector.encrypt_packed(keypair.public_key, rng.normal(size=(rows, 2)), precision_bits=16,
                                               headroom_bits=gh_headroom_bits(rows, 16))

    # Execute
    here = build_histograms(encrypted, node, binned, bins, nodes, workers=1)
    spread = build_histograms(encrypted, node, binned, bins, nodes, workers=1, processes=2)

    # Assert: the same products in the same order, feature by feature
    assert any(len(group) == 2 for group in feature_groups(bins, rows, nodes))
    assert spread.ciphertexts == here.ciphertexts
    assert spread.bound == here.bound and spread.layout == here.layout


def _promoter_rows(labels: np.ndarray, partitions: int, objective: str = "regression") -> PromoterRows:
    """The promoter's rows of `labels` (one feature, x = row number) in `partitions` partitions,
    for two providers."""
    ids = np.array([f"r{i:05d}" for i in range(len(labels))])
    table = local_session(num_partitions=partitions).from_arrow(
        pa.table({"id": ids, "y": labels, "x": np.arange(len(labels), dtype=np.float64)}), "id")
    indexed = IndexedRows.build(table, ["id", "y", "x"])
    return PromoterRows.build(indexed.table, "y", ["x"], [np.array([len(labels) / 2.0])], Objective(objective), 24,
                              2, indexed.rows, lambda kept: kept)


def test_the_drawn_rows_bound_gives_the_width_one_vector_of_all_of_them_would_have(keypair: PaillierKeypair) -> None:
    # Prepare: 1000 rows in 4 partitions, regression from score 0 (g = -label, h = 1); the
    # largest |g| sits in the last partition.
    labels = np.random.default_rng(5).uniform(-0.5, 0.5, 1000)
    labels[977] = 3.75
    state = _promoter_rows(labels, 4)
    headroom = gh_headroom_bits(1000, 32)

    # Execute
    state.start_tree(seed=1, tree=0, subsample=1.0, init_score=0.0)
    bound = state.gradient_bound()
    whole = EncryptedVector.encrypt_packed(keypair.public_key, np.column_stack([-labels, np.ones(1000)]),
                                           precision_bits=24, headroom_bits=headroom)

    # Assert
    assert whole.layout is not None
    assert (packed_slot_bits(bound, headroom), bound) == (whole.layout.slot_bits, whole.bound) \
        == (2 + 24 + 1 + headroom, 3.75 * 2**24)


def test_the_drawn_rows_gradients_come_in_row_order_in_chunks_of_the_asked_size() -> None:
    # Prepare: 1000 rows in 3 partitions; about half drawn.
    labels = np.random.default_rng(6).uniform(-1.0, 1.0, 1000)
    state = _promoter_rows(labels, 3)

    # Execute
    drawn = state.start_tree(seed=3, tree=2, subsample=0.5, init_score=0.25)
    chunks = list(state.drawn_gradients(128))

    # Assert: the rows `row_draws` picks, increasing, 128 a chunk but the last; g = score - label.
    rows = np.concatenate([r for r, _ in chunks])
    expected = np.flatnonzero(row_draws(3, 2, np.arange(1000)) < 0.5)
    ids = np.array([f"r{i:05d}" for i in range(1000)])
    index_of_row = np.argsort(np.argsort(id_keys("id", pa.table({"id": ids}))))
    label_at = np.zeros(1000)
    label_at[index_of_row] = labels
    assert drawn == len(expected) and np.array_equal(rows, expected)
    assert [len(r) for r, _ in chunks[:-1]] == [128] * (len(chunks) - 1) and 0 < len(chunks[-1][0]) <= 128
    values = np.concatenate([v for _, v in chunks])
    np.testing.assert_allclose(values[:, 0], 0.25 - label_at[rows])
    np.testing.assert_allclose(values[:, 1], 1.0)
    # The promoter's histogram of the root (bins of x, x <= 500 in the first) sums the drawn rows' fixed-point g and h.
    histogram = state.histograms(np.array([0]), np.array([2]), np.array([0]), 1)
    row_of_index = np.argsort(index_of_row)
    low = row_of_index[rows] <= 500
    g = fixed_point(0.25 - label_at[rows], 24)
    np.testing.assert_array_equal(histogram[0, 0], [[g[low].sum(), low.sum()], [g[~low].sum(), (~low).sum()]])


def test_a_provider_answer_for_a_row_outside_its_nodes_is_refused_by_the_next_sums() -> None:
    # Prepare: 40 rows; the root is split by provider 0 into nodes 1 and 2.
    state = _promoter_rows(np.random.default_rng(7).uniform(-1.0, 1.0, 40), 2)
    state.start_tree(seed=1, tree=0, subsample=1.0, init_score=0.0)
    moves = NodeMoves(np.array([-1, -1, -1]), np.array([-1, -1, -1]), np.array([0, -1, -1]), np.array([1, -1, -1]),
                      np.array([2, -1, -1]))
    session = local_session()

    def answers(rows: list[int], provider: int) -> Table:
        return session.from_arrow(pa.table({
            ROW_INDEX_COLUMN: pa.array(rows, pa.int64()), LEFT_COLUMN: pa.array([r % 2 == 0 for r in rows]),
            PROVIDER_COLUMN: pa.array([provider] * len(rows), pa.int32())}), ROW_INDEX_COLUMN)

    # Execute / Assert: every row answered once moves every row; a row left out, a row named
    # twice, or answered by a provider whose split it is not in, is refused.
    state.split(moves, answers(list(range(40)), 0))
    sums = state.sums(3)
    assert sums.rows.tolist() == [0, 20, 20]
    for bad in (answers(list(range(39)), 0), answers([*range(40), 5], 0), answers(list(range(40)), 1)):
        again = _promoter_rows(np.zeros(40), 2)
        again.start_tree(seed=1, tree=0, subsample=1.0, init_score=0.0)
        again.split(moves, bad)
        with pytest.raises(InvalidArgument, match="split_rows"):
            again.sums(3)


def test_a_histogram_with_the_wrong_number_of_ciphertexts_is_refused(keypair: PaillierKeypair) -> None:
    encrypted = EncryptedVector.encrypt_packed(keypair.public_key, np.ones((4, 2)), precision_bits=8, headroom_bits=8)
    assert encrypted.layout is not None
    with pytest.raises(InvalidArgument, match="needs 1 ciphertexts, got 4"):
        decrypt_compressed(keypair.private_key, encrypted, encrypted.layout.slot_bits, 2, encrypted.frac_bits,
                           encrypted.bound * 4, 4, 4, workers=1)


def test_split_search_finds_the_separating_bin_and_respects_min_child_weight() -> None:
    # Prepare: one node, one feature of 4 bins; rows in bins 0-1 have gradient -1, in 2-3 +1.
    hist = np.zeros((1, 1, 4, 2))
    hist[0, 0, :, 0] = [-3.0, -2.0, 2.0, 3.0]
    hist[0, 0, :, 1] = [1.0, 1.0, 1.0, 1.0]
    bins = np.array([4])

    # Execute
    gain, feature, bin_ = SplitSearch(reg_lambda=0.0, min_child_weight=0.0).best(hist, bins)
    blocked, _, _ = SplitSearch(reg_lambda=0.0, min_child_weight=2.5).best(hist, bins)

    # Assert: left = bins 0..1, gain = (25/2 + 25/2 - 0) / 2; no side can reach hessian 2.5 and 1.5.
    assert (feature[0], bin_[0]) == (0, 1)
    assert gain[0] == pytest.approx(12.5)
    assert blocked[0] == -np.inf


def test_split_search_lists_every_split_of_the_best_gain_and_takes_the_lowest() -> None:
    # Prepare: one node; feature 2 cuts the rows as feature 1 does at bin 1, at its bin 0 and at its
    # empty bin 1.
    hist = np.zeros((1, 3, 4, 2))
    hist[0, 0, :, 0] = [-1.0, 1.0, -1.0, 1.0]
    hist[0, 1, :, 0] = [-3.0, -2.0, 2.0, 3.0]
    hist[0, 2, :, 0] = [-5.0, 0.0, 2.0, 3.0]
    hist[0, :, :, 1] = 1.0
    hist[0, 2, :, 1] = [2.0, 0.0, 1.0, 1.0]
    bins = np.array([4, 4, 4])
    search = SplitSearch(reg_lambda=0.0, min_child_weight=0.0)

    # Execute
    gain = search.gains(hist, bins)
    best, feature, bin_ = search.best_of(gain)
    tied_features, tied_bins = SplitSearch.ties(gain[0], float(best[0]))

    # Assert
    assert (feature[0], bin_[0]) == (1, 1)
    assert list(zip(tied_features.tolist(), tied_bins.tolist(), strict=True)) == [(1, 1), (2, 0), (2, 1)]


def test_a_provider_picks_among_ties_by_the_rows_then_its_feature_order() -> None:
    # Prepare: rows 0-3; features 0 and 2 send rows {1, 2} left, feature 1 sends {0, 3} left
    # (its mirror), feature 3 sends {1, 2} left at bin 0 and at bin 1 (bin 1 holds no row of the node).
    node_rows = np.array([[1, 0, 5, 2], [0, 1, 1, 0], [0, 1, 1, 0], [1, 0, 5, 2]], dtype=np.uint16)

    def left_masks(features: np.ndarray, bins: np.ndarray) -> np.ndarray:
        return node_rows[:, features] <= bins[None, :]

    # Execute
    mirrored_first = choose_among_ties(left_masks(np.array([1, 2, 0]), np.array([0, 1, 0])),
                                       np.array([1, 2, 0]), np.array([0, 1, 0]))
    same_rows = choose_among_ties(left_masks(np.array([3, 2, 3, 0]), np.array([1, 1, 0, 0])),
                                  np.array([3, 2, 3, 0]), np.array([1, 1, 0, 0]))

    # Assert: feature 1's left side holds row 0, so it wins over the mirror; of splits that send
    # the same rows left, the lowest feature, then the lowest bin.
    assert mirrored_first == 0
    assert same_rows == 3


def test_ties_picked_from_partition_summaries_match_the_pick_over_all_rows() -> None:
    # Prepare: nodes of 1 to 40 rows with 1 to 12 candidates, each drawn from a few distinct
    # left sides (so that many candidates send the same rows left), the rows dealt at random
    # over 1 to 4 partitions, each partition's rows in a shuffled order.
    rng = np.random.default_rng(5)
    for _ in range(300):
        rows = int(rng.integers(1, 41))
        candidates = int(rng.integers(1, 13))
        sides = rng.random((rows, int(rng.integers(1, 5)))) < 0.5
        masks = sides[:, rng.integers(0, sides.shape[1], candidates)]
        features = rng.integers(0, 4, candidates)
        bins = rng.integers(0, 3, candidates)
        index = np.sort(rng.choice(1000, rows, replace=False))
        part = rng.integers(0, int(rng.integers(1, 5)), rows)

        # Execute: one summary per partition holding rows of the node (rows in increasing order).
        summaries = []
        for p in np.unique(part):
            mine = rng.permutation(np.flatnonzero(part == p))
            order = mine[np.argsort(index[mine])]
            summaries.append(tie_summary(masks[order], index[order]))
        picked = tie_pick(summaries, features, bins)

        # Assert: the candidate the provider picks when it holds every row of the node.
        assert picked == choose_among_ties(masks, features, bins)


def test_fixed_point_sums_do_not_depend_on_their_order() -> None:
    values = fixed_point(np.random.default_rng(3).normal(size=5000), 24)
    assert np.array_equal(values * 2**24, np.rint(values * 2**24))
    assert float(np.sum(values)) == float(np.sum(values[::-1])) == float(np.cumsum(values[np.argsort(values)])[-1])


def test_integer_sums_per_group_are_exact_in_any_split_and_order() -> None:
    rng = np.random.default_rng(4)
    units = fixed_point_integers(rng.normal(size=3000), 24)
    group = rng.integers(0, 5, size=3000)
    whole = integer_sums(group, units, 6)
    order = rng.permutation(3000)
    parts = integer_sums(group[order[:1000]], units[order[:1000]], 6) + \
        integer_sums(group[order[1000:]], units[order[1000:]], 6)
    assert np.array_equal(whole, parts)
    assert whole.tolist() == [int(units[group == k].sum()) for k in range(6)]
    assert whole[5] == 0 and integer_sums(group[:0], units[:0], 3).tolist() == [0, 0, 0]


def test_row_draws_depend_on_the_seed_tree_and_row_only() -> None:
    index = np.arange(20_000, dtype=np.int64)
    draws = row_draws(7, 2, index)
    assert ((draws >= 0.0) & (draws < 1.0)).all()
    assert abs(float((draws < 0.3).mean()) - 0.3) < 0.02
    np.testing.assert_array_equal(row_draws(7, 2, index[::-1]), draws[::-1])
    np.testing.assert_array_equal(row_draws(7, 2, index[5000:6000]), draws[5000:6000])
    assert not np.array_equal(row_draws(7, 3, index), draws)
    assert not np.array_equal(row_draws(8, 2, index), draws)


def test_bins_follow_quantiles_and_put_equal_values_together() -> None:
    values = np.arange(1000, dtype=np.float64)
    thresholds = bin_thresholds(values, 4)
    binned = bin_matrix(values[:, None], [thresholds])[:, 0]
    assert np.bincount(binned).tolist() == [250, 250, 250, 250]
    few = fit_bins(np.array([[1.0], [1.0], [3.0]]), 32)[0]
    assert few.tolist() == [2.0]
    assert bin_thresholds(np.ones(5), 8).size == 0


def _rows_in_key_order(data: pa.Table, features: list[str]) -> np.ndarray:
    """The features of `data` in the order of the rows' keys (first 8 bytes of SHA-256(id))."""
    keys = id_keys("id", data)
    return np.column_stack([data.column(f).to_numpy() for f in features])[np.argsort(keys)]


def _three_features(rows: int) -> pa.Table:
    rng = np.random.default_rng(rows)
    return pa.table({"id": [f"r{i:05d}" for i in range(rows)], "a": rng.normal(size=rows),
                     "b": rng.integers(0, 5, rows).astype(np.float64), "c": rng.exponential(size=rows)})


@pytest.mark.spark
def test_rows_are_numbered_by_the_rank_of_their_key_on_either_backend(spark: Any) -> None:
    # Prepare: 5,000 rows in 4 partitions; the same ids with one
    # repeated, in another partition than its first copy.
    data = _three_features(5000)
    repeated = pa.concat_tables([data, data.slice(17, 1)])
    sessions = [local_session(num_workers=2, num_partitions=4), spark_session(spark)]

    # Execute
    numbered, doubled = [], []
    for session in sessions:
        built = IndexedRows.build(session.from_arrow(data, "id", num_partitions=4), ["id", "a"])
        index = built.table.collect() if session.backend == "LOCAL" else built.table.select(["id", ROW_INDEX_COLUMN]) \
            .reduce(lambda block: block.select(["id", ROW_INDEX_COLUMN]), lambda x, y: pa.concat_tables([x, y]))
        numbered.append((built, dict(zip(index.column("id").to_pylist(), index.column(ROW_INDEX_COLUMN).to_pylist(),
                                         strict=True))))
        doubled.append(IndexedRows.build(session.from_arrow(repeated, "id", num_partitions=4), ["id", "a"]))

    # Assert: each row's index is its key's rank, the digest is the same; a repeated id is found.
    rank = np.argsort(np.argsort(id_keys("id", data)))
    expected = dict(zip(data.column("id").to_pylist(), rank.tolist(), strict=True))
    for built, index in numbered:
        assert index == expected and built.rows == 5000 and built.unique
    assert numbered[0][0].digest == numbered[1][0].digest
    assert not any(built.unique for built in doubled) and doubled[0].digest != numbered[0][0].digest


def test_bins_are_cut_from_the_rows_of_the_smallest_keys_whatever_the_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: a sample of 200 of 500 rows, gathered two features (400 values) a pass.
    monkeypatch.setattr(rows_module, "BIN_SAMPLE_ROWS", 200)
    monkeypatch.setattr(rows_module, "BIN_SAMPLE_VALUES_PER_PASS", 400)
    data, features = _three_features(500), ["a", "b", "c"]
    sessions = [local_session(num_workers=2, num_partitions=p) for p in (1, 3)]

    # Execute
    try:
        built = [IndexedRows.build(s.from_arrow(data, "id"), ["id", *features]) for s in sessions]
        found = [rows.bin_thresholds(features, 16) for rows in built]
    finally:
        for session in sessions:
            session.stop()

    # Assert: both partitionings number the rows alike and cut the sample's quantiles.
    expected = fit_bins(_rows_in_key_order(data, features)[:200], 16)
    assert built[0].digest == built[1].digest and built[0].rows == 500 and built[0].unique
    for thresholds in found:
        assert len(thresholds) == 3
        for ours, theirs in zip(thresholds, expected, strict=True):
            np.testing.assert_array_equal(ours, theirs)
    assert len(expected[1]) == 4  # five distinct values: the midpoints between them


def test_partition_histograms_and_comparisons_equal_the_whole_tables(keypair: PaillierKeypair) -> None:
    # Prepare: 300 rows in 3 partitions; 250 drawn rows, spread over two nodes (or none), their
    # ciphertexts in two chunks.
    data, features = _three_features(300), ["a", "b", "c"]
    session = local_session(num_workers=2, num_partitions=3)
    rng = np.random.default_rng(3)
    g, h = rng.normal(size=300), rng.uniform(0.1, 0.25, 300)
    node_of_row = rng.integers(-1, 2, 300).astype(np.int64)
    sampled = np.sort(rng.choice(300, 250, replace=False)).astype(np.int64)
    cipher_of_row = np.full(300, -1, dtype=np.int64)
    cipher_of_row[sampled] = np.arange(250)
    encrypted = EncryptedVector.encrypt_packed(keypair.private_key, np.column_stack([g[sampled], h[sampled]]),
                                               precision_bits=24, headroom_bits=gh_headroom_bits(250, 8))
    assert encrypted.layout is not None
    chunks = [(sampled[:100], encrypted[:100]), (sampled[100:], encrypted[100:])]
    slots = np.array([2, 0], dtype=np.int64)
    asked = np.array([5, 17, 299, 0, 17], dtype=np.int64)

    # Execute: the ciphertexts in this process (LOCAL), and beside the rows in the partitions (SPARK).
    try:
        indexed = IndexedRows.build(session.from_arrow(data, "id"), ["id", *features])
        thresholds = indexed.bin_thresholds(features, 8)
        binned = indexed.binned(features, thresholds)
        here = binned.gradients_here(chunks)
        histogram = here.encrypted_histograms(node_of_row, slots, 2, processes=1)
        received = session.from_arrow(pa.concat_tables([gradient_block(r, gh) for r, gh in chunks]),
                                      ROW_INDEX_COLUMN, num_partitions=2)
        beside = binned.gradients_beside(received, here.encoding, 250, slots)
        at = np.flatnonzero(node_of_row >= 0)
        positions = session.from_arrow(pa.table([pa.array(at, pa.int64()), pa.array(node_of_row[at], pa.int32())],
                                                schema=POSITION_SCHEMA), ROW_INDEX_COLUMN, num_partitions=2)
        summed = beside.encrypted_histograms(positions, np.arange(2), slots, 2, processes=1)
        nothing = beside.encrypted_histograms(positions, np.full(2, -1), slots, 2, processes=1)
        pairs = (at, node_of_row[at])
        handed = beside.encrypted_histograms(pairs, np.arange(2), slots, 2, processes=1)
        level = binned.at_positions(positions, np.array([1, 2]))
        directions = binned.directions(level, np.array([1]), np.array([2]), np.array([3]), 2).collect()
        pair_level = binned.at_positions(pairs, np.array([1, 2]))
        gathered = gathered_directions(binned.directions(pair_level, np.array([1]), np.array([2]), np.array([3]), 2))
        left = binned.compare(asked, np.array([0, 1, 2, 2, 0]), np.array([3.0, 1.0, 0.0, 7.0, 4.0]))
        raw_left = indexed.compare(features, asked, np.array([0, 1, 2, 2, 0]), np.array([0.0, 2.0, 1.0, 0.5, -1.0]))
    finally:
        session.stop()

    # Assert
    matrix = _rows_in_key_order(data, features)
    whole = bin_matrix(matrix, thresholds)
    keep = (cipher_of_row >= 0) & (node_of_row >= 0)
    bins = binned.bins[slots]
    expected = plain_histograms(node_of_row[keep], whole[np.ix_(keep, slots)], bins, g[keep], h[keep], 2)
    for vector in (histogram, summed):
        flat = vector.decrypt(keypair.private_key).reshape(-1, 2)
        np.testing.assert_allclose(padded_histograms(flat, bins, 2), expected, atol=300 * 2.0**-24)
    # The same products of the same ciphertexts, in whatever order the partitions took them,
    # whether the level's positions are joined as a table or handed to the partitions.
    assert summed.ciphertexts == histogram.ciphertexts == handed.ciphertexts
    assert (summed.layout, summed.frac_bits) == (histogram.layout, histogram.frac_bits)
    assert here.encoding == beside.encoding and here.count == beside.count == 250
    assert not nothing.decrypt(keypair.private_key).any() and len(nothing) == len(histogram)
    assert left.tolist() == (whole[asked, [0, 1, 2, 2, 0]] <= [3, 1, 0, 7, 4]).tolist()
    assert raw_left.tolist() == (matrix[asked, [0, 1, 2, 2, 0]] <= [0.0, 2.0, 1.0, 0.5, -1.0]).tolist()
    # Every row of node 1 once, with whether feature 2's bin is at most 3.
    answered = directions.sort_by(ROW_INDEX_COLUMN)
    in_node = np.flatnonzero(node_of_row == 1)
    assert answered.column(0).to_pylist() == in_node.tolist()
    assert answered.column(1).to_pylist() == (whole[in_node, 2] <= 3).tolist()
    order = np.argsort(gathered[0])
    assert gathered[0][order].tolist() == in_node.tolist()
    assert gathered[1][order].tolist() == (whole[in_node, 2] <= 3).tolist()


def test_a_tree_from_a_model_with_children_out_of_range_is_refused() -> None:
    tree = Tree()
    tree.split(0, 0, 0, 1.5, -1)
    raw = tree.to_dict()
    raw["left"][0] = 7
    with pytest.raises(InvalidArgument, match="children are out of range"):
        Tree.from_dict(raw, "tree 0")


def test_params_name_the_bad_field() -> None:
    with pytest.raises(ParamError, match="key_bits"):
        VertSecureBoostParam.from_dict({"key_bits": 512})
    with pytest.raises(ParamError, match="subsample"):
        VertSecureBoostParam.from_dict({"subsample": 0.0})
    with pytest.raises(ParamError, match="objective"):
        VertSecureBoostParam.from_dict({"objective": "multiclass"})
