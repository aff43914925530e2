"""Binary metrics from distributed histograms equal the exact ones on gathered rows, LOCAL and SPARK."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest

from kernel.components.evaluation.distributed import binary_split_metrics
from kernel.components.evaluation.federation import Scored, split_sums
from kernel.components.evaluation.metrics import binary_metrics
from kernel.computing import ComputingSession, local_session, spark_session


@pytest.fixture(params=["LOCAL", "SPARK"])
def session(request: pytest.FixtureRequest) -> Iterator[ComputingSession]:
    if request.param == "LOCAL":
        made = local_session(num_partitions=3)
        yield made
        made.stop()
    else:
        yield spark_session(spark=request.getfixturevalue("spark"))


def scores_of(kind: str, rng: np.random.Generator, rows: int) -> np.ndarray:
    if kind == "continuous":
        return rng.uniform(0, 1, rows)
    if kind == "discrete":  # few distinct values: many ties across classes
        return rng.integers(0, 7, rows) / 6
    # Distinct scores closer than a first-pass bin (1/65536): only narrowing separates them.
    return 0.5 + rng.integers(0, 40, rows) * 1e-9


@pytest.mark.parametrize("kind", ["continuous", "discrete", "clustered"])
def test_distributed_metrics_equal_the_exact_ones(session: ComputingSession, kind: str) -> None:
    # Prepare
    rng = np.random.default_rng(len(kind))
    rows = 3000
    labels = rng.integers(0, 2, rows)
    scores = np.clip(scores_of(kind, rng, rows) + (labels * 0.1 if kind == "continuous" else 0), 0, 1)
    table = session.from_arrow(pa.table({"id": np.arange(rows), "y": labels, "s": scores}), "id", num_partitions=3)
    exact = binary_metrics(labels, scores, threshold=0.5, curve_points=50)

    # Execute
    got, sums = binary_split_metrics(table, "y", "s", 1, 0.5, 50)

    # Assert: AUC and KS exact (to float rounding), the rest exact, sums as the federation's
    for key in ("auc", "ks", "accuracy", "precision", "recall", "f1", "log_loss"):
        assert got[key] == pytest.approx(exact[key], rel=1e-12, abs=1e-12), key
    np.testing.assert_allclose(sums, split_sums(Scored(labels == 1, scores), 0.5), rtol=1e-12)
    curve = got["roc_curve"]
    assert len(curve["fpr"]) <= 50 and curve["fpr"][0] == 0.0 and curve["tpr"][-1] == 1.0
    assert max(np.subtract(curve["tpr"], curve["fpr"])) == pytest.approx(exact["ks"])


def test_refusals_match_the_exact_path(session: ComputingSession) -> None:
    one_class = session.from_arrow(pa.table({"id": [1, 2], "y": [1, 1], "s": [0.2, 0.3]}), "id")
    outside = session.from_arrow(pa.table({"id": [1, 2], "y": [0, 1], "s": [0.2, 1.5]}), "id")
    with pytest.raises(Exception, match="only class 1"):
        binary_split_metrics(one_class, "y", "s", 1, 0.5, 10)
    with pytest.raises(Exception, match=r"probabilities in \[0, 1\]"):
        binary_split_metrics(outside, "y", "s", 1, 0.5, 10)
