"""Evaluation in a horizontal job: the federation's metrics from masked histogram sums match the pooled rows'."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score, roc_curve

from kernel.components.evaluation.constants import FEDERATION_BINS
from kernel.components.evaluation.federation import Scored, metrics_from_sums, split_sums
from kernel.computing import ComputingSession, local_session
from tests.test_horz_kit import HorizontalJob, breast_rows

#: AUC from histograms of FEDERATION_BINS bins differs from the exact AUC only through
#: positive/negative pairs in one bin (counted half); on these scores that stays below 1e-4.
AUC_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=2)
    yield session
    session.stop()


def logged(job: HorizontalJob, member: Any, component: str) -> dict[tuple[str, str], Any]:
    """(namespace, name) -> points of every metric the component logged at the member."""
    party = job.party(member)
    path = member.root / "tasks" / job.job.job_id / component / party.role / party.member_id / "metrics.jsonl"
    return {(m["namespace"], m["name"]): m["points"] for m in map(json.loads, path.read_text().splitlines())}


def test_histogram_metrics_equal_the_exact_ones_on_pooled_scores() -> None:
    # Prepare: scores of three "members", some tied, summed as the promoter would
    rng = np.random.default_rng(7)
    parts = []
    for size in (300, 500, 200):
        positive = rng.random(size) < 0.3
        scores = np.clip(rng.normal(np.where(positive, 0.65, 0.4), 0.15), 0, 1).round(3)
        parts.append(Scored(positive, scores))

    # Execute
    total = sum(split_sums(part, 0.5) for part in parts)
    metrics = metrics_from_sums(np.asarray(total), 0.5)

    # Assert: with ties confined to bins (3 decimals), the histogram AUC is the exact AUC
    y = np.concatenate([p.positive for p in parts])
    s = np.concatenate([p.scores for p in parts])
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, s)
    assert metrics["ks"] == pytest.approx(float(np.max(tpr - fpr)), abs=1e-12)
    assert metrics["accuracy"] == pytest.approx(float(np.mean((s >= 0.5) == y)))
    assert metrics["log_loss"] == pytest.approx(log_loss(y, np.clip(s, 1e-15, 1 - 1e-15)), rel=1e-3)
    assert metrics["rows"] == 1000 and metrics["bins"] == FEDERATION_BINS


def test_horizontal_evaluation_reports_the_federation_auc_of_the_pooled_predictions(
    tmp_path: Path, computing: ComputingSession
) -> None:
    # Prepare: HorzLR trained by three data members (and an arbiter) on breast cancer rows
    rows = breast_rows([2, 1, 1])
    job = HorizontalJob(tmp_path, data_members=3)
    job.upload("train", rows.members)
    job.upload("test", rows.test)
    job.run("horz_lr_0", "HorzLR", computing, {"data": {"train_data": ["args.train"], "validate_data": ["args.test"]}},
            {"data": ["train"], "model": ["model"]}, params={"max_iter": 10, "alpha": 0.01},
            data_args=("train", "test"))

    # Execute: Evaluation at the data members only, as a job with "roles": ["promoter", "provider"] runs it
    job.run("evaluation_0", "Evaluation", computing, {"data": {"data": ["horz_lr_0.train"]}}, {},
            absent=(job.arbiter,), component_roles=["promoter", "provider"])

    # Assert: every member logs its own metrics and the same federation metrics, which match the pooled rows'
    pooled = pd.concat([job.output(m, computing, "horz_lr_0", "train") for m in job.data], ignore_index=True)
    seen = [logged(job, member, "evaluation_0") for member in job.data]
    for split in ("train", "validate"):
        rows_of = pooled[pooled["type"] == split]
        exact_auc = roc_auc_score(rows_of["y"], rows_of["predict_score"])
        federation = seen[0][("federation", split)]
        assert abs(federation["auc"] - exact_auc) <= AUC_TOLERANCE
        assert federation["rows"] == len(rows_of)
        assert federation["accuracy"] == pytest.approx(float(np.mean((rows_of["predict_score"] >= 0.5) == rows_of["y"])))
        for metrics, member in zip(seen, job.data, strict=True):
            assert metrics[("federation", split)] == federation
            own = job.output(member, computing, "horz_lr_0", "train")
            own = own[own["type"] == split]
            assert metrics[("evaluation", split)]["auc"] == pytest.approx(roc_auc_score(own["y"], own["predict_score"]))

