"""VertPearson against numpy's correlation of the pooled columns; each side's share of the result."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kernel.computing import local_session
from kernel.inprocess_run import PartyFailed
from kernel.security.paillier import WeakKeyWarning
from tests.credit_kit import german_members, german_numeric
from tests.test_vert_kit import VerticalJob

PARAMS = {"key_bits": 1024}


@pytest.fixture(autouse=True)
def quiet_weak_keys() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        yield


def test_cross_and_local_correlations_match_numpy(tmp_path: Path) -> None:
    # Prepare: German credit split by columns, the provider's rows in another order.
    computing = local_session(num_partitions=3)
    frame = german_numeric()
    promoter, provider = german_members(frame, promoter_features=6)
    provider = provider.iloc[::-1]
    provider = provider[["id", *provider.columns[1:8]]]
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", [promoter, provider])

    # Execute
    job.run("pearson_0", "VertPearson", computing, {"data": {"data": ["args.train"]}},
            {"data": ["train"], "model": ["model"]}, params=PARAMS,
            role_params={"provider": {"reveal_feature_names": True}}, data_args=("train",))

    # Assert: the pooled Pearson matrix, split into its blocks.
    a, b = list(promoter.columns[2:]), list(provider.columns[1:])
    pooled = np.corrcoef(frame[a + b].to_numpy(), rowvar=False)
    cross = job.metrics(job.promoter, "pearson_0")["cross_correlation"][0]
    assert cross["provider_features"] == b
    np.testing.assert_allclose(cross["matrix"], pooled[: len(a), len(a):], atol=1e-5)
    shared = job.metrics(job.members[1], "pearson_0")["cross_correlation"][0]
    assert shared["promoter_features"] == [f"feature_{i}" for i in range(len(a))]
    np.testing.assert_allclose(shared["matrix"], cross["matrix"])
    for member, names in ((job.members[0], a), (job.members[1], b)):
        local = job.metrics(member, "pearson_0")["local_correlation"]
        assert local["features"] == names
        np.testing.assert_allclose(local["matrix"], np.corrcoef(frame[names].to_numpy(), rowvar=False), atol=1e-12)
    computing.stop()


def test_more_features_than_rows_allow_are_refused(tmp_path: Path) -> None:
    computing = local_session(num_partitions=2)
    frame = german_numeric().iloc[:12]
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", german_members(frame, promoter_features=4))
    with pytest.raises(PartyFailed, match="would let the promoter solve for their z-scores"):
        job.run("pearson_0", "VertPearson", computing, {"data": {"data": ["args.train"]}}, {"data": ["train"]},
                params=PARAMS, data_args=("train",), timeout=20)
    computing.stop()
