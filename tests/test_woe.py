"""WOE against toad on the German credit data, and the blinded disclosure mode."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import toad

from kernel.computing import ComputingSession, local_session
from kernel.security.paillier import WeakKeyWarning
from tests.credit_kit import german_members, german_numeric
from tests.test_vert_kit import VerticalJob

BINNING = {"key_bits": 1024, "bin_num": 5}
MODEL_OUT = {"data": ["train"], "model": ["model"]}


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


def binned_german(tmp_path: Path, computing: ComputingSession, binning: dict[str, object]) -> VerticalJob:
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", german_members(german_numeric()))
    job.run("binning_0", "VertFeatureBinning", computing, {"data": {"data": ["args.train"]}}, MODEL_OUT,
            params=binning, data_args=("train",))
    return job


def toad_woe(frame: pd.DataFrame, edges: dict[str, list[float]]) -> pd.DataFrame:
    """The twin: toad's Combiner with our edges, then toad's WOETransformer on the pooled rows."""
    combiner = toad.transform.Combiner().load({name: np.asarray(e) for name, e in edges.items()})
    binned = combiner.transform(frame[list(edges)])
    return toad.transform.WOETransformer().fit_transform(binned, frame["y"])


def test_woe_tables_match_toad_at_both_members(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare
    job = binned_german(tmp_path, computing, BINNING)

    # Execute
    job.run("woe_0", "WOE", computing, {"data": {"data": ["binning_0.train"]}, "model": ["binning_0.model"]},
            MODEL_OUT)

    # Assert: every encoded value equals toad's WOE of the same bin on the pooled data.
    pooled = german_numeric()
    for member in job.members:
        tables = job.metrics(member, "woe_0")["woe"]
        out = job.output(member, computing, "woe_0", "train")
        edges = {}
        for name, table in tables.items():
            labels = table["bins"]
            edges[name] = [float(label.split(", ")[0][1:]) for label in labels[1:-1]]
        expected = toad_woe(pooled, edges)
        for name in tables:
            np.testing.assert_allclose(out[name].to_numpy(), expected[name].to_numpy(), rtol=1e-9, atol=1e-12)
    assert len(job.metrics(job.members[1], "woe_0")["woe"]) == 10


def test_blinded_mode_keeps_woe_and_label_rates_from_the_provider(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: binning keeps the provider's WOE at the promoter.
    job = binned_german(tmp_path, computing, {**BINNING, "provider_woe": False})
    provider_binning = job.output(job.members[1], computing, "binning_0", "train")

    # Execute: plain WOE in one task (for reference), blinded in another.
    inputs = {"data": {"data": ["binning_0.train"]}, "model": ["binning_0.model"]}
    job.run("woe_plain", "WOE", computing, inputs, MODEL_OUT)
    job.run("woe_blind", "WOE", computing, inputs, MODEL_OUT, params={"provider_disclosure": "blinded"})

    # Assert: the provider's blinded column is a*WOE+b with a != 1 or b != 0, so its
    # standardised values equal the WOE's up to sign; the promoter's columns are unchanged.
    plain = job.output(job.members[1], computing, "woe_plain", "train")
    blind = job.output(job.members[1], computing, "woe_blind", "train")
    features = [c for c in plain.columns if c != "id" and plain[c].nunique() > 1]  # one bin: constant
    assert len(features) >= 5
    for name in features:
        slope, intercept = np.polyfit(plain[name], blind[name], 1)
        np.testing.assert_allclose(blind[name], slope * plain[name] + intercept, atol=1e-9)
        assert not np.allclose(blind[name], plain[name])
        assert np.exp(-1) - 1e-9 <= abs(slope) <= np.exp(1) + 1e-9
        z_plain = (plain[name] - plain[name].mean()) / plain[name].std()
        z_blind = (blind[name] - blind[name].mean()) / blind[name].std()
        np.testing.assert_allclose(z_blind * np.sign(slope), z_plain, atol=1e-9)
    pd.testing.assert_frame_equal(job.output(job.members[0], computing, "woe_plain", "train"),
                                  job.output(job.members[0], computing, "woe_blind", "train"))
    model_woe = job.metrics(job.members[1], "binning_0")["iv"]
    assert set(model_woe.values()) == {0.0}  # the provider's binning learnt no IV either
    assert not provider_binning.empty


def test_iv_threshold_is_applied_by_the_promoter_when_provider_iv_is_withheld(
    tmp_path: Path, computing: ComputingSession
) -> None:
    # Prepare
    job = binned_german(tmp_path, computing, {**BINNING, "provider_woe": False})
    provider_iv = job.metrics(job.promoter, "binning_0")["provider_iv"][0]

    # Execute
    job.run("selection_0", "FeatureSelection", computing,
            {"data": {"data": ["binning_0.train"]}, "model": ["binning_0.model"]}, MODEL_OUT,
            params={"iv_threshold": 0.02})

    # Assert: the provider keeps exactly its features whose IV (known only to the promoter) passes.
    kept = job.metrics(job.members[1], "selection_0")["selection"]["kept"]
    provider_features = german_members(german_numeric())[1].columns[1:].tolist()
    public = {name: f"feature_{i}" for i, name in enumerate(provider_features)}
    assert sorted(public[n] for n in kept) == sorted(n for n, v in provider_iv.items() if v >= 0.02)
    assert 0 < len(kept) < len(provider_features)
