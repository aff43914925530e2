"""Regression and multiclass metrics from aggregates equal the ones on gathered rows, LOCAL and SPARK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kernel.components.evaluation.aggregates import (
    multiclass_split_metrics,
    regression_split_metrics,
)
from kernel.components.evaluation.metrics import multiclass_metrics, regression_metrics
from kernel.computing import ComputingSession, local_session, spark_session
from kernel.computing.spark import SparkTable
from tests.test_vert_kit import VerticalJob


@pytest.fixture(params=["LOCAL", "SPARK"])
def session(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ComputingSession]:
    if request.param == "LOCAL":
        made = local_session(num_partitions=3)
        yield made
        made.stop()
    else:
        def refuse(self: SparkTable) -> None:
            raise AssertionError("a Spark table was collected on the driver")

        monkeypatch.setattr(SparkTable, "collect", refuse)
        yield spark_session(spark=request.getfixturevalue("spark"))


def assert_same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_same(got[key], value)
        elif value is None or isinstance(value, int):
            assert got[key] == value, key
        else:
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


@pytest.mark.parametrize("kind", ["noisy", "constant_truth", "perfect"])
def test_regression_metrics_equal_the_gathered_ones(session: ComputingSession, kind: str) -> None:
    # Prepare
    rng = np.random.default_rng(len(kind))
    rows = 2000
    truth = np.full(rows, 2.0) if kind == "constant_truth" else rng.normal(3.0, 2.0, rows)
    pred = truth.copy() if kind == "perfect" else truth + rng.normal(0.5, 1.0, rows)
    table = session.from_arrow(pa.table({"id": np.arange(rows), "y": truth, "p": pred}), "id", num_partitions=4)

    # Execute
    got = regression_split_metrics(table, "y", "p")

    # Assert
    assert_same(got, regression_metrics(truth, pred))
    if kind == "constant_truth":
        assert got["r2"] == 0.0 and got["explained_variance"] == 0.0


@pytest.mark.parametrize("labels", ["numbers", "strings"])
def test_multiclass_metrics_equal_the_gathered_ones(session: ComputingSession, labels: str) -> None:
    # Prepare: class 3 is only ever predicted, never true.
    rng = np.random.default_rng(5)
    rows = 3000
    truth = rng.integers(0, 3, rows)
    pred = np.where(rng.random(rows) < 0.7, truth, rng.integers(0, 4, rows))
    if labels == "strings":
        truth, pred = np.array([f"c{v}" for v in truth]), np.array([f"c{v}" for v in pred])
        table = session.from_arrow(pa.table({"id": np.arange(rows), "y": truth, "p": pred}), "id", num_partitions=4)
        expected = multiclass_metrics(truth, pred)
    else:
        table = session.from_arrow(pa.table({"id": np.arange(rows), "y": truth, "p": pred}), "id", num_partitions=4)
        # Evaluation reads the prediction column as floats: the classes are 0.0, 1.0, ...
        expected = multiclass_metrics(truth, pred.astype(np.float64))

    # Execute: strings are not cast (the prediction column is read as floats only when numeric).
    got = multiclass_split_metrics(table, "y", "p")

    # Assert
    assert_same(got, expected)
    assert set(got["per_class"]) == set(expected["per_class"]) and len(got["per_class"]) == 4


def test_refusals_name_the_problem(session: ComputingSession) -> None:
    missing = session.from_arrow(pa.table({"id": [1, 2, 3], "y": [1.0, np.nan, np.inf], "p": [0.0, 1.0, 2.0]}), "id")
    empty = session.from_arrow(pa.table({"id": pa.array([], pa.int64()), "y": pa.array([], pa.float64()),
                                         "p": pa.array([], pa.float64())}), "id")
    with pytest.raises(Exception, match="y_true holds 2 missing or infinite values"):
        regression_split_metrics(missing, "y", "p")
    with pytest.raises(Exception, match="y_true is empty"):
        regression_split_metrics(empty, "y", "p")
    with pytest.raises(Exception, match="y_true is empty"):
        multiclass_split_metrics(empty, "y", "p")


@pytest.mark.parametrize("eval_type", ["regression", "multi"])
def test_evaluation_logs_each_split_from_aggregates(tmp_path: Path, eval_type: str) -> None:
    # Prepare: train and validate predictions with a split column.
    computing = local_session(num_partitions=3)
    rng = np.random.default_rng(9)
    frames = []
    for split, rows in (("train", 800), ("validate", 300)):
        y = rng.integers(0, 3, rows).astype(np.float64) if eval_type == "multi" else rng.normal(size=rows)
        p = np.where(rng.random(rows) < 0.6, y, rng.integers(0, 3, rows)) if eval_type == "multi" \
            else y + rng.normal(scale=0.3, size=rows)
        frames.append(pd.DataFrame({"id": [f"{split}{i}" for i in range(rows)], "y": y, "predict_result": p,
                                    "predict_score": p, "type": split}))
    job = VerticalJob(tmp_path, providers=0)
    job.promoter.upload("predictions", pd.concat(frames), label="y")

    # Execute
    job.run("evaluation_0", "Evaluation", computing, {"data": {"data": ["args.predictions"]}}, {},
            params={"eval_type": eval_type}, data_args=("predictions",))

    # Assert
    metrics = job.metrics(job.promoter, "evaluation_0")
    for frame in frames:
        split = frame["type"].iloc[0]
        y, p = frame["y"].to_numpy(), frame["predict_result"].to_numpy()
        expected = regression_metrics(y, p) if eval_type == "regression" else multiclass_metrics(y, p)
        assert_same(metrics[split], expected)
    computing.stop()
