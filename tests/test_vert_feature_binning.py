"""VertFeatureBinning: bins and WOE/IV in numpy, and the encrypted provider path through the task path."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kernel.components.vert_feature_binning.bins import bin_edges, bin_indices, woe_iv
from kernel.computing import ComputingSession, local_session
from kernel.security.paillier import WeakKeyWarning
from kernel.tracker import load_model
from tests.test_vert_kit import VerticalJob, breast_split

INPUTS = {"data": {"data": ["args.train"]}}
OUTPUTS = {"data": ["train"], "model": ["model"]}


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


def test_quantile_edges_split_rows_evenly_and_missing_values_get_their_own_bin() -> None:
    values = np.concatenate([np.arange(100, dtype=np.float64), [np.nan, np.nan]])

    edges = bin_edges(values, "quantile", 4)
    index = bin_indices(values, edges)

    assert np.bincount(index).tolist() == [25, 25, 25, 25, 2]


def test_equal_width_edges_and_a_constant_feature() -> None:
    np.testing.assert_allclose(bin_edges(np.array([0.0, 10.0, 3.0]), "bucket", 5), [2, 4, 6, 8])
    assert bin_edges(np.full(5, 7.0), "quantile", 10).size == 0


def test_woe_and_iv_by_hand() -> None:
    # Bins: 30 rows with 20 events, 70 rows with 10 events, an empty bin; 30 events, 70 non-events.
    woe, iv = woe_iv(np.array([20, 10, 0]), np.array([30, 70, 0]), 0.5)

    first, second = np.log((20 / 30) / (10 / 70)), np.log((10 / 30) / (60 / 70))
    np.testing.assert_allclose(woe, [first, second, 0.0])
    assert iv == pytest.approx((20 / 30 - 10 / 70) * first + (10 / 30 - 60 / 70) * second)


def test_provider_iv_from_encrypted_labels_equals_the_plain_computation(
    tmp_path: Path, computing: ComputingSession
) -> None:
    # Prepare
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", split.train)

    # Execute
    job.run("binning_0", "VertFeatureBinning", computing, INPUTS, OUTPUTS, data_args=("train",),
            params={"key_bits": 1024, "bin_num": 5, "transform_method": "woe"})

    # Assert: the IV the provider got back is the one computed with the labels in the clear.
    provider = job.members[1]
    model = load_model(provider.root / "models", job.job.job_id, "binning_0", "provider", provider.member_id)
    frame = split.train[1].assign(y=split.train[0]["y"].to_numpy())
    for position, name in enumerate(f"x{i}" for i in range(10, 30)):
        values = frame[name].to_numpy()
        index = bin_indices(values, bin_edges(values, "quantile", 5))
        counts = np.bincount(index, minlength=len(model["bins"][name]["woe"]))
        events = np.bincount(index, weights=frame["y"].to_numpy(), minlength=len(counts)).astype(np.int64)
        woe, iv = woe_iv(events, counts, 0.5)
        assert model["bins"][name]["iv"] == pytest.approx(iv)
        np.testing.assert_allclose(model["bins"][name]["woe"], woe)
        assert model["public_names"][name] == f"feature_{position}"
    # The promoter knows the provider's IVs by anonymous ids only.
    provider_iv = job.metrics(job.promoter, "binning_0")["provider_iv"][0]
    assert set(provider_iv) == {f"feature_{i}" for i in range(20)}
    assert provider_iv["feature_0"] == pytest.approx(model["bins"]["x10"]["iv"])
    # The provider's output holds WOE values in place of its features.
    out = job.output(provider, computing, "binning_0", "train")
    assert set(np.round(out["x10"], 9)) <= set(np.round(model["bins"]["x10"]["woe"], 9))


def test_a_stored_model_bins_new_data_and_revealed_names_reach_the_promoter(
    tmp_path: Path, computing: ComputingSession
) -> None:
    # Prepare: train on the training rows with equal-width bins and bin indices as output.
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", split.train)
    job.upload("test", split.test)
    job.run("binning_0", "VertFeatureBinning", computing, INPUTS, OUTPUTS, data_args=("train",),
            params={"key_bits": 1024, "method": "bucket", "bin_num": 4, "transform_method": "bin_index"},
            role_params={"provider": {"reveal_feature_names": True}})

    # Execute: the same component applied to the test rows with the trained model.
    job.run("binning_1", "VertFeatureBinning", computing,
            {"data": {"data": ["args.test"]}, "model": ["binning_0.model"]}, {"data": ["test"]}, data_args=("test",))

    # Assert
    assert "x10" in job.metrics(job.promoter, "binning_0")["provider_iv"][0]
    out = job.output(job.members[1], computing, "binning_1", "test")
    assert set(out["x12"].unique()) <= {0.0, 1.0, 2.0, 3.0}
    assert len(out) == len(split.y_test)
