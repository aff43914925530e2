"""Distribution with an arbiter: the members' sums travel masked, the arbiter learns only the union."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kernel.components.distribution.constants import MASK_PRECISION_BITS
from kernel.components.distribution.sums import member_sums
from kernel.computing import ComputingSession, local_session
from kernel.inprocess_run import PartyFailed
from kernel.security.secure_aggregation import decode_sum, encode_fixed
from kernel.stats.summary import block_histogram, block_moments
from tests.test_horz_kit import HorizontalJob, uniformity_p_values

FEATURES = ["a", "b"]
BINS = 40
PARAMS = {"features": FEATURES, "quantiles": [0.1, 0.5, 0.9], "bins": BINS}
LOCAL_STATISTICS = "DistributionTransferVariable.local_statistics"
UNIFORM_P = 1e-4


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=3)
    yield session
    session.stop()


def frame(rows: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"id": [f"r{seed}_{i}" for i in range(rows)], "y": rng.integers(0, 2, rows),
                         "a": rng.normal(shift, 1.0, rows), "b": rng.exponential(3.0 + shift, rows)})
    data.loc[data.index % 7 == 0, "b"] = np.nan
    return data


def describe(job: HorizontalJob, computing: ComputingSession, frames: list[pd.DataFrame],
             timeout: float = 60.0) -> None:
    job.upload("raw", frames)
    job.run("distribution_0", "Distribution", computing, {"data": {"data": ["args.raw"]}}, {"data": ["out"]},
            params=PARAMS, data_args=("raw",), timeout=timeout)


def metric_lines(job: HorizontalJob, member: Any) -> list[dict[str, Any]]:
    party = job.party(member)
    path = member.root / "tasks" / job.job.job_id / "distribution_0" / party.role / party.member_id / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_three_members_get_the_pooled_description_from_masked_sums(
    tmp_path: Path, computing: ComputingSession
) -> None:
    # Prepare: three members of different sizes and different distributions.
    frames = [frame(120, 1, 0.0), frame(300, 2, 2.0), frame(700, 3, -1.0)]
    job = HorizontalJob(tmp_path, data_members=3)

    # Execute
    describe(job, computing, frames)

    # Assert: the global description is the pooled rows'; every party holds the same one.
    pooled = pd.concat(frames)
    summary = metric_lines(job, job.arbiter)[-1]["points"]
    for name in FEATURES:
        values = pooled[name].dropna()
        assert summary[name]["count"] == len(values)
        assert summary[name]["missing"] == int(pooled[name].isna().sum())
        assert summary[name]["mean"] == pytest.approx(values.mean(), rel=1e-9)
        assert summary[name]["std"] == pytest.approx(values.std(ddof=1), rel=1e-9)
        assert summary[name]["min"] == values.min() and summary[name]["max"] == values.max()
        width = (values.max() - values.min()) / BINS
        for level in PARAMS["quantiles"]:
            assert abs(summary[name]["quantiles"][str(level)] - values.quantile(level)) <= width
        counts, _ = np.histogram(values, bins=np.asarray(summary[name]["histogram"]["edges"]))
        assert summary[name]["histogram"]["counts"] == counts.tolist()
    for member in job.members:
        lines = metric_lines(job, member)
        assert lines[-1]["points"] == summary
        assert lines[-2]["points"] == {"masked": True, "members": 3}


def test_the_arbiter_receives_uniform_looking_words_whose_sum_is_the_members_sums(
    tmp_path: Path, computing: ComputingSession
) -> None:
    # Prepare
    frames = [frame(400, 4, 0.0), frame(600, 5, 1.0)]
    job = HorizontalJob(tmp_path, data_members=2)

    # Execute
    describe(job, computing, frames)

    # Assert: each member's plain sums, computed here over its rows with the common edges.
    summary = metric_lines(job, job.arbiter)[-1]["points"]
    edges = {name: np.asarray(summary[name]["histogram"]["edges"]) for name in FEATURES}
    plain = []
    for f in frames:
        columns = {name: f[name].to_numpy() for name in FEATURES}
        plain.append(member_sums(FEATURES, block_moments(columns), block_histogram(columns, edges), edges))
    received = {sender: vector for (_, sender), vector in job.hub.received(LOCAL_STATISTICS, "arbiter").items()}
    promoter, provider = (job.party(m) for m in job.data)
    seen = received[promoter]
    encoded = encode_fixed(plain[0], MASK_PRECISION_BITS, 2)
    # What the arbiter got from the promoter is not the promoter's vector and looks uniform...
    assert seen.dtype == np.uint64 and seen.shape == encoded.shape
    assert np.count_nonzero(seen == encoded) == 0
    assert np.max(np.abs(decode_sum(seen, MASK_PRECISION_BITS) - plain[0])) > 1e6
    assert min(uniformity_p_values(seen)) > UNIFORM_P
    assert uniformity_p_values(encoded)[1] < 1e-12
    # ...while the sum of both members' words is the sum of their vectors: counts and histograms
    # exactly, the centred sums to the fixed point (the rows' order changes the float rounding).
    total = decode_sum(seen + received[provider], MASK_PRECISION_BITS)
    expected = plain[0] + plain[1]
    counts = np.ones_like(expected, dtype=bool)
    for start in np.cumsum([0] + [4 + edges[n].size - 1 for n in FEATURES[:-1]]):
        counts[start + 2:start + 4] = False
    np.testing.assert_array_equal(total[counts], expected[counts])
    np.testing.assert_allclose(total[~counts], expected[~counts], rtol=0, atol=4 * 2.0 ** -MASK_PRECISION_BITS)


def test_one_data_member_sends_its_sums_unmasked_and_says_so(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: a promoter and an arbiter (two members): masks would have nobody to cancel against.
    data = frame(500, 6, 0.0)
    job = HorizontalJob(tmp_path, data_members=1)

    # Execute
    describe(job, computing, [data])

    # Assert: the description is right and both parties record that nothing was masked.
    summary = metric_lines(job, job.arbiter)[-1]["points"]
    assert summary["a"]["mean"] == pytest.approx(data["a"].mean(), rel=1e-9)
    assert summary["b"]["count"] == data["b"].notna().sum()
    received = job.hub.received(LOCAL_STATISTICS, "arbiter")
    assert [vector.dtype for vector in received.values()] == [np.float64]
    for member in job.members:
        assert metric_lines(job, member)[-2]["points"] == {"masked": False, "members": 1}


def test_members_describing_different_columns_fail_everywhere_naming_the_member(
    tmp_path: Path, computing: ComputingSession
) -> None:
    # Prepare: the provider describes every feature column, the promoter only "a" and "b".
    job = HorizontalJob(tmp_path, data_members=2)
    frames = [frame(50, 7, 0.0), frame(50, 8, 0.0).assign(c=1.0)]
    job.upload("raw", frames)

    # Execute
    with pytest.raises(PartyFailed) as failure:
        job.run("distribution_0", "Distribution", computing, {"data": {"data": ["args.raw"]}}, {"data": ["out"]},
                params={"bins": 5}, data_args=("raw",), timeout=20)

    # Assert
    provider = job.party(job.members[1])
    for member in job.members:
        assert f"{job.party(member)}: FederationError: Distribution failed at the arbiter: member {provider} " \
               "describes columns" in str(failure.value)
