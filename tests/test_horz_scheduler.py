"""Horizontal jobs through the schedulers and executors: the seed's Distribution shape, HorzLR + Evaluation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from kernel.storage import DataStore
from protos.weft.v1 import common_pb2, scheduler_pb2
from tests.test_horz_kit import breast_rows
from tests.test_scheduler_support import (
    ARBITER,
    PROMOTER,
    PROVIDER,
    Member,
    start_members,
    stop_members,
)

SUCCESS = common_pb2.JOB_STATUS_SUCCESS


def store_rows(member: Member, name: str, frame: Any) -> None:
    DataStore(str(member.root / "storage" / "data")).write_table(
        "test", name, pa.Table.from_pandas(frame, preserve_index=False), "id", "y")


async def metrics_of(member: Member, job_id: str, component: str, role: str) -> dict[str, Any]:
    reply = await member.client.stub.GetMetrics(scheduler_pb2.GetMetricsRequest(job_id=job_id))
    return {m.name: json.loads(m.points_json) for task in reply.tasks
            if task.task.component_name == component and task.task.party.role == role for m in task.metrics}


@pytest.fixture()
async def lone_member(tmp_path: Path) -> AsyncIterator[Member]:
    members = await start_members(tmp_path, {PROMOTER: f"sqlite+aiosqlite:///{tmp_path / 'promoter.db'}"})
    try:
        yield members[PROMOTER]
    finally:
        await stop_members(members)


@pytest.fixture()
async def three_members(tmp_path: Path) -> AsyncIterator[dict[str, Member]]:
    urls = {m: f"sqlite+aiosqlite:///{tmp_path / m[:6]}.db" for m in (PROMOTER, PROVIDER, ARBITER)}
    members = await start_members(tmp_path, urls)
    try:
        yield members
    finally:
        await stop_members(members)


async def test_the_seed_distribution_shape_runs_through_the_scheduler(lone_member: Member) -> None:
    # Prepare: one member is promoter and arbiter (the seed's conf); Distribution with default params.
    frame = breast_rows([1]).members[0]
    store_rows(lone_member, "train_data", frame)
    spec = {
        "name": "seed-distribution",
        "initiator": {"member_id": PROMOTER, "role": "promoter"},
        "role": {"promoter": [PROMOTER], "provider": [], "arbiter": [PROMOTER]},
        "job_parameters": {"backend": "LOCAL", "work_mode": "STANDALONE"},
        "job_args": {PROMOTER: {"data": {"train_data": {"namespace": "test", "name": "train_data"}}}},
        "components": {"distribution_0": {"module": "Distribution", "input": {"data": {"data": ["args.train_data"]}},
                                          "output": {"data": ["data_name"], "model": ["model_name"]}, "params": {}}},
    }

    # Execute
    job_id = await lone_member.client.submit(spec)
    final = await lone_member.client.wait_status(job_id, {SUCCESS}, timeout=180)

    # Assert: the arbiter described the rows; with one data member nothing could be masked, and it says so.
    assert final.status == SUCCESS, final.message
    metrics = await metrics_of(lone_member, job_id, "distribution_0", "arbiter")
    assert metrics["secure_aggregation"] == {"masked": False, "members": 1}
    assert metrics["global"]["x0"]["count"] == len(frame)
    assert metrics["global"]["x0"]["mean"] == pytest.approx(frame["x0"].mean(), rel=1e-9)


async def test_horz_lr_and_evaluation_run_through_three_schedulers(three_members: dict[str, Member]) -> None:
    # Prepare: breast cancer rows split between the promoter and the provider; a third member arbitrates.
    rows = breast_rows([1, 1])
    for member, train, test in zip((three_members[PROMOTER], three_members[PROVIDER]), rows.members, rows.test,
                                   strict=True):
        store_rows(member, "train", train)
        store_rows(member, "test", test)
    args = {m: {"data": {"train": {"namespace": "test", "name": "train"}, "test": {"namespace": "test", "name": "test"}}}
            for m in (PROMOTER, PROVIDER)}
    spec = {
        "name": "horz-lr",
        "initiator": {"member_id": PROMOTER, "role": "promoter"},
        "role": {"promoter": [PROMOTER], "provider": [PROVIDER], "arbiter": [ARBITER]},
        "job_parameters": {"backend": "LOCAL", "work_mode": "STANDALONE"},
        "job_args": args,
        "components": {
            "horz_lr_0": {"module": "HorzLR", "input": {"data": {"train_data": ["args.train"],
                                                                  "validate_data": ["args.test"]}},
                          "output": {"data": ["train"], "model": ["model"]},
                          "params": {"max_iter": 25, "alpha": 0.01}},
            "evaluation_0": {"module": "Evaluation", "roles": ["promoter", "provider"],
                             "input": {"data": {"data": ["horz_lr_0.train"]}}},
        },
    }

    # Execute
    job_id = await three_members[PROMOTER].client.submit(spec)
    final = await three_members[PROMOTER].client.wait_status(job_id, {SUCCESS}, timeout=240)

    # Assert: success everywhere; each member evaluated its own rows; the arbiter saw masked sums only.
    assert final.status == SUCCESS, final.message
    for member_id in (PROMOTER, PROVIDER):
        role = "promoter" if member_id == PROMOTER else "provider"
        evaluation = await metrics_of(three_members[member_id], job_id, "evaluation_0", role)
        assert evaluation["validate"]["auc"] > 0.97
    arbiter = await metrics_of(three_members[ARBITER], job_id, "horz_lr_0", "arbiter")
    assert arbiter["secure_aggregation"] == {"masked": True, "members": 2}
    losses = np.array([point[1] for point in arbiter["loss"]])
    assert len(losses) == 25 and losses[-1] < losses[0]
