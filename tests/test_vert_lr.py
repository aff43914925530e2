"""VertLR through the task path: accuracy against scikit-learn, predict jobs, SPARK, STANDALONE, errors."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from kernel.blocks.optimizers import MemberOptimizer
from kernel.components.vert_lr.batches import (
    BatchPlan,
    Scaling,
    epoch_batches,
    gather_batch,
    plain_gradient_sum,
    with_row_keys,
)
from kernel.computing import ComputingSession, local_session, spark_session
from kernel.computing.local import LocalTable
from kernel.computing.spark import SparkTable
from kernel.computing.table import BlockGroups, GroupFn
from kernel.inprocess_run import PartyFailed
from kernel.security.paillier import WeakKeyWarning
from kernel.tracker import load_model
from tests.test_vert_kit import BreastSplit, VerticalJob, breast_split

ALPHA = 0.01
TRAIN_INPUTS = {"data": {"train_data": ["args.train"], "validate_data": ["args.test"]}}
TRAIN_OUTPUTS = {"data": ["train"], "model": ["model"]}
# The defaults these tests were written against (full batch, constant rate), pinned.
FAST = {"key_bits": 1024, "alpha": ALPHA, "penalty": "L2", "tol": 1e-6, "learning_rate": 0.1, "decay": 0.0, "batch_size": -1}


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


def sklearn_auc(split: BreastSplit) -> float:
    """LogisticRegression on all 30 standardised features with the same L2 objective."""
    scaler = StandardScaler().fit(split.x_train)
    model = LogisticRegression(C=1.0 / (ALPHA * len(split.y_train)), max_iter=10_000)
    model.fit(scaler.transform(split.x_train), split.y_train)
    return float(roc_auc_score(split.y_test, model.predict_proba(scaler.transform(split.x_test))[:, 1]))


def train(job: VerticalJob, split: BreastSplit, computing: ComputingSession, params: dict[str, Any]) -> pd.DataFrame:
    job.upload("train", split.train)
    job.upload("test", split.test)
    job.run("vert_lr_0", "VertLR", computing, TRAIN_INPUTS, TRAIN_OUTPUTS, params=params, data_args=("train", "test"))
    return job.output(job.promoter, computing, "vert_lr_0", "train")


def validate_auc(predictions: pd.DataFrame) -> float:
    rows = predictions[predictions["type"] == "validate"]
    return float(roc_auc_score(rows["y"], rows["predict_score"]))


def test_one_provider_matches_sklearn_on_breast_cancer(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)

    # Execute
    predictions = train(job, split, computing, {**FAST, "optimizer": "adam", "learning_rate": 0.1, "max_iter": 30})

    # Assert: accuracy, the output columns Evaluation reads, the loss curve, the models.
    assert abs(validate_auc(predictions) - sklearn_auc(split)) <= 0.01
    assert {"id", "y", "predict_score", "predict_result", "type"} <= set(predictions.columns)
    assert len(predictions) == len(split.y_train) + len(split.y_test)
    losses = [point[1] for point in job.metrics(job.promoter, "vert_lr_0")["loss"]]
    assert len(losses) == 30 and losses[-1] < losses[0] < np.log(2) + 1e-9
    promoter_model = load_model(job.promoter.root / "models", job.job.job_id, "vert_lr_0", "promoter",
                                job.promoter.member_id)
    provider = job.members[1]
    provider_model = load_model(provider.root / "models", job.job.job_id, "vert_lr_0", "provider", provider.member_id)
    assert promoter_model["features"] == [f"x{i}" for i in range(10)]
    assert provider_model["features"] == [f"x{i}" for i in range(10, 30)]
    assert "intercept" not in provider_model and len(provider_model["weights"]) == 20


def test_two_providers_over_standalone_federation_with_mini_batches(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: features split three ways; messages go through the spool directory.
    split = breast_split([range(0, 10), range(10, 20), range(20, 30)])
    job = VerticalJob(tmp_path, providers=2, work_mode="STANDALONE")

    # Execute
    params = {**FAST, "optimizer": "adam", "learning_rate": 0.05, "batch_size": 100, "max_iter": 12, "random_seed": 3}
    predictions = train(job, split, computing, params)

    # Assert
    assert abs(validate_auc(predictions) - sklearn_auc(split)) <= 0.01


def test_spark_mini_batches_never_collect_and_match_local(
    tmp_path: Path, spark: Any, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: the same job on LOCAL (reference) and on SPARK, where any Table.collect on a
    # Spark table (a gather of rows to the driver) fails the run.
    split = breast_split([range(0, 10), range(10, 20), range(20, 30)])
    params = {**FAST, "optimizer": "sgd", "learning_rate": 1.0, "decay": 0.01, "batch_size": 160, "max_iter": 3,
              "random_seed": 7}
    local_job = VerticalJob(tmp_path / "local", providers=2)
    expected = train(local_job, split, computing, params)
    spark_computing = spark_session(spark)
    spark_job = VerticalJob(tmp_path / "spark", providers=2, backend="SPARK")

    def refuse(self: SparkTable) -> None:
        raise AssertionError("a Spark table was collected on the driver")

    spark_job.upload("train", split.train)
    spark_job.upload("test", split.test)

    # Execute
    with monkeypatch.context() as patch:
        patch.setattr(SparkTable, "collect", refuse)
        spark_job.run("vert_lr_0", "VertLR", spark_computing, TRAIN_INPUTS, TRAIN_OUTPUTS, params=params,
                      data_args=("train", "test"))
    predictions = spark_job.output(spark_job.promoter, spark_computing, "vert_lr_0", "train")

    # Assert: the same batches on both backends, so the same models and scores.
    for k, (ours, theirs) in enumerate(zip(spark_job.members, local_job.members, strict=True)):
        role = "promoter" if k == 0 else "provider"
        spark_model = load_model(ours.root / "models", spark_job.job.job_id, "vert_lr_0", role, ours.member_id)
        local_model = load_model(theirs.root / "models", local_job.job.job_id, "vert_lr_0", role, theirs.member_id)
        np.testing.assert_allclose(spark_model["weights"], local_model["weights"], rtol=1e-9, atol=1e-12)
    merged = predictions.merge(expected, on=["id", "type"], suffixes=("", "_local"))
    assert len(merged) == len(expected) == len(split.y_train) + len(split.y_test)
    np.testing.assert_allclose(merged["predict_score"], merged["predict_score_local"], rtol=1e-9)
    losses = [point[1] for point in spark_job.metrics(spark_job.promoter, "vert_lr_0")["loss"]]
    assert len(losses) == 3 and losses[-1] < losses[0]


def test_early_stop_ends_every_member_and_a_predict_job_reuses_the_models(
    tmp_path: Path, computing: ComputingSession
) -> None:
    # Prepare: a loose tolerance stops training early.
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)
    trained = train(job, split, computing, {**FAST, "tol": 0.02, "max_iter": 50})
    predict_job = job.with_job_id("predict_" + job.job.job_id)

    # Execute: a second job reads the first job's models for new data.
    predict_job.run("vert_lr_0", "VertLR", computing, {"data": {"test_data": ["args.test"]}, "model": ["vert_lr_0.model"]},
                    {"data": ["test"]}, data_args=("test",), model_job_id=job.job.job_id)

    # Assert
    iterations = job.metrics(job.promoter, "vert_lr_0")["iterations"]
    assert iterations["converged"] is True and iterations["iterations"] < 50
    predicted = predict_job.output(job.promoter, computing, "vert_lr_0", "test")
    expected = trained[trained["type"] == "validate"].sort_values("id").reset_index(drop=True)
    np.testing.assert_allclose(predicted["predict_score"].to_numpy(), expected["predict_score"].to_numpy())
    assert (predicted["predict_result"] == (predicted["predict_score"] >= 0.5).astype(int)).all()


def test_rows_that_do_not_line_up_fail_with_advice(tmp_path: Path, computing: ComputingSession) -> None:
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", [split.train[0], split.train[1].iloc[:-1]])

    with pytest.raises(PartyFailed, match="run Intersection"):
        job.run("vert_lr_0", "VertLR", computing, {"data": {"train_data": ["args.train"]}}, TRAIN_OUTPUTS,
                params=FAST, data_args=("train",))


def test_l1_proximal_step_gives_exact_zeros_and_spares_the_intercept() -> None:
    optimizer = MemberOptimizer("sgd", 0.5, 0.0, False, "L1", 0.1, np.array([True, True, False]))

    updated = optimizer.step(np.array([0.02, 1.0, 0.02]), np.zeros(3))

    np.testing.assert_allclose(updated, [0.0, 0.95, 0.02])


def test_decay_lowers_the_learning_rate() -> None:
    optimizer = MemberOptimizer("sgd", 1.0, 1.0, True, "none", 0.0, np.ones(1, dtype=bool))
    optimizer.step(np.zeros(1), np.ones(1))
    optimizer.step(np.zeros(1), np.ones(1))
    assert optimizer.current_rate() == pytest.approx(1 / np.sqrt(3))


class _Counted(BlockGroups):
    def __init__(self, inner: BlockGroups, count: Callable[[pa.Table], None]) -> None:
        self._inner, self._count = inner, count
        self.schema, self.groups = inner.schema, inner.groups

    def reduce(self, group: int, map_fn: Callable[[pa.Table], Any], reduce_fn: Callable[[Any, Any], Any]) -> Any:
        return self._inner.reduce(group, lambda block: (self._count(block), map_fn(block))[1], reduce_fn)

    def release(self) -> None:
        self._inner.release()


class CountingTable(LocalTable):
    """A LOCAL table that counts the rows handed to every block function it runs."""

    rows_read = 0
    _lock = threading.Lock()

    def count_rows(self, block: pa.Table) -> None:
        with self._lock:
            self.rows_read += block.num_rows

    def reduce(self, map_fn: Callable[[pa.Table], Any], reduce_fn: Callable[[Any, Any], Any]) -> Any:
        return super().reduce(lambda block: (self.count_rows(block), map_fn(block))[1], reduce_fn)

    def group_blocks(self, key_fn: GroupFn, groups: int) -> BlockGroups:
        counted = super().group_blocks(lambda block: (self.count_rows(block), key_fn(block))[1], groups)
        return _Counted(counted, self.count_rows)


@pytest.mark.parametrize("batches", [1, 6, 40])
def test_an_epoch_reads_the_rows_a_fixed_number_of_times_whatever_the_batch_count(batches: int) -> None:
    # Prepare: 600 keyed rows in 4 partitions, counted as block functions read them.
    session = local_session(num_workers=2, num_partitions=4)
    rng = np.random.default_rng(5)
    data = pa.table({"id": [f"r{i}" for i in range(600)], "x": rng.normal(size=600), "y": rng.integers(0, 2, 600)})
    keyed = with_row_keys(session.from_arrow(data, "id"), ["id", "y", "x"])
    assert isinstance(keyed, LocalTable)
    table = CountingTable(session, keyed.blocks, "id")
    scaling = Scaling(("x",), np.zeros(1), np.ones(1))

    # Execute: one epoch's gathers and gradients, as the promoter runs them.
    grouped = epoch_batches(table, seed=3, epoch=0, batches=batches)
    batch_ids: list[np.ndarray] = []
    gradient = np.zeros(1)
    for batch in range(batches):
        plan = BatchPlan(3, 0, batches, batch)
        keys, scores, labels = gather_batch(grouped, plan, scaling, np.ones(1), 0.0, "y")
        batch_ids.append(keys)
        gradient = gradient + plain_gradient_sum(grouped, plan, scaling, keys, scores - labels)
    grouped.release()
    session.stop()

    # Assert: every row in one batch; at most three reads of each row (group, gather,
    # gradient), not two a batch; the gradient sums to the full-batch one.
    assert sum(len(keys) for keys in batch_ids) == 600
    assert table.rows_read <= 3 * 600
    x = data.column("x").to_numpy()
    np.testing.assert_allclose(gradient, [x @ (x - data.column("y").to_numpy())], rtol=1e-9)
