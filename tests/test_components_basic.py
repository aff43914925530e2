"""DataIO, Distribution and Evaluation run through the task path with in-process parties."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from kernel.computing import ComputingSession, local_session
from kernel.federation.base import Party
from kernel.inprocess_run import PartyFailed
from tests.componentkit import Job, make_members


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=3)
    yield session
    session.stop()


def frame(rows: int, seed: int, missing_every: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"id": [f"r{seed}_{i}" for i in range(rows)], "y": rng.integers(0, 2, rows),
                         "a": rng.normal(size=rows), "b": rng.uniform(0, 10, rows), "note": ["t"] * rows})
    if missing_every:
        data.loc[data.index % missing_every == 0, "b"] = np.nan
    return data


def test_dataio_fills_missing_and_selects_columns(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare
    (member,) = make_members(tmp_path, 1)
    data = frame(200, 1, missing_every=4)
    ref = member.upload("raw", data, label="y")
    job = Job({"promoter": [member]})
    party = Party("promoter", member.member_id)
    conf = job.conf("DataIO", party, {"data": {"data": ["args.raw"]}}, {"data": ["train"], "model": ["model"]},
                    params={"with_label": True, "label_name": "y", "exclude_features": ["note"],
                            "missing_fill_method": "mean"}, job_args={"raw": ref})

    # Execute
    record = job.run("dataio_0", "DataIO", computing, {party: conf})[party]

    # Assert
    out = record["data"]["train"]
    table = member.store.read(computing, out["namespace"], out["name"]).to_pandas().sort_values("id")
    expected = data.sort_values("id")
    assert list(table.columns) == ["id", "y", "a", "b"]
    filled = expected["b"].fillna(expected["b"].mean()).to_numpy()
    np.testing.assert_allclose(table["b"].to_numpy(), filled)
    assert member.store.meta(out["namespace"], out["name"]).label_column == "y"


@pytest.mark.parametrize("backend", ["LOCAL", pytest.param("SPARK", marks=pytest.mark.spark)])
def test_dataio_median_fill_is_exact_without_gathering_rows(
        tmp_path: Path, computing: ComputingSession, backend: str, request: pytest.FixtureRequest) -> None:
    # Prepare: an even count of present values (the median is the mean of the two middle
    # ones), ties, and a column with no value at all.
    from kernel.computing import spark_session

    session = computing if backend == "LOCAL" else spark_session(spark=request.getfixturevalue("spark"))
    (member,) = make_members(tmp_path, 1)
    data = frame(301, 2, missing_every=3)
    data["a"] = np.round(data["a"], 1)
    data["empty"] = np.nan
    ref = member.upload("raw", data, label="y")
    job = Job({"promoter": [member]})
    party = Party("promoter", member.member_id)
    conf = job.conf("DataIO", party, {"data": {"data": ["args.raw"]}}, {"data": ["train"], "model": ["model"]},
                    params={"with_label": True, "label_name": "y", "exclude_features": ["note"],
                            "missing_fill_method": "median"}, job_args={"raw": ref})

    # Execute
    record = job.run("dataio_0", "DataIO", session, {party: conf})[party]

    # Assert: pandas' median of the present values fills the gaps; an empty column gets 0.
    out = record["data"]["train"]
    table = member.store.read(session, out["namespace"], out["name"]).to_pandas().sort_values("id")
    expected = data.sort_values("id")
    assert expected["b"].notna().sum() % 2 == 0
    np.testing.assert_array_equal(table["b"].to_numpy(), expected["b"].fillna(expected["b"].median()).to_numpy())
    np.testing.assert_array_equal(table["a"].to_numpy(), expected["a"].to_numpy())
    assert (table["empty"] == 0.0).all()


def test_dataio_refuses_a_missing_column_by_name(tmp_path: Path, computing: ComputingSession) -> None:
    (member,) = make_members(tmp_path, 1)
    job = Job({"promoter": [member]})
    party = Party("promoter", member.member_id)
    conf = job.conf("DataIO", party, {"data": {"data": ["args.raw"]}}, {"data": ["train"]},
                    params={"with_label": True, "label_name": "target"},
                    job_args={"raw": member.upload("raw", frame(10, 2))})
    with pytest.raises(PartyFailed, match="label_name: column 'target' is not in the data set"):
        job.run("dataio_0", "DataIO", computing, {party: conf})


def test_distribution_across_two_members_and_an_arbiter(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: two members hold different rows of the same columns; a third arbitrates.
    first, second, arbiter = make_members(tmp_path, 3)
    rows = {first.member_id: frame(300, 3, missing_every=5), second.member_id: frame(500, 4)}
    job = Job({"promoter": [first], "provider": [second], "arbiter": [arbiter]})
    confs = {}
    for role, member in (("promoter", first), ("provider", second), ("arbiter", arbiter)):
        party = Party(role, member.member_id)
        args = {"raw": member.upload("raw", rows[member.member_id], label="y")} if role != "arbiter" else {}
        confs[party] = job.conf("Distribution", party, {"data": {"data": ["args.raw"]}}, {"data": ["out"]},
                                params={"features": ["a", "b"], "quantiles": [0.5], "bins": 50}, job_args=args)

    # Execute
    job.run("distribution_0", "Distribution", computing, confs)

    # Assert: the global summary equals numpy over the pooled rows.
    pooled = pd.concat(list(rows.values()))
    task_dir = arbiter.root / "tasks" / job.job_id / "distribution_0" / "arbiter" / arbiter.member_id
    summary = json.loads((task_dir / "metrics.jsonl").read_text().splitlines()[-1])["points"]
    b = pooled["b"].dropna()
    assert summary["b"]["count"] == len(b) and summary["b"]["missing"] == pooled["b"].isna().sum()
    assert summary["b"]["mean"] == pytest.approx(b.mean())
    assert summary["b"]["std"] == pytest.approx(b.std(ddof=1))
    assert summary["a"]["min"] == pytest.approx(pooled["a"].min())
    width = (b.max() - b.min()) / 50
    assert abs(summary["b"]["quantiles"]["0.5"] - b.median()) <= width
    member_dir = first.root / "tasks" / job.job_id / "distribution_0" / "promoter" / first.member_id
    assert json.loads((member_dir / "metrics.jsonl").read_text().splitlines()[-1])["points"] == summary


@pytest.mark.parametrize("backend", ["LOCAL", pytest.param("SPARK", marks=pytest.mark.spark)])
def test_distribution_alone_gives_exact_quantiles_without_gathering_rows(
        tmp_path: Path, computing: ComputingSession, backend: str, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: more present values than one gathering pass takes (so the search narrows
    # first), ties, gaps, and a column with no value at all; no table may be collected.
    from kernel.computing import spark_session
    from kernel.computing.local import LocalTable
    from kernel.computing.spark import SparkTable
    from kernel.stats.constants import REFINE_GATHER_LIMIT

    session = computing if backend == "LOCAL" else spark_session(spark=request.getfixturevalue("spark"))
    (member,) = make_members(tmp_path, 1)
    data = frame(3 * REFINE_GATHER_LIMIT, 5, missing_every=6)
    data["a"] = np.round(data["a"], 2)
    data["empty"] = np.nan
    levels = [0.0, 0.1, 0.25, 0.5, 0.9, 0.999, 1.0]
    job = Job({"promoter": [member]})
    party = Party("promoter", member.member_id)
    conf = job.conf("Distribution", party, {"data": {"data": ["args.raw"]}}, {"data": ["out"]},
                    params={"features": ["a", "b", "empty"], "quantiles": levels, "quantile_method": "exact"},
                    job_args={"raw": member.upload("raw", data, label="y")})

    def refuse(self: object) -> None:
        raise AssertionError("Distribution gathered a whole table")

    monkeypatch.setattr(LocalTable, "collect", refuse)
    monkeypatch.setattr(SparkTable, "collect", refuse)

    # Execute
    job.run("distribution_0", "Distribution", session, {party: conf})

    # Assert: numpy's quantiles of the present values, exactly; none for the empty column.
    task_dir = member.root / "tasks" / job.job_id / "distribution_0" / "promoter" / member.member_id
    summary = json.loads((task_dir / "metrics.jsonl").read_text().splitlines()[-1])["points"]
    for name in ("a", "b"):
        present = data[name].dropna().to_numpy()
        assert summary[name]["quantile_method"] == "exact"
        got = [summary[name]["quantiles"][str(q)] for q in levels]
        np.testing.assert_array_equal(got, np.quantile(present, levels))
    assert all(v is None for v in summary["empty"]["quantiles"].values())


def test_evaluation_scores_tagged_predictions(tmp_path: Path, computing: ComputingSession) -> None:
    (member,) = make_members(tmp_path, 1)
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400)
    score = np.clip(y * 0.3 + rng.uniform(0, 0.7, 400), 0, 1)
    kind = np.where(np.arange(400) < 300, "train", "validate")
    predictions = pd.DataFrame({"id": [f"i{i}" for i in range(400)], "y": y, "predict_score": score, "type": kind})
    job = Job({"promoter": [member]})
    party = Party("promoter", member.member_id)
    conf = job.conf("Evaluation", party, {"data": {"data": ["args.pred"]}}, {},
                    job_args={"pred": member.upload("pred", predictions, label="y")})

    job.run("evaluation_0", "Evaluation", computing, {party: conf})

    task_dir = member.root / "tasks" / job.job_id / "evaluation_0" / "promoter" / member.member_id
    metrics = {m["name"]: m["points"] for m in map(json.loads, (task_dir / "metrics.jsonl").read_text().splitlines())}
    assert metrics["validate"]["auc"] == pytest.approx(roc_auc_score(y[300:], score[300:]))
    assert metrics["train"]["auc"] == pytest.approx(roc_auc_score(y[:300], score[:300]))
