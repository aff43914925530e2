"""HorzLR through the task path: accuracy against scikit-learn, three members, predict jobs, SPARK, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from kernel.components.horz_lr import rows as rows_module
from kernel.computing import ComputingSession, local_session, spark_session
from kernel.computing.spark import SparkTable
from kernel.federation.base import Party
from kernel.inprocess_run import PartyFailed
from kernel.tracker import load_model
from tests.componentkit import Job, make_members
from tests.test_horz_kit import BreastRows, HorizontalJob, breast_rows, sklearn_auc

ALPHA = 0.01
TRAIN_INPUTS = {"data": {"train_data": ["args.train"], "validate_data": ["args.test"]}}
TRAIN_OUTPUTS = {"data": ["train"], "model": ["model"]}
COMPONENT = "horz_lr_0"


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=2)
    yield session
    session.stop()


def train(job: HorizontalJob, rows: BreastRows, computing: ComputingSession, params: dict[str, Any]) -> pd.DataFrame:
    """Upload each member's rows, train with validation, return every member's predictions."""
    job.upload("train", rows.members)
    job.upload("test", rows.test)
    job.run(COMPONENT, "HorzLR", computing, TRAIN_INPUTS, TRAIN_OUTPUTS, params=params, data_args=("train", "test"))
    return pd.concat([job.output(m, computing, COMPONENT, "train") for m in job.data], ignore_index=True)


def validate_auc(predictions: pd.DataFrame) -> float:
    rows = predictions[predictions["type"] == "validate"]
    return float(roc_auc_score(rows["y"], rows["predict_score"]))


def test_two_members_match_sklearn_on_pooled_breast_cancer(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: the training rows dealt half and half (stratified), an arbiter of their own.
    rows = breast_rows([1, 1])
    job = HorizontalJob(tmp_path, data_members=2)

    # Execute
    predictions = train(job, rows, computing, {"alpha": ALPHA, "penalty": "L2", "max_iter": 40, "tol": 1e-6})

    # Assert: accuracy, the columns Evaluation reads, the loss per round, masking, the models.
    assert abs(validate_auc(predictions) - sklearn_auc(rows, ALPHA)) <= 0.01
    assert {"id", "y", "predict_score", "predict_result", "type"} <= set(predictions.columns)
    assert len(predictions) == len(rows.y_train) + len(rows.y_test)
    arbiter_metrics = job.metrics(job.arbiter, COMPONENT)
    losses = [point[1] for point in arbiter_metrics["loss"]]
    assert losses[0] == pytest.approx(np.log(2)) and losses[-1] < 0.1 and len(losses) == 40
    assert arbiter_metrics["secure_aggregation"] == {"masked": True, "members": 2}
    for member in job.data:
        assert job.metrics(member, COMPONENT)["loss"] == arbiter_metrics["loss"]
    models = [load_model(m.root / "models", job.job.job_id, COMPONENT, job.party(m).role, m.member_id)
              for m in job.members]
    assert models[0]["features"] == [f"x{i}" for i in range(30)]
    for model in models[1:]:
        np.testing.assert_array_equal(model["weights"], models[0]["weights"])
        assert model["intercept"] == models[0]["intercept"]
    # Global scaling from masked sums: exact up to the 24-bit fixed point of the sums.
    np.testing.assert_allclose(models[0]["mean"], rows.x_train.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(models[0]["scale"], rows.x_train.std(axis=0), rtol=1e-4)


def test_three_members_of_unequal_sizes_converge(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: 1/8, 2/8 and 5/8 of the rows; SGD with mini-batches and two local epochs.
    rows = breast_rows([1, 2, 5])
    job = HorizontalJob(tmp_path, data_members=3)
    params = {"alpha": ALPHA, "optimizer": "sgd", "learning_rate": 0.1, "batch_size": 32, "local_epochs": 2,
              "max_iter": 60, "tol": 1e-4, "early_stop": "diff", "random_seed": 5}

    # Execute
    predictions = train(job, rows, computing, params)

    # Assert
    iterations = job.metrics(job.arbiter, COMPONENT)["iterations"]
    assert iterations["converged"] is True and iterations["iterations"] < 60
    assert abs(validate_auc(predictions) - sklearn_auc(rows, ALPHA)) <= 0.01
    assert job.metrics(job.arbiter, COMPONENT)["secure_aggregation"] == {"masked": True, "members": 3}


def test_a_predict_job_reuses_each_members_model(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: train with L1, then a second job (arbiter included) reads the first job's models.
    rows = breast_rows([1, 1])
    job = HorizontalJob(tmp_path, data_members=2)
    trained = train(job, rows, computing, {"alpha": ALPHA, "penalty": "L1", "optimizer": "sgd",
                                           "learning_rate": 0.5, "max_iter": 20})
    predict_job = job.with_job_id("predict_" + job.job.job_id)

    # Execute
    predict_job.run(COMPONENT, "HorzLR", computing, {"data": {"test_data": ["args.test"]}, "model": [f"{COMPONENT}.model"]},
                    {"data": ["test"]}, data_args=("test",), model_job_id=job.job.job_id)

    # Assert: the same scores as the training job's validation rows, at every member.
    expected = trained[trained["type"] == "validate"].sort_values("id").reset_index(drop=True)
    predicted = pd.concat([predict_job.output(m, computing, COMPONENT, "test") for m in job.data])
    predicted = predicted.sort_values("id").reset_index(drop=True)
    np.testing.assert_allclose(predicted["predict_score"].to_numpy(), expected["predict_score"].to_numpy())
    assert (predicted["predict_result"] == (predicted["predict_score"] >= 0.5).astype(int)).all()
    weights = load_model(job.members[0].root / "models", job.job.job_id, COMPONENT, "promoter",
                         job.members[0].member_id)["weights"]
    assert 0 < sum(w == 0.0 for w in weights) < 30  # L1's proximal step zeroes some weights


def test_one_data_member_runs_unmasked_and_says_so(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: a promoter and an arbiter only: nobody to mask against.
    rows = breast_rows([1])
    job = HorizontalJob(tmp_path, data_members=1)

    # Execute
    predictions = train(job, rows, computing, {"alpha": ALPHA, "max_iter": 40, "tol": 1e-6})

    # Assert
    assert abs(validate_auc(predictions) - sklearn_auc(rows, ALPHA)) <= 0.01
    assert job.metrics(job.arbiter, COMPONENT)["secure_aggregation"] == {"masked": False, "members": 1}


@pytest.mark.spark
def test_training_and_prediction_on_spark(tmp_path: Path, spark: Any) -> None:
    computing = spark_session(spark)
    rows = breast_rows([1, 1])
    job = HorizontalJob(tmp_path, data_members=2, backend="SPARK")

    predictions = train(job, rows, computing, {"alpha": ALPHA, "max_iter": 30, "tol": 1e-6})

    assert abs(validate_auc(predictions) - sklearn_auc(rows, ALPHA)) <= 0.01


@pytest.mark.spark
@pytest.mark.parametrize(("params", "tolerance"), [
    ({"alpha": ALPHA, "max_iter": 6, "tol": 1e-9}, 1e-9),
    ({"alpha": ALPHA, "optimizer": "sgd", "learning_rate": 0.1, "batch_size": 64, "local_epochs": 2, "max_iter": 3,
      "tol": 1e-9, "random_seed": 11}, 1e-9),
], ids=["full-batch", "mini-batches"])
def test_spark_trains_without_collecting_rows_and_matches_local(
    tmp_path: Path, spark: Any, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch,
    params: dict[str, Any], tolerance: float,
) -> None:
    # Prepare: the same job on LOCAL (reference) and on SPARK, where any Table.collect on a
    # Spark table (a gather of rows to the driver) fails the run.
    rows = breast_rows([1, 2])
    local_job = HorizontalJob(tmp_path / "local", data_members=2)
    expected = train(local_job, rows, computing, params)
    spark_computing = spark_session(spark)
    spark_job = HorizontalJob(tmp_path / "spark", data_members=2, backend="SPARK")
    spark_job.upload("train", rows.members)
    spark_job.upload("test", rows.test)

    def refuse(self: SparkTable) -> None:
        raise AssertionError("a Spark table was collected on the driver")

    # Execute
    with monkeypatch.context() as patch:
        patch.setattr(SparkTable, "collect", refuse)
        spark_job.run(COMPONENT, "HorzLR", spark_computing, TRAIN_INPUTS, TRAIN_OUTPUTS, params=params,
                      data_args=("train", "test"))
    predictions = pd.concat([spark_job.output(m, spark_computing, COMPONENT, "train") for m in spark_job.data],
                            ignore_index=True)

    # Assert: the same batches on both backends, so the same models, losses and scores.
    for ours, theirs in zip(spark_job.members, local_job.members, strict=True):
        role = spark_job.party(ours).role
        spark_model = load_model(ours.root / "models", spark_job.job.job_id, COMPONENT, role, ours.member_id)
        local_model = load_model(theirs.root / "models", local_job.job.job_id, COMPONENT, role, theirs.member_id)
        np.testing.assert_allclose(spark_model["weights"], local_model["weights"], rtol=tolerance, atol=1e-12)
        assert spark_model["intercept"] == pytest.approx(local_model["intercept"], rel=tolerance, abs=1e-12)
        np.testing.assert_allclose(spark_model["loss_history"], local_model["loss_history"], rtol=tolerance)
    merged = predictions.merge(expected, on=["id", "type"], suffixes=("", "_local"))
    assert len(merged) == len(expected) == len(rows.y_train) + len(rows.y_test)
    np.testing.assert_allclose(merged["predict_score"], merged["predict_score_local"], rtol=1e-9)
    losses = [point[1] for point in spark_job.metrics(spark_job.arbiter, COMPONENT)["loss"]]
    assert len(losses) == params["max_iter"] and losses[-1] < losses[0]


def test_members_with_different_columns_fail_everywhere_naming_the_member(
    tmp_path: Path, computing: ComputingSession
) -> None:
    rows = breast_rows([1, 1])
    job = HorizontalJob(tmp_path, data_members=2, job_id="columns")
    job.upload("train", [rows.members[0], rows.members[1].drop(columns=["x29"])])

    with pytest.raises(PartyFailed) as failure:
        job.run(COMPONENT, "HorzLR", computing, {"data": {"train_data": ["args.train"]}}, TRAIN_OUTPUTS,
                params={"max_iter": 2}, data_args=("train",), timeout=20)

    provider = job.party(job.members[1])
    message = str(failure.value)
    for party in job.members:
        assert f"{job.party(party)}: FederationError" in message
    assert f"member {provider} has features" in message


def test_a_job_without_an_arbiter_is_refused(tmp_path: Path, computing: ComputingSession) -> None:
    (member,) = make_members(tmp_path, 1)
    job = Job({"promoter": [member]})
    party = Party("promoter", member.member_id)
    data = member.upload("train", breast_rows([1]).members[0], label="y")
    conf = job.conf("HorzLR", party, {"data": {"train_data": ["args.train"]}}, TRAIN_OUTPUTS, job_args={"train": data})

    with pytest.raises(PartyFailed, match=r"needs an arbiter \(role.arbiter\)"):
        job.run(COMPONENT, "HorzLR", computing, {party: conf})


@pytest.mark.parametrize("module", ["HorzLR", "Distribution"])
def test_need_run_false_passes_data_through_and_the_arbiter_waits_for_nothing(
    tmp_path: Path, computing: ComputingSession, module: str
) -> None:
    rows = breast_rows([1, 1])
    job = HorizontalJob(tmp_path, data_members=2)
    job.upload("train", rows.members)

    job.run("component_0", module, computing, {"data": {"data": ["args.train"]}}, {"data": ["out"]},
            params={"need_run": False}, data_args=("train",), timeout=5)

    for member, frame in zip(job.data, rows.members, strict=True):
        assert len(job.output(member, computing, "component_0", "out")) == len(frame)
    assert not job.hub.sent


def test_mini_batches_split_the_rows_by_id_hash_anew_every_epoch(computing: ComputingSession) -> None:
    # Prepare: 1,000 keyed rows, batches of about 100.
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(1000)], "y": np.arange(1000) % 2, "x0": np.arange(1000.0)})
    table = rows_module.with_row_keys(computing.from_pandas(frame, "id").select(["y", "x0"]))
    batches = rows_module.batch_count(1000, 100)

    def members(epoch: int) -> list[set[str]]:
        grouped = rows_module.epoch_batches(table, 3, 0, epoch, batches)
        try:
            return [set(grouped.reduce(b, lambda block: block.column("id").to_pylist(), lambda a, c: a + c))
                    for b in range(batches)]
        finally:
            grouped.release()

    # Execute
    first, again, second = members(0), members(0), members(1)

    # Assert: every row in exactly one batch; the same ids give the same batches; the next
    # epoch draws others; sizes near batch_size.
    assert batches == 10
    assert sum(len(b) for b in first) == 1000 and set().union(*first) == set(frame["id"])
    assert first == again and first != second
    assert all(50 <= len(b) <= 150 for b in first + second)
