"""OneHot against a pandas encoding of the same rows: capped categories, other bucket, unseen values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kernel.computing import ComputingSession, local_session
from tests.credit_kit import mixed_frame
from tests.test_vert_kit import VerticalJob


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    """LOCAL here; tests/test_credit_spark.py runs these components on SPARK."""
    session = local_session(num_workers=2, num_partitions=3)
    yield session
    session.stop()


def pandas_one_hot(rows: pd.Series, train: pd.Series, keep: int, label: str) -> pd.DataFrame:
    """The twin: the `keep` most frequent training values (ties by value), then other and missing."""
    counts = train.dropna().value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:keep]
    kept = [value for value, _ in ranked]
    out = {f"{label}_{int(v) if isinstance(v, float) else v}": (rows == v).astype(float) for v in kept}
    out[f"{label}_other"] = (~rows.isin(kept) & rows.notna()).astype(float)
    out[f"{label}_missing"] = rows.isna().astype(float)
    return pd.DataFrame(out)


def test_one_hot_matches_pandas_and_sends_unseen_values_to_other(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: the provider's text column and an integer-valued one; test rows carry a city
    # never seen in training.
    frame = mixed_frame(500)
    frame["level"] = frame["level"].astype(np.int64)
    train, test = frame.iloc[:300].reset_index(drop=True), frame.iloc[300:].reset_index(drop=True)
    test.loc[::7, "city"] = "atlantis"
    job = VerticalJob(tmp_path, providers=1, backend=computing.backend)
    columns = [["id", "y", "normal"], ["id", "city", "level", "heavy"]]
    job.upload("train", [train[c] for c in columns])
    job.upload("test", [test[c] for c in columns])
    role_params = {"provider": {"columns": ["city", "level"], "max_categories": 3}}

    # Execute
    job.run("one_hot_0", "OneHot", computing, {"data": {"data": ["args.train"]}},
            {"data": ["train"], "model": ["model"]}, role_params=role_params, data_args=("train",))
    job.run("one_hot_1", "OneHot", computing, {"data": {"data": ["args.test"]}, "model": ["one_hot_0.model"]},
            {"data": ["test"]}, data_args=("test",))

    # Assert: the indicators equal the twin's, in place of the encoded columns; the promoter
    # (no text feature) is unchanged.
    for component, name, rows in (("one_hot_0", "train", train), ("one_hot_1", "test", test)):
        out = job.output(job.members[1], computing, component, name)
        expected = pd.concat([rows[["id"]], pandas_one_hot(rows["city"], train["city"], 3, "city"),
                              pandas_one_hot(rows["level"].astype(float), train["level"].astype(float), 3, "level"),
                              rows[["heavy"]]], axis=1)
        expected = expected.drop(columns=["level_missing"]).assign(level_missing=0.0)
        expected = expected[out.columns]
        pd.testing.assert_frame_equal(out, expected, check_dtype=False)
        promoter = job.output(job.members[0], computing, component, name)
        assert list(promoter.columns) == ["id", "y", "normal"]
    assert job.output(job.members[1], computing, "one_hot_1", "test")["city_other"].iloc[::7].eq(1.0).all()
    kept = job.metrics(job.members[1], "one_hot_0")["categories"]
    assert kept["city"]["distinct"] == 4 and len(kept["city"]["kept"]) == 3
