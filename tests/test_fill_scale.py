"""FillMissing and Scale against scikit-learn on the same rows, fitted on train and reused on test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from kernel.computing import ComputingSession, local_session
from kernel.inprocess_run import PartyFailed
from tests.credit_kit import mixed_frame
from tests.test_vert_kit import VerticalJob

PROMOTER_COLUMNS = ["id", "y", "normal", "gappy"]
PROVIDER_COLUMNS = ["id", "heavy", "level", "city"]


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    """LOCAL here; tests/test_credit_spark.py runs these components on SPARK."""
    session = local_session(num_workers=2, num_partitions=3)
    yield session
    session.stop()


def split_job(tmp_path: Path, backend: str, frame: pd.DataFrame) -> tuple[VerticalJob, pd.DataFrame, pd.DataFrame]:
    """Promoter and provider hold columns of the same people; rows 0..399 train, the rest test."""
    train, test = frame.iloc[:400].reset_index(drop=True), frame.iloc[400:].reset_index(drop=True)
    job = VerticalJob(tmp_path, providers=1, backend=backend)
    job.upload("train", [train[PROMOTER_COLUMNS], train[PROVIDER_COLUMNS]])
    job.upload("test", [test[PROMOTER_COLUMNS], test[PROVIDER_COLUMNS]])
    return job, train, test


def with_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    rng = np.random.default_rng(9)
    for column in ("normal", "heavy", "level"):
        frame.loc[rng.random(len(frame)) < 0.1, column] = np.nan
    return frame


def test_fill_missing_matches_simple_imputer_and_reuses_the_fit(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare
    job, train, test = split_job(tmp_path, computing.backend, with_gaps(mixed_frame(600)))
    params = {"method": "mean"}
    role_params = {"promoter": {"column_methods": {"gappy": "median"}},
                   "provider": {"method": "mode", "columns": ["heavy", "level", "city"],
                                "column_methods": {"heavy": "constant"}, "column_values": {"heavy": -1.0}}}

    # Execute: fit on train, then a second task fills test with the fitted values.
    job.run("fill_0", "FillMissing", computing, {"data": {"data": ["args.train"]}},
            {"data": ["train"], "model": ["model"]}, params=params, role_params=role_params, data_args=("train",))
    job.run("fill_1", "FillMissing", computing, {"data": {"data": ["args.test"]}, "model": ["fill_0.model"]},
            {"data": ["test"]}, data_args=("test",))

    # Assert: the same values scikit-learn's SimpleImputer fits, applied to both sets.
    expected = {
        "normal": SimpleImputer(strategy="mean").fit(train[["normal"]]).statistics_[0],
        "gappy": SimpleImputer(strategy="median").fit(train[["gappy"]]).statistics_[0],
        "heavy": -1.0,
        "level": SimpleImputer(strategy="most_frequent").fit(train[["level"]]).statistics_[0],
        "city": train["city"].mode()[0],
    }
    fitted = {**job.metrics(job.members[0], "fill_0")["fill_values"], **job.metrics(job.members[1], "fill_0")["fill_values"]}
    assert fitted.keys() == expected.keys()
    for column, value in expected.items():
        assert fitted[column] == (value if isinstance(value, str) else pytest.approx(value, rel=1e-12))
    for member, columns in ((job.members[0], PROMOTER_COLUMNS), (job.members[1], PROVIDER_COLUMNS)):
        for component, name, rows in (("fill_0", "train", train), ("fill_1", "test", test)):
            out = job.output(member, computing, component, name)
            for column in columns[1:]:
                if column == "y":
                    continue
                want = rows[column].fillna(expected[column])
                if column == "city":
                    assert out[column].tolist() == want.tolist()
                else:
                    np.testing.assert_allclose(out[column].to_numpy(), want.to_numpy(dtype=float), rtol=1e-12)


def test_fill_missing_refuses_a_mean_of_text(tmp_path: Path) -> None:
    from kernel.computing import local_session

    computing = local_session(num_partitions=2)
    job, _, _ = split_job(tmp_path, "LOCAL", mixed_frame(600))
    with pytest.raises(PartyFailed, match="column 'city' is text; fill it by mode or constant"):
        job.run("fill_0", "FillMissing", computing, {"data": {"data": ["args.train"]}},
                {"data": ["train"], "model": ["model"]}, data_args=("train",), timeout=10)
    computing.stop()


def test_scale_matches_scikit_learn(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: the promoter standardises, the provider min-max scales between quantiles, clipped.
    job, train, test = split_job(tmp_path, computing.backend, mixed_frame(600))
    role_params = {"promoter": {"columns": ["normal", "gappy"]},
                   "provider": {"method": "min_max", "columns": ["heavy", "level"], "lower_quantile": 0.05,
                                "upper_quantile": 0.95, "clip": True}}

    # Execute
    job.run("scale_0", "Scale", computing, {"data": {"data": ["args.train"]}},
            {"data": ["train"], "model": ["model"]}, role_params=role_params, data_args=("train",))
    job.run("scale_1", "Scale", computing, {"data": {"data": ["args.test"]}, "model": ["scale_0.model"]},
            {"data": ["test"]}, data_args=("test",))

    # Assert
    standard = StandardScaler().fit(train[["normal", "gappy"]])
    low, high = train[["heavy", "level"]].quantile(0.05), train[["heavy", "level"]].quantile(0.95)
    min_max = MinMaxScaler(clip=True).fit(pd.DataFrame([low, high]))
    for component, name, rows in (("scale_0", "train", train), ("scale_1", "test", test)):
        promoter = job.output(job.members[0], computing, component, name)
        np.testing.assert_allclose(promoter[["normal", "gappy"]].to_numpy(),
                                   standard.transform(rows[["normal", "gappy"]]), rtol=1e-9, atol=1e-12)
        provider = job.output(job.members[1], computing, component, name)
        np.testing.assert_allclose(provider[["heavy", "level"]].to_numpy(),
                                   min_max.transform(rows[["heavy", "level"]]), rtol=1e-9, atol=1e-12)
        assert provider["city"].tolist() == rows["city"].tolist()
