"""HorzLR through the task path: accuracy against scikit-learn, three members, predict jobs, SPARK, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from kernel.computing import ComputingSession, local_session, spark_session
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
