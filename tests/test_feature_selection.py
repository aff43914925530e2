"""FeatureSelection through the task path: local filters at every member, global IV top-k, name privacy."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kernel.computing import ComputingSession, local_session
from kernel.inprocess_run import PartyFailed
from kernel.security.paillier import WeakKeyWarning
from tests.test_vert_kit import VerticalJob, breast_split

BINNING_OUTPUTS = {"data": ["train"], "model": ["model"]}
SELECTION_INPUTS = {"data": {"data": ["binning_0.train"]}, "model": ["binning_0.model"]}


@pytest.fixture(autouse=True)
def quiet_weak_keys() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        yield


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=2)
    yield session
    session.stop()


def binned_job(tmp_path: Path, computing: ComputingSession, frames: list[pd.DataFrame]) -> VerticalJob:
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", frames)
    job.run("binning_0", "VertFeatureBinning", computing, {"data": {"data": ["args.train"]}}, BINNING_OUTPUTS,
            params={"key_bits": 1024, "bin_num": 6}, data_args=("train",))
    return job


def ivs(job: VerticalJob) -> tuple[dict[str, float], dict[str, float]]:
    binning = job.metrics(job.promoter, "binning_0")
    return binning["iv"], binning["provider_iv"][0]


def test_iv_top_k_ranks_every_members_features_without_revealing_provider_names(
    tmp_path: Path, computing: ComputingSession
) -> None:
    # Prepare
    split = breast_split([range(0, 10), range(10, 30)])
    job = binned_job(tmp_path, computing, split.train)
    own_iv, provider_iv = ivs(job)

    # Execute
    job.run("selection_0", "FeatureSelection", computing, SELECTION_INPUTS, {"data": ["train"], "model": ["model"]},
            params={"iv_top_k": 8})

    # Assert: the union of both members' kept features is the global top 8 by IV.
    everything = {**{("promoter", n): v for n, v in own_iv.items()},
                  **{("provider", n): v for n, v in provider_iv.items()}}
    top = sorted(everything, key=lambda key: -everything[key])[:8]
    kept_promoter = job.metrics(job.promoter, "selection_0")["selection"]["kept"]
    kept_provider = job.metrics(job.members[1], "selection_0")["selection"]["kept"]
    assert sorted(kept_promoter) == sorted(n for role, n in top if role == "promoter")
    seen_by_promoter = job.metrics(job.promoter, "selection_0")["provider_selection"][0]
    assert sorted(seen_by_promoter) == sorted(n for role, n in top if role == "provider")
    assert all(name.startswith("feature_") for name in seen_by_promoter)
    assert sorted(f"feature_{int(n[1:]) - 10}" for n in kept_provider) == sorted(seen_by_promoter)
    out = job.output(job.members[1], computing, "selection_0", "train")
    assert sorted(c for c in out.columns if c != "id") == sorted(kept_provider)


def test_missing_rate_variance_manual_and_iv_threshold_filters(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: the provider gets a mostly-missing column and a constant one.
    split = breast_split([range(0, 4), range(4, 8)])
    provider = split.train[1].copy()
    provider["gappy"] = np.where(np.arange(len(provider)) % 3 == 0, 1.0, np.nan)
    provider["flat"] = 2.0
    job = binned_job(tmp_path, computing, [split.train[0], provider])
    own_iv, _ = ivs(job)
    threshold = float(np.median(list(own_iv.values())))

    # Execute
    job.run("selection_0", "FeatureSelection", computing, SELECTION_INPUTS, {"data": ["train"], "model": ["model"]},
            params={"max_missing_rate": 0.5, "min_variance": 1e-9},
            role_params={"promoter": {"iv_threshold": threshold}, "provider": {"manual_drop": ["x5"]}})

    # Assert
    provider_result = job.metrics(job.members[1], "selection_0")["selection"]
    assert provider_result["dropped"] == {"x5": "manual", "gappy": "missing_rate", "flat": "variance"}
    assert sorted(provider_result["kept"]) == ["x4", "x6", "x7"]
    promoter_result = job.metrics(job.promoter, "selection_0")["selection"]
    assert sorted(promoter_result["kept"]) == sorted(n for n, v in own_iv.items() if v >= threshold)
    assert set(promoter_result["dropped"].values()) == {"iv_threshold"}


def test_iv_filters_without_a_binning_model_are_refused(tmp_path: Path, computing: ComputingSession) -> None:
    split = breast_split([range(0, 4), range(4, 8)])
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", split.train)

    with pytest.raises(PartyFailed, match="give a VertFeatureBinning model"):
        job.run("selection_0", "FeatureSelection", computing, {"data": {"data": ["args.train"]}}, {"data": ["train"]},
                params={"iv_threshold": 0.1}, data_args=("train",), timeout=5)
