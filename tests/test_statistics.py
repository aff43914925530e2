"""Statistics against pandas on the same rows, on LOCAL and SPARK, through the task path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kernel.computing import ComputingSession, local_session
from kernel.stats.distinct import DistinctSketch
from kernel.stats.order import quantiles
from tests.credit_kit import mixed_frame
from tests.test_vert_kit import VerticalJob

LEVELS = [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0]


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    """LOCAL here; tests/test_credit_spark.py runs these components on SPARK."""
    session = local_session(num_workers=2, num_partitions=3)
    yield session
    session.stop()


def test_statistics_match_pandas_at_each_member(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: the promoter and a provider each hold their own columns.
    frame = mixed_frame(3000)
    job = VerticalJob(tmp_path, providers=1, backend=computing.backend)
    promoter = frame[["id", "y", "normal", "heavy"]]
    provider = frame[["id", "level", "gappy", "city"]]
    job.upload("train", [promoter, provider])

    # Execute
    job.run("statistics_0", "Statistics", computing, {"data": {"data": ["args.train"]}},
            {"data": ["train"], "model": ["model"]}, params={"quantiles": LEVELS}, data_args=("train",))

    # Assert: every figure equals pandas' on the member's own rows.
    for member, own in ((job.members[0], promoter), (job.members[1], provider)):
        summary = job.metrics(member, "statistics_0")["statistics"]
        assert sorted(summary) == sorted(c for c in own.columns if c not in ("id", "y"))
        for column, described in summary.items():
            values = own[column]
            assert described["count"] == values.count()
            assert described["missing"] == values.isna().sum()
            assert described["distinct"] == values.nunique() and described["distinct_exact"]
            if column == "city":
                continue
            assert described["mean"] == pytest.approx(values.mean(), rel=1e-12)
            assert described["std"] == pytest.approx(values.std(), rel=1e-10)
            assert described["skewness"] == pytest.approx(values.skew(), rel=1e-8, abs=1e-12)
            assert described["kurtosis"] == pytest.approx(values.kurt(), rel=1e-8, abs=1e-12)
            assert (described["min"], described["max"]) == (values.min(), values.max())
            expected = values.quantile(LEVELS).tolist()
            assert [described["quantiles"][str(q)] for q in LEVELS] == pytest.approx(expected, rel=1e-12)
    out = job.output(job.members[1], computing, "statistics_0", "train")
    pd.testing.assert_frame_equal(out[["id", "level"]], provider[["id", "level"]].reset_index(drop=True))


def test_quantiles_are_exact_on_ties_and_tiny_spreads(computing: ComputingSession) -> None:
    # Prepare: 20000 rows where one value repeats past the gathering limit, and values a few
    # floats apart (an interval that cannot be split into buckets).
    rng = np.random.default_rng(3)
    tied = np.where(rng.random(20000) < 0.6, 7.0, rng.normal(7.0, 1.0, 20000))
    base = 1.0 + np.finfo(np.float64).eps * rng.integers(0, 3, 20000)
    table = computing.from_arrow(pa.table({"id": np.arange(20000), "tied": tied, "close": base}), "id")
    levels = {"tied": [0.1, 0.3, 0.5, 0.9], "close": [0.2, 0.5, 0.8]}

    # Execute
    found = quantiles(table, levels, {"tied": 20000, "close": 20000},
                      {"tied": tied.min(), "close": base.min()}, {"tied": tied.max(), "close": base.max()})

    # Assert
    assert found["tied"] == np.quantile(tied, levels["tied"]).tolist()
    assert found["close"] == np.quantile(base, levels["close"]).tolist()


def test_distinct_count_turns_into_a_sketch_past_the_limit() -> None:
    rng = np.random.default_rng(5)
    values = rng.integers(0, 40000, 100000).astype(np.float64)
    halves = [DistinctSketch.of_column(pa.array(part), 1000) for part in np.split(values, 4)]
    merged = halves[0].merge(halves[1]).merge(halves[2].merge(halves[3]))
    assert not merged.exact
    assert merged.count() == pytest.approx(len(np.unique(values)), rel=0.03)
    small = DistinctSketch.of_column(pa.array([1.0, -0.0, 0.0, None, 1.0]), 1000)
    assert small.exact and small.count() == 2
