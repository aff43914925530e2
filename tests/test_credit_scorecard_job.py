"""The credit scorecard job through real schedulers and executors, against the plaintext pipeline.

DataIO -> Intersection -> DataSplit -> FillMissing -> VertFeatureBinning -> WOE (blinded) ->
FeatureSelection (IV) -> VertLR -> ScoreCard -> Evaluation, then FeatureStability of the
features and of the score on the held-out sample, on German credit split between two members
(the job of docs/examples/credit-scorecard.md). The plaintext twin runs the same steps on the
pooled rows with pandas and scikit-learn; AUC and KS must agree within 0.01.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.preprocessing import StandardScaler

from kernel.runtime_conf import output_namespace
from kernel.storage import DataStore
from protos.weft.v1 import common_pb2, scheduler_pb2
from tests.credit_kit import german_members, german_numeric
from tests.test_scheduler_support import (
    PROMOTER,
    PROVIDER,
    REPO,
    Member,
    start_members,
    stop_members,
)

SPEC = REPO / "services" / "client" / "examples" / "credit_scorecard_job.json"
SUCCESS = common_pb2.JOB_STATUS_SUCCESS
BIN_NUM, IV_THRESHOLD, ALPHA = 6, 0.02, 0.01


def credit_data() -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """German credit with a few gaps; the members share 960 of their ids."""
    frame = german_numeric()
    rng = np.random.default_rng(3)
    for column in ("credit_amount", "age_in_years"):
        frame.loc[rng.random(len(frame)) < 0.04, column] = np.nan
    promoter, provider = german_members(frame)
    return frame, [promoter.iloc[:980], provider.iloc[20:]]


@pytest.fixture()
async def members(tmp_path: Path) -> AsyncIterator[dict[str, Member]]:
    urls = {m: f"sqlite+aiosqlite:///{tmp_path / m[:6]}.db" for m in (PROMOTER, PROVIDER)}
    started = await start_members(tmp_path, urls)
    try:
        yield started
    finally:
        await stop_members(started)


def job_spec() -> dict[str, Any]:
    """The example job for these members, on this machine's spool directory, with test-sized keys."""
    spec = json.loads(SPEC.read_text().replace("PROMOTER_ID", PROMOTER).replace("PROVIDER_ID", PROVIDER))
    spec["job_parameters"]["work_mode"] = "STANDALONE"
    for name in ("binning_0", "vert_lr_0"):
        spec["components"][name]["params"]["key_bits"] = 1024
    # VertLR's defaults when these numbers were taken (full batch, constant rate), pinned.
    spec["components"]["vert_lr_0"]["params"].update({"learning_rate": 0.1, "decay": 0.0, "batch_size": -1})
    return spec


def stored(member: Member, job_id: str, role: str, name: str) -> pd.DataFrame:
    from kernel.computing import local_session

    computing = local_session(num_partitions=1)
    try:
        table = DataStore(str(member.root / "storage" / "data")).read(
            computing, output_namespace(job_id, role, member.member_id), name)
        return table.to_pandas()
    finally:
        computing.stop()


async def metrics(member: Member, job_id: str, component: str) -> dict[str, Any]:
    reply = await member.client.stub.GetMetrics(scheduler_pb2.GetMetricsRequest(job_id=job_id))
    return {m.name: json.loads(m.points_json) for task in reply.tasks
            if task.task.component_name == component for m in task.metrics}


def plaintext_pipeline(frame: pd.DataFrame, train_ids: list[str], test_ids: list[str]) -> dict[str, Any]:
    """The same steps on the pooled rows: mean fill, equal-frequency bins, WOE, IV filter,
    standardised L2 logistic regression (alpha = 1 / (C n)); scores are monotone in its log-odds."""
    indexed = frame.set_index("id")
    train, test = indexed.loc[train_ids].copy(), indexed.loc[test_ids].copy()
    features = [c for c in frame.columns if c not in ("id", "y")]
    means = train[features].mean()
    train[features], test[features] = train[features].fillna(means), test[features].fillna(means)
    woe_train, woe_test, iv = pd.DataFrame(index=train.index), pd.DataFrame(index=test.index), {}
    events, non_events = train["y"].sum(), (1 - train["y"]).sum()
    for name in features:
        values = train[name].to_numpy()
        edges = np.unique(np.quantile(values, np.arange(1, BIN_NUM) / BIN_NUM))
        edges = edges[edges > values.min()]
        bins_train = np.searchsorted(edges, values, side="right")
        bins_test = np.searchsorted(edges, test[name].to_numpy(), side="right")
        table = pd.DataFrame({"bin": bins_train, "y": train["y"].to_numpy()}).groupby("bin")["y"].agg(["sum", "count"])
        bad, good = table["sum"].astype(float), (table["count"] - table["sum"]).astype(float)
        zero = (bad == 0) | (good == 0)
        bad, good = bad + 0.5 * zero, good + 0.5 * zero
        woe = np.log((bad / events) / (good / non_events))
        iv[name] = float(((bad / events - good / non_events) * woe).sum())
        woe_train[name] = woe.reindex(bins_train).to_numpy()
        woe_test[name] = woe.reindex(bins_test).fillna(0.0).to_numpy()
    kept = [name for name in features if iv[name] >= IV_THRESHOLD]
    scaler = StandardScaler().fit(woe_train[kept])
    model = LogisticRegression(C=1.0 / (ALPHA * len(train)), max_iter=1000)
    model.fit(scaler.transform(woe_train[kept]), train["y"])
    probability = model.predict_proba(scaler.transform(woe_test[kept]))[:, 1]
    fpr, tpr, _ = roc_curve(test["y"], probability)
    return {"kept": kept, "iv": iv, "auc": roc_auc_score(test["y"], probability), "ks": float(np.max(tpr - fpr))}


async def test_credit_scorecard_job_matches_the_plaintext_pipeline(members: dict[str, Member]) -> None:
    # Prepare
    frame, member_frames = credit_data()
    for member_id, data, label in ((PROMOTER, member_frames[0], "y"), (PROVIDER, member_frames[1], None)):
        DataStore(str(members[member_id].root / "storage" / "data")).write_table(
            "credit", "german_promoter" if label else "german_provider",
            pa.Table.from_pandas(data, preserve_index=False), "id", label)

    # Execute
    job_id = await members[PROMOTER].client.submit(job_spec())
    final = await members[PROMOTER].client.wait_status(job_id, {SUCCESS}, timeout=900)

    # Assert: the job succeeded, and scores the held-out rows as the plaintext pipeline does.
    assert final.status == SUCCESS, final.message
    promoter = members[PROMOTER]
    train = stored(promoter, job_id, "promoter", "data_split_0.train")
    test = stored(promoter, job_id, "promoter", "data_split_0.test")
    assert len(train) + len(test) == 960
    twin = plaintext_pipeline(frame, sorted(train["id"]), sorted(test["id"]))
    scored = (await metrics(promoter, job_id, "evaluation_1"))["data"]
    print(f"held-out AUC {scored['auc']:.4f} (plaintext {twin['auc']:.4f}), KS {scored['ks']:.4f} "
          f"(plaintext {twin['ks']:.4f})")
    assert abs(scored["auc"] - twin["auc"]) <= 0.01, (scored["auc"], twin["auc"])
    assert abs(scored["ks"] - twin["ks"]) <= 0.01, (scored["ks"], twin["ks"])
    assert twin["auc"] > 0.7
    selection = (await metrics(promoter, job_id, "selection_0"))["selection"]
    assert sorted(selection["kept"]) == sorted(n for n in twin["kept"] if n in member_frames[0].columns)
    scores = stored(promoter, job_id, "promoter", "score_card_1.test")
    assert scores["score"].eq(scores["score"].round()).all() and 400 < scores["score"].median() < 800
    stability = await metrics(promoter, job_id, "stability_1")
    assert stability["psi"]["score"]["reading"] in ("stable", "minor shift", "major shift")
    provider_stability = await metrics(members[PROVIDER], job_id, "stability_0")
    assert "age_in_years" in provider_stability["psi"]
