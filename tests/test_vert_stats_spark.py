"""VertPearson and VertFeatureBinning on SPARK: no row collected, the same results as LOCAL.

The SPARK runs send the per-row vectors in five chunks (CHUNK_VALUES lowered), the LOCAL
reference in one; any Table.collect on a Spark table fails the run.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kernel.blocks import row_chunks
from kernel.components.vert_feature_binning.bins import bin_edges, bin_indices
from kernel.computing import ComputingSession, local_session, spark_session
from kernel.computing.spark import SparkTable
from kernel.security.paillier import WeakKeyWarning
from kernel.tracker import load_model
from tests.test_vert_kit import VerticalJob, breast_split

INPUTS = {"data": {"data": ["args.train"]}}
OUTPUTS = {"data": ["train"], "model": ["model"]}
TRAIN_ROWS = 398
PROMOTER_FEATURES = 6


@pytest.fixture(autouse=True)
def quiet_weak_keys() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        yield


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=3)
    yield session
    session.stop()


def refuse(self: SparkTable) -> None:
    raise AssertionError("a Spark table was collected on the driver")


def run_both(tmp_path: Path, spark: Any, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch,
             module: str, params: dict[str, Any], width: int, role_params: dict[str, Any] | None = None,
             ) -> tuple[VerticalJob, VerticalJob]:
    """The same job on LOCAL (one chunk) and on SPARK (five chunks of `width` values a row, collect refused)."""
    split = breast_split([range(0, PROMOTER_FEATURES), range(PROMOTER_FEATURES, 14)])
    assert len(split.y_train) == TRAIN_ROWS and row_chunks.chunk_count(TRAIN_ROWS, width) == 1
    local_job = VerticalJob(tmp_path / "local", providers=1)
    local_job.upload("train", split.train)
    local_job.run("stats_0", module, computing, INPUTS, OUTPUTS, params=params, role_params=role_params,
                  data_args=("train",))
    spark_job = VerticalJob(tmp_path / "spark", providers=1, backend="SPARK")
    spark_job.upload("train", split.train)
    with monkeypatch.context() as patch:
        patch.setattr(SparkTable, "collect", refuse)
        patch.setattr(row_chunks, "CHUNK_VALUES", TRAIN_ROWS * width // 5 + 1)
        assert row_chunks.chunk_count(TRAIN_ROWS, width) == 5
        spark_job.run("stats_0", module, spark_session(spark), INPUTS, OUTPUTS, params=params,
                      role_params=role_params, data_args=("train",))
    return local_job, spark_job


def test_spark_pearson_never_collects_and_matches_local_and_numpy(
    tmp_path: Path, spark: Any, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Execute
    local_job, spark_job = run_both(tmp_path, spark, computing, monkeypatch, "VertPearson", {"key_bits": 1024},
                                    PROMOTER_FEATURES, {"provider": {"reveal_feature_names": True}})

    # Assert: the same matrices on both backends, and numpy's pooled correlation.
    split = breast_split([range(0, 14)])
    pooled = np.corrcoef(split.x_train[:, :14], rowvar=False)
    local = local_job.metrics(local_job.promoter, "stats_0")["cross_correlation"][0]
    ours = spark_job.metrics(spark_job.promoter, "stats_0")["cross_correlation"][0]
    assert ours["provider_features"] == [f"x{i}" for i in range(6, 14)]
    np.testing.assert_allclose(ours["matrix"], local["matrix"], atol=1e-6)
    np.testing.assert_allclose(ours["matrix"], pooled[:6, 6:], atol=1e-5)
    shared = spark_job.metrics(spark_job.members[1], "stats_0")["cross_correlation"][0]
    np.testing.assert_allclose(shared["matrix"], ours["matrix"])
    for k, member in enumerate(spark_job.members):
        mine = spark_job.metrics(member, "stats_0")["local_correlation"]
        theirs = local_job.metrics(local_job.members[k], "stats_0")["local_correlation"]
        assert mine["features"] == theirs["features"]
        np.testing.assert_allclose(mine["matrix"], theirs["matrix"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["quantile", "bucket"])
def test_spark_binning_never_collects_and_matches_local(
    tmp_path: Path, spark: Any, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch, method: str,
) -> None:
    # Execute
    params = {"key_bits": 1024, "bin_num": 6, "method": method, "transform_method": "woe"}
    local_job, spark_job = run_both(tmp_path, spark, computing, monkeypatch, "VertFeatureBinning", params, 1)

    # Assert: the same edges, counts, events, WOE and IV at every member, the edges numpy's.
    split = breast_split([range(0, 14)])
    for k, (ours, theirs) in enumerate(zip(spark_job.members, local_job.members, strict=True)):
        role = "promoter" if k == 0 else "provider"
        spark_model = load_model(ours.root / "models", spark_job.job.job_id, "stats_0", role, ours.member_id)
        local_model = load_model(theirs.root / "models", local_job.job.job_id, "stats_0", role, theirs.member_id)
        assert spark_model["bins"].keys() == local_model["bins"].keys()
        for name, bins in spark_model["bins"].items():
            reference = local_model["bins"][name]
            values = split.x_train[:, int(name[1:])]
            edges = bin_edges(values, method, 6)
            assert bins["edges"] == reference["edges"] == edges.tolist()
            assert bins["counts"] == reference["counts"] == np.bincount(
                bin_indices(values, edges), minlength=len(edges) + 2).tolist()
            np.testing.assert_allclose(bins["woe"], reference["woe"], rtol=1e-12)
            assert bins["iv"] == pytest.approx(reference["iv"], rel=1e-12)
    local_iv = local_job.metrics(local_job.promoter, "stats_0")["provider_iv"][0]
    spark_iv = spark_job.metrics(spark_job.promoter, "stats_0")["provider_iv"][0]
    assert spark_iv.keys() == local_iv.keys() and len(spark_iv) == 8
    for name, iv in local_iv.items():
        assert spark_iv[name] == pytest.approx(iv, rel=1e-12)
