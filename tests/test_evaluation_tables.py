"""Evaluation's gain/lift/KS tables, precision/recall, confusion matrix and score PSI, and their plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import toad
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from kernel.computing import local_session
from protos.weft.v1 import scheduler_pb2
from services.client.render import plot_curves
from tests.test_vert_kit import VerticalJob

GROUPS = 10


def predictions(rows: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.3).astype(np.int64)
    score = 1.0 / (1.0 + np.exp(-(rng.normal(size=rows) + 1.2 * y - 1.0 + shift)))
    return pd.DataFrame({"id": [f"r{seed}_{i:05d}" for i in range(rows)], "y": y,
                         "predict_score": np.round(score, 3)})


def twin_gain_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Groups cut at the exact score deciles, highest scores first."""
    score = frame["predict_score"].to_numpy()
    edges = np.unique(np.quantile(score, np.arange(1, GROUPS) / GROUPS))
    group = np.searchsorted(edges, score, side="right")
    table = frame.assign(group=group).groupby("group")["y"].agg(["count", "sum"]).iloc[::-1]
    table["gain"] = table["sum"].cumsum() / table["sum"].sum()
    table["ks"] = (table["gain"] - (table["count"] - table["sum"]).cumsum() / (table["count"] - table["sum"]).sum()).abs()
    table["lift"] = (table["sum"] / table["count"]) / frame["y"].mean()
    return table


def test_tables_match_pandas_and_scikit_learn_and_plot(tmp_path: Path) -> None:
    # Prepare: train and validate predictions (tied scores, validate shifted up).
    computing = local_session(num_partitions=3)
    train, validate = predictions(3000, 1, 0.0), predictions(2000, 2, 0.3)
    data = pd.concat([train.assign(type="train"), validate.assign(type="validate")])
    job = VerticalJob(tmp_path, providers=0)
    job.promoter.upload("predictions", data, label="y")

    # Execute
    job.run("evaluation_0", "Evaluation", computing, {"data": {"data": ["args.predictions"]}}, {},
            params={"threshold": 0.4, "curve_points": 25}, data_args=("predictions",))

    # Assert
    metrics = job.metrics(job.promoter, "evaluation_0")
    for name, frame in (("train", train), ("validate", validate)):
        tables = metrics[f"{name}_tables"]
        twin = twin_gain_table(frame)
        gain = tables["gain_table"]
        assert gain["rows"] == twin["count"].tolist() and gain["events"] == twin["sum"].tolist()
        np.testing.assert_allclose(gain["gain"], twin["gain"], rtol=1e-12)
        np.testing.assert_allclose(gain["lift"], twin["lift"], rtol=1e-12)
        np.testing.assert_allclose(gain["ks"], twin["ks"], rtol=1e-12, atol=1e-15)
        assert tables["ks_table"]["max_ks"] <= metrics[name]["ks"] + 1e-12
        tn, fp, fn, tp = confusion_matrix(frame["y"], frame["predict_score"] >= 0.4).ravel()
        matrix = tables["confusion_matrix"]
        assert (matrix["tp"], matrix["fp"], matrix["tn"], matrix["fn"]) == (tp, fp, tn, fn)
        pr = tables["pr_curve"]
        assert pr["thresholds"] == sorted(pr["thresholds"], reverse=True) and len(pr["thresholds"]) <= 25
        for t, precision, recall in list(zip(pr["thresholds"], pr["precision"], pr["recall"], strict=True))[::6]:
            predicted = frame["predict_score"] >= t
            assert precision == pytest.approx(precision_score(frame["y"], predicted, zero_division=1.0))
            assert recall == pytest.approx(recall_score(frame["y"], predicted))
    edges = np.unique(np.quantile(train["predict_score"], np.arange(1, GROUPS) / GROUPS))
    expected_psi = toad.metrics.PSI(np.searchsorted(edges, validate["predict_score"], side="right"),
                                    np.searchsorted(edges, train["predict_score"], side="right"))
    psi = metrics["score_psi"]
    assert psi["reference"] == "train"
    assert psi["splits"]["validate"]["psi"] == pytest.approx(expected_psi, rel=1e-9)

    # The command line's --plot draws the tables.
    result = scheduler_pb2.TaskResult()
    result.task.component_name = "evaluation_0"
    for name in ("train_tables", "validate"):
        metric = result.metrics.add()
        metric.name, metric.namespace, metric.points_json = name, "evaluation", json.dumps(metrics[name])
    written = plot_curves([result], tmp_path / "plots")
    assert sorted(p.name for p in written) == ["evaluation_0_train_tables.png", "evaluation_0_validate_roc_ks.png"]
    assert all(p.stat().st_size > 10_000 for p in written)
    computing.stop()
