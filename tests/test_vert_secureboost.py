"""VertSecureBoost through the task path: accuracy against scikit-learn, predict jobs, SPARK, STANDALONE, errors."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import train_test_split

from kernel.components.vert_secureboost import constants as constants_module
from kernel.components.vert_secureboost import gradients as gradients_module
from kernel.components.vert_secureboost.constants import ROW_INDEX_COLUMN
from kernel.components.vert_secureboost.level_rows import (
    LEFT_COLUMN,
    PAIR_COLUMN,
    POSITION_COLUMN,
    REQUEST_SCHEMA,
)
from kernel.components.vert_secureboost.rows import BinnedRows
from kernel.components.vert_secureboost.state import GRADIENT_COLUMN, HESSIAN_COLUMN
from kernel.computing import ComputingSession, local_session, spark_session
from kernel.computing.spark import SparkTable
from kernel.federation.variables import BoundChannel
from kernel.inprocess_run import PartyFailed
from kernel.security.paillier import WeakKeyWarning
from kernel.tracker import load_model
from tests.test_vert_kit import BreastSplit, VerticalJob, breast_split

TRAIN_INPUTS = {"data": {"train_data": ["args.train"], "validate_data": ["args.test"]}}
TRAIN_OUTPUTS = {"data": ["train"], "model": ["model"]}
TREES, DEPTH, RATE, LAMBDA, BINS = 10, 3, 0.3, 1.0, 32
# Our min_child_weight matches the hessian floor of scikit-learn's grower; no row-count floor.
PARAMS = {"key_bits": 1024, "num_trees": TREES, "max_depth": DEPTH, "learning_rate": RATE, "reg_lambda": LAMBDA,
          "max_bin": BINS, "min_child_weight": 1e-3}
COMPONENT = "vert_secureboost_0"


@pytest.fixture(autouse=True)
def quiet_weak_keys() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        yield


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=2)
    yield session
    session.stop()


def sklearn_reference(split: BreastSplit, trees: int = TREES) -> HistGradientBoostingClassifier:
    """Histogram gradient boosting on all 30 features with our trees, depth, rate, bins and lambda."""
    model = HistGradientBoostingClassifier(
        max_iter=trees, max_depth=DEPTH, learning_rate=RATE, max_leaf_nodes=None, min_samples_leaf=1,
        l2_regularization=LAMBDA, max_bins=BINS, early_stopping=False,
    )
    return model.fit(split.x_train, split.y_train)


def train(job: VerticalJob, frames: tuple[list[pd.DataFrame], list[pd.DataFrame]], computing: ComputingSession,
          params: dict[str, Any]) -> pd.DataFrame:
    job.upload("train", frames[0])
    job.upload("test", frames[1])
    job.run(COMPONENT, "VertSecureBoost", computing, TRAIN_INPUTS, TRAIN_OUTPUTS, params=params,
            data_args=("train", "test"))
    return job.output(job.promoter, computing, COMPONENT, "train")


def validate_rows(predictions: pd.DataFrame) -> pd.DataFrame:
    return predictions[predictions["type"] == "validate"].sort_values("id").reset_index(drop=True)


def reference_scores(split: BreastSplit, model: HistGradientBoostingClassifier) -> np.ndarray:
    """The reference's test probabilities in id order (the test frame's ids are in row order)."""
    ids = split.test[0]["id"].to_numpy()
    scores = pd.Series(model.predict_proba(split.x_test)[:, 1], index=ids)
    return scores.sort_index().to_numpy()


def test_one_provider_matches_histogram_boosting_on_breast_cancer(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)

    # Execute
    predictions = train(job, (split.train, split.test), computing, PARAMS)

    # Assert: AUC and the scores themselves match the plaintext reference on all 30 features.
    reference = reference_scores(split, sklearn_reference(split))
    rows = validate_rows(predictions)
    assert abs(roc_auc_score(rows["y"], rows["predict_score"]) - roc_auc_score(rows["y"], reference)) <= 0.01
    np.testing.assert_allclose(rows["predict_score"].to_numpy(), reference, atol=1e-4)
    assert {"id", "y", "predict_score", "predict_result", "type"} <= set(predictions.columns)
    assert len(predictions) == len(split.y_train) + len(split.y_test)
    assert (rows["predict_result"] == (rows["predict_score"] >= 0.5).astype(int)).all()
    metrics = job.metrics(job.promoter, COMPONENT)
    losses = [point[1] for point in metrics["loss"]]
    assert len(losses) == TREES and all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert len(metrics["tree_seconds"]) == TREES


def test_split_details_stay_with_the_provider(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)

    # Execute
    train(job, (split.train, split.test), computing, {**PARAMS, "num_trees": 4})

    # Assert: the promoter's model names provider splits only by member and opaque id.
    provider = job.members[1]
    promoter_model = load_model(job.promoter.root / "models", job.job.job_id, COMPONENT, "promoter",
                                job.promoter.member_id)
    provider_model = load_model(provider.root / "models", job.job.job_id, COMPONENT, "provider", provider.member_id)
    assert promoter_model["features"] == [f"x{i}" for i in range(10)]
    assert not any(f"x{i}" in repr(promoter_model) for i in range(10, 30))
    provider_ids = {sid for tree in promoter_model["trees"]
                    for owner, sid in zip(tree["owner"], tree["split_id"], strict=True) if owner == 1}
    assert provider_ids and provider_ids == set(provider_model["split_ids"])
    assert len(provider_model["split_thresholds"]) == len(provider_ids)
    importance = job.metrics(job.promoter, COMPONENT)["feature_importance"]
    provider_splits = importance[f"provider:{provider.member_id}"]["split"]
    assert provider_splits == len(provider_ids)
    own = job.metrics(provider, COMPONENT)["feature_importance"]
    assert sum(point["split"] for point in own.values()) == provider_splits


def test_two_providers_over_standalone_federation(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: features split three ways; messages go through the spool directory.
    split = breast_split([range(0, 10), range(10, 20), range(20, 30)])
    job = VerticalJob(tmp_path, providers=2, work_mode="STANDALONE")

    # Execute
    predictions = train(job, (split.train, split.test), computing, PARAMS)

    # Assert
    rows = validate_rows(predictions)
    reference = reference_scores(split, sklearn_reference(split))
    assert abs(roc_auc_score(rows["y"], rows["predict_score"]) - roc_auc_score(rows["y"], reference)) <= 0.01
    np.testing.assert_allclose(rows["predict_score"].to_numpy(), reference, atol=1e-4)


def test_regression_objective_matches_histogram_boosting(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: diabetes progression; the promoter holds the target and 4 features, the provider 6.
    data = load_diabetes()
    ids = np.array([f"d{i:04d}" for i in range(len(data.target))])
    train_idx, test_idx = train_test_split(np.arange(len(ids)), test_size=0.3, random_state=0)

    def frames(rows: np.ndarray) -> list[pd.DataFrame]:
        promoter = pd.DataFrame({"id": ids[rows], "y": data.target[rows]})
        provider = pd.DataFrame({"id": ids[rows]})
        for c in range(10):
            (promoter if c < 4 else provider)[f"x{c}"] = data.data[rows, c]
        return [promoter, provider]

    job = VerticalJob(tmp_path, providers=1)

    # Execute
    predictions = train(job, (frames(train_idx), frames(test_idx)), computing,
                        {**PARAMS, "objective": "regression", "learning_rate": 0.1, "num_trees": 8})

    # Assert
    reference = HistGradientBoostingRegressor(
        max_iter=8, max_depth=DEPTH, learning_rate=0.1, max_leaf_nodes=None, min_samples_leaf=1,
        l2_regularization=LAMBDA, max_bins=BINS, early_stopping=False,
    ).fit(data.data[train_idx], data.target[train_idx])
    expected = pd.Series(reference.predict(data.data[test_idx]), index=ids[test_idx]).sort_index().to_numpy()
    rows = validate_rows(predictions)
    np.testing.assert_allclose(rows["predict_score"].to_numpy(), expected, atol=1e-3)
    assert abs(r2_score(rows["y"], rows["predict_score"]) - r2_score(rows["y"], expected)) <= 0.01
    np.testing.assert_allclose(rows["predict_result"].to_numpy(), rows["predict_score"].to_numpy())
    losses = [point[1] for point in job.metrics(job.promoter, COMPONENT)["loss"]]
    assert losses[-1] < losses[0]


def test_a_predict_job_reuses_the_exported_models(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: train with row and feature sampling, then start a second job on the models.
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)
    params = {**PARAMS, "subsample": 0.8, "colsample": 0.5, "random_seed": 11}
    trained = train(job, (split.train, split.test), computing, params)
    predict_job = job.with_job_id("predict_" + job.job.job_id)

    # Execute
    predict_job.run(COMPONENT, "VertSecureBoost", computing,
                    {"data": {"test_data": ["args.test"]}, "model": [f"{COMPONENT}.model"]},
                    {"data": ["test"]}, params=params, data_args=("test",), model_job_id=job.job.job_id)

    # Assert: the imported models give the training job's scores; sampling still learns.
    predicted = predict_job.output(job.promoter, computing, COMPONENT, "test")
    expected = validate_rows(trained)
    np.testing.assert_allclose(predicted["predict_score"].to_numpy(), expected["predict_score"].to_numpy())
    assert roc_auc_score(expected["y"], expected["predict_score"]) > 0.95


def test_spark_never_collects_rows_and_matches_local_and_histogram_boosting(
    tmp_path: Path, spark: Any, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: the same job on LOCAL (reference, each level's rows in one message) and on
    # SPARK with messages of 64 rows, where gathering a Spark table's rows on the driver fails
    # the run: `collect` always, `iter_blocks` (one partition at a time) for anything but the
    # tables a member streams to the other: a provider's directions (of a level's splits, of
    # prediction pairs), the promoter's drawn rows' gradients, a level's node positions and
    # the prediction pairs it asks about.
    split = breast_split([range(0, 10), range(10, 30)])
    params = {**PARAMS, "num_trees": 3}
    local_job = VerticalJob(tmp_path / "local", providers=1)
    expected = train(local_job, (split.train, split.test), computing, params)
    spark_computing = spark_session(spark)
    spark_job = VerticalJob(tmp_path / "spark", providers=1, backend="SPARK")
    spark_job.upload("train", split.train)
    spark_job.upload("test", split.test)
    iter_blocks = SparkTable.iter_blocks
    sizes: dict[str, list[int]] = {"node_rows": [], "split_rows": [], "predict_rows": [], "predict_directions": []}
    send = BoundChannel.remote

    def refuse(self: SparkTable) -> None:
        raise AssertionError("a Spark table's rows were gathered on the driver")

    def only_directions(self: SparkTable) -> Iterator[Any]:
        assert self.schema.names in ([ROW_INDEX_COLUMN, LEFT_COLUMN], [PAIR_COLUMN, LEFT_COLUMN],
                                     [ROW_INDEX_COLUMN, GRADIENT_COLUMN, HESSIAN_COLUMN],
                                     [ROW_INDEX_COLUMN, POSITION_COLUMN], REQUEST_SCHEMA.names), \
            "a Spark table other than one streamed to the other member was gathered"
        return iter_blocks(self)

    def counting(self: BoundChannel[Any], obj: Any, role: str | None = None, idx: int = -1) -> None:
        if self.channel.name in sizes:
            sizes[self.channel.name].append(obj.num_rows)
        send(self, obj, role, idx)

    # Execute
    with monkeypatch.context() as patch:
        patch.setattr(SparkTable, "collect", refuse)
        patch.setattr(SparkTable, "iter_blocks", only_directions)
        patch.setattr(BoundChannel, "remote", counting)
        patch.setattr(constants_module, "ROW_STREAM_ROWS", 64)
        spark_job.run(COMPONENT, "VertSecureBoost", spark_computing, TRAIN_INPUTS, TRAIN_OUTPUTS, params=params,
                      data_args=("train", "test"))
    predictions = spark_job.output(spark_job.promoter, spark_computing, COMPONENT, "train")

    # Assert: the levels' rows and pairs went in many messages of at most 64 rows. The same trees as on
    # LOCAL (the rows each split sends left, the leaf values), so the same scores; both match
    # the plaintext reference. Which of the provider's features makes a split is not
    # compared: features that split the rows alike tie, and a tie goes by the provider's
    # secret slot order of the run.
    for name, counts in sizes.items():
        assert max(counts) == 64 and counts.count(64) > 10, name
    models = [[load_model(m.root / "models", j.job.job_id, COMPONENT, role, m.member_id)
               for m, role in zip(j.members, ("promoter", "provider"), strict=True)] for j in (spark_job, local_job)]
    (spark_promoter, spark_provider), (local_promoter, local_provider) = models
    for ours, theirs in zip(spark_promoter["trees"], local_promoter["trees"], strict=True):
        for key in ("owner", "feature", "threshold", "left", "right"):
            assert ours[key] == theirs[key]
        np.testing.assert_allclose(ours["value"], theirs["value"], rtol=1e-9)
    assert spark_provider["split_thresholds"] == local_provider["split_thresholds"]
    assert len(spark_provider["split_ids"]) == len(local_provider["split_ids"]) > 0
    merged = predictions.merge(expected, on=["id", "type"], suffixes=("", "_local"))
    assert len(merged) == len(expected) == len(split.y_train) + len(split.y_test)
    np.testing.assert_allclose(merged["predict_score"], merged["predict_score_local"], rtol=1e-9)
    rows = validate_rows(predictions)
    np.testing.assert_allclose(rows["predict_score"].to_numpy(),
                               reference_scores(split, sklearn_reference(split, trees=3)), atol=1e-4)


def trees_of(job: VerticalJob) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The promoter's trees without their split ids (random names), the gains it credited to
    each member's splits (sums of the decrypted histograms), and the provider's model."""
    promoter, provider = job.members
    promoter_model = load_model(promoter.root / "models", job.job.job_id, COMPONENT, "promoter", promoter.member_id)
    provider_model = load_model(provider.root / "models", job.job.job_id, COMPONENT, "provider", provider.member_id)
    trees = [{k: v for k, v in tree.items() if k != "split_id"} for tree in promoter_model["trees"]]
    importance = {member.split(":")[0]: credit for member, credit in promoter_model["feature_importance"].items()}
    return trees, importance, provider_model


def test_gradients_sent_in_many_chunks_grow_the_trees_of_one_chunk(
    tmp_path: Path, spark: Any, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: 2 trees on 80% of the rows (drawn alike by the seed). The reference sends each
    # tree's gradients in one chunk; then chunks of 64 rows, on LOCAL and on SPARK, where the
    # provider must keep them beside its rows (its driver never gathers them into one vector).
    split = breast_split([range(0, 10), range(10, 30)])
    params = {**PARAMS, "num_trees": 2, "subsample": 0.8, "random_seed": 11}
    reference = VerticalJob(tmp_path / "one", providers=1)
    expected = train(reference, (split.train, split.test), computing, params)
    chunks_of_tree: list[int] = []
    send = BoundChannel.remote

    def counting(self: BoundChannel[Any], obj: Any, role: str | None = None, idx: int = -1) -> None:
        scope = self.variables.scope
        if self.channel.name == "encrypted_gh" and len(scope) == 1:  # the first message of a tree
            chunks_of_tree.append(obj["chunks"])
        send(self, obj, role, idx)

    def refuse(*args: Any) -> None:
        raise AssertionError("a SPARK provider gathered a tree's ciphertexts on its driver")

    # Execute
    monkeypatch.setattr(gradients_module, "GH_CHUNK_ROWS", 64)
    monkeypatch.setattr(BoundChannel, "remote", counting)
    local_job = VerticalJob(tmp_path / "local", providers=1)
    local = train(local_job, (split.train, split.test), computing, params)
    monkeypatch.setattr(BinnedRows, "gradients_here", refuse)
    spark_computing = spark_session(spark)
    spark_job = VerticalJob(tmp_path / "spark", providers=1, backend="SPARK")
    on_spark = train(spark_job, (split.train, split.test), spark_computing, params)

    # Assert: several chunks a tree; the same trees (split ids are random names) and scores.
    assert len(chunks_of_tree) == 4 and min(chunks_of_tree) >= 4
    reference_trees, reference_gains, reference_provider = trees_of(reference)
    assert reference_gains["provider"]["split"] > 0
    for job, predictions in ((local_job, local), (spark_job, on_spark)):
        trees, gains, provider = trees_of(job)
        assert trees == reference_trees
        assert gains == reference_gains
        assert provider["split_features"] == reference_provider["split_features"]
        assert provider["split_thresholds"] == reference_provider["split_thresholds"]
        merged = predictions.merge(expected, on=["id", "type"], suffixes=("", "_one"))
        assert len(merged) == len(expected)
        np.testing.assert_array_equal(merged["predict_score"], merged["predict_score_one"])


@pytest.mark.parametrize(("tamper", "refusal"), [
    ("count", r"the promoter's encrypted_gh announced \d+ drawn rows, its \d+ chunks bring \d+"),
    ("total", r"the promoter's encrypted_gh chunk \d+ of \d+ brings the drawn rows to \d+, more than the \d+ its "
              r"first message announced"),
    ("rows", r"the promoter's encrypted_gh chunk 1 of \d+ names row \d+, not after the previous chunks' rows"),
])
def test_a_malformed_gradient_chunk_is_refused_by_name(
    tmp_path: Path, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch, tamper: str, refusal: str,
) -> None:
    # Prepare: chunks of 100 rows; the promoter's first message announces one chunk too few or
    # one row too few, or its second chunk repeats the rows of the first.
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", split.train)
    monkeypatch.setattr(gradients_module, "GH_CHUNK_ROWS", 100)
    send = BoundChannel.remote
    first_rows: list[np.ndarray] = []

    def tampering(self: BoundChannel[Any], obj: Any, role: str | None = None, idx: int = -1) -> None:
        scope = self.variables.scope
        if self.channel.name == "encrypted_gh" and scope[0] == 0:
            if tamper == "count" and len(scope) == 1:
                obj = {**obj, "chunks": obj["chunks"] - 1}
            elif tamper == "total" and len(scope) == 1:
                obj = {**obj, "rows": obj["rows"] - 1}
            elif tamper == "rows" and scope[1:] == (0,):
                first_rows.append(obj["rows"])
            elif tamper == "rows" and scope[1:] == (1,):
                obj = {**obj, "rows": first_rows[0][:len(obj["rows"])]}
        send(self, obj, role, idx)

    monkeypatch.setattr(BoundChannel, "remote", tampering)

    # Execute / Assert: the provider stops, naming the message and what is wrong with it.
    with pytest.raises(PartyFailed, match=r"provider:\S+: InvalidArgument: VertSecureBoost: " + refusal):
        job.run(COMPONENT, "VertSecureBoost", computing, {"data": {"train_data": ["args.train"]}}, TRAIN_OUTPUTS,
                params={**PARAMS, "num_trees": 1}, data_args=("train",), timeout=3.0)


@pytest.mark.parametrize(("tamper", "refusal"), [
    ("node_rows order", r"provider:\S+: InvalidArgument: VertSecureBoost: the promoter's node_rows message 1 names its "
                        r"rows out of order"),
    ("node_rows count", r"provider:\S+: InvalidArgument: VertSecureBoost: the promoter's node_rows message \d+ brings "
                        r"the rows to \d+, more than the \d+ expected"),
    ("split_rows twice", r"promoter:\S+: InvalidArgument: VertSecureBoost: provider 0's split_rows names a row that "
                         r"is not in a node of its splits, or leaves one of them out"),
    ("split_rows short", r"promoter:\S+: InvalidArgument: VertSecureBoost: provider 0's split_rows brings 64 rows, "
                         r"\d+ were expected"),
    ("predict_rows order", r"provider:\S+: InvalidArgument: VertSecureBoost: the promoter's predict_rows message 1 "
                           r"names its rows out of order"),
    ("predict_directions twice", r"promoter:\S+: InvalidArgument: VertSecureBoost: provider 0's predict_directions "
                                 r"names a pair that is not at one of its splits, or leaves one of them out"),
])
def test_a_malformed_level_stream_is_refused_by_name(
    tmp_path: Path, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch, tamper: str, refusal: str,
) -> None:
    # Prepare: messages of 64 rows; the promoter's first plan announces one row too few, or its
    # second node_rows message repeats the first's rows; or the provider's second split_rows
    # message of a level repeats the first's rows, or is empty (the stream ends early); or,
    # predicting the training rows, the second message of a level repeats the first's pairs.
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", split.train)
    monkeypatch.setattr(constants_module, "ROW_STREAM_ROWS", 64)
    send = BoundChannel.remote
    first: dict[tuple[int, ...], pa.Table] = {}
    done: list[bool] = []

    def tampering(self: BoundChannel[Any], obj: Any, role: str | None = None, idx: int = -1) -> None:
        scope, name = self.variables.scope, self.channel.name
        stream = name == tamper.split()[0] and tamper != "node_rows count" and not done
        if tamper == "node_rows count" and name == "node_plan" and scope == (0, 0):
            obj = {**obj, "rows": obj["rows"] - 1}
        elif stream and scope[-1] == 0:
            first[scope[:-1]] = obj
        elif stream and scope[-1] == 1:
            done.append(True)
            obj = first[scope[:-1]] if tamper.endswith(("order", "twice")) else obj.schema.empty_table()
        send(self, obj, role, idx)

    monkeypatch.setattr(BoundChannel, "remote", tampering)

    # Execute / Assert: the receiver stops, naming the stream, the message and what is wrong.
    with pytest.raises(PartyFailed, match=refusal):
        job.run(COMPONENT, "VertSecureBoost", computing, {"data": {"train_data": ["args.train"]}}, TRAIN_OUTPUTS,
                params={**PARAMS, "num_trees": 1}, data_args=("train",), timeout=3.0)


def test_rows_that_do_not_line_up_fail_with_advice(tmp_path: Path, computing: ComputingSession) -> None:
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", [split.train[0], split.train[1].iloc[:-1]])

    with pytest.raises(PartyFailed, match="run Intersection"):
        job.run(COMPONENT, "VertSecureBoost", computing, {"data": {"train_data": ["args.train"]}}, TRAIN_OUTPUTS,
                params=PARAMS, data_args=("train",))


def test_a_label_outside_zero_and_one_is_refused_by_name(tmp_path: Path, computing: ComputingSession) -> None:
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)
    promoter = split.train[0].assign(y=split.train[0]["y"] * 2)
    job.upload("train", [promoter, split.train[1]])

    with pytest.raises(PartyFailed, match="label column 'y' must hold 0 and 1"):
        job.run(COMPONENT, "VertSecureBoost", computing, {"data": {"train_data": ["args.train"]}}, TRAIN_OUTPUTS,
                params=PARAMS, data_args=("train",), timeout=3.0)


def test_a_promoter_with_only_the_label_splits_on_provider_features_alone(
    tmp_path: Path, computing: ComputingSession
) -> None:
    # Prepare: the promoter brings ids and labels; two providers hold 15 features each.
    split = breast_split([range(0, 0), range(0, 15), range(15, 30)])
    job = VerticalJob(tmp_path, providers=2)

    # Execute
    predictions = train(job, (split.train, split.test), computing, {**PARAMS, "num_trees": 3})

    # Assert
    rows = validate_rows(predictions)
    np.testing.assert_allclose(rows["predict_score"].to_numpy(),
                               reference_scores(split, sklearn_reference(split, trees=3)), atol=1e-4)
    importance = job.metrics(job.promoter, COMPONENT)["feature_importance"]
    assert set(importance) == {f"provider:{m.member_id}" for m in job.members[1:]}


def test_trees_where_no_split_gains_enough_end_at_the_root(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: a gain no split reaches, so every tree stops at a level with open nodes.
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)

    # Execute
    predictions = train(job, (split.train, split.test), computing,
                        {**PARAMS, "num_trees": 2, "min_split_gain": 1e9})

    # Assert: single-leaf trees, the prior plus two leaf values for every row; no split at the provider.
    promoter, provider = job.members
    model = load_model(promoter.root / "models", job.job.job_id, COMPONENT, "promoter", promoter.member_id)
    assert [tree["owner"] for tree in model["trees"]] == [[-1], [-1]]
    assert predictions["predict_score"].nunique() == 1
    provider_model = load_model(provider.root / "models", job.job.job_id, COMPONENT, "provider", provider.member_id)
    assert provider_model["split_ids"] == []


def test_intersection_then_boosting_then_evaluation(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: the provider holds 20 extra rows the promoter does not know.
    split = breast_split([range(0, 10), range(10, 30)])
    extra = breast_split([range(0, 10), range(10, 30)]).test[1].iloc[:20].assign(id=lambda f: "extra" + f["id"])
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", [split.train[0], pd.concat([split.train[1], extra])])

    # Execute
    job.run("intersection_0", "Intersection", computing, {"data": {"data": ["args.train"]}}, {"data": ["train"]},
            data_args=("train",))
    job.run(COMPONENT, "VertSecureBoost", computing, {"data": {"train_data": ["intersection_0.train"]}},
            TRAIN_OUTPUTS, params={**PARAMS, "num_trees": 3})
    job.run("evaluation_0", "Evaluation", computing, {"data": {"data": [f"{COMPONENT}.train"]}}, {})

    # Assert
    auc = job.metrics(job.promoter, "evaluation_0")["train"]["auc"]
    predictions = job.output(job.promoter, computing, COMPONENT, "train")
    assert len(predictions) == len(split.y_train)
    assert auc == pytest.approx(roc_auc_score(predictions["y"], predictions["predict_score"]))


def copies_split(rows: int = 400) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """The promoter holds y and one feature; the provider a noise column, then three copies of
    one feature (strictly increasing transforms of it, so their bins cut the rows alike)."""
    rng = np.random.default_rng(5)
    a, b, noise = rng.normal(size=rows), rng.normal(size=rows), rng.normal(size=rows)
    y = (rng.random(rows) < 1 / (1 + np.exp(-(2 * a + b)))).astype(np.int64)
    ids = np.array([f"c{i:04d}" for i in range(rows)])
    promoter = pd.DataFrame({"id": ids, "y": y, "b": b})
    provider = pd.DataFrame({"id": ids, "noise": noise, "a_cubed": a**3 + a, "a": a, "a_doubled": 2 * a + 1})
    train_rows, test_rows = np.arange(rows) < rows * 3 // 4, np.arange(rows) >= rows * 3 // 4
    return [promoter[train_rows], provider[train_rows]], [promoter[test_rows], provider[test_rows]]


def test_two_runs_with_default_parameters_grow_the_same_trees(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: default parameters (no random_seed); the provider's copies tie at every split on them.
    frames = copies_split()
    runs = []

    # Execute
    for run in range(2):
        job = VerticalJob(tmp_path / f"run{run}", providers=1)
        predictions = train(job, frames, computing, {"key_bits": 1024})
        provider = job.members[1]
        promoter_model = load_model(job.promoter.root / "models", job.job.job_id, COMPONENT, "promoter",
                                    job.promoter.member_id)
        provider_model = load_model(provider.root / "models", job.job.job_id, COMPONENT, "provider",
                                    provider.member_id)
        runs.append((predictions, promoter_model, provider_model))

    # Assert: the same trees (split ids are random names, the rest is equal), splits and scores;
    # of the copies, the provider always applies its first (a_cubed, feature 1).
    (first, promoter_1, provider_1), (second, promoter_2, provider_2) = runs
    trees = [[{k: v for k, v in tree.items() if k != "split_id"} for tree in model["trees"]]
             for model in (promoter_1, promoter_2)]
    assert trees[0] == trees[1]
    assert provider_1["split_features"] == provider_2["split_features"]
    assert provider_1["split_thresholds"] == provider_2["split_thresholds"]
    assert set(provider_1["split_features"]) <= {0, 1} and 1 in provider_1["split_features"]
    np.testing.assert_array_equal(first["predict_score"].to_numpy(), second["predict_score"].to_numpy())
