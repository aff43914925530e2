"""Why a job waits: a task's blocking get, named through GetJob and `weft job`, and its timeout's error."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from protos.weft.v1 import common_pb2, scheduler_pb2
from tests.test_scheduler_federation import MEMBERS, wait_task
from tests.test_scheduler_support import (
    ARBITER,
    PROMOTER,
    PROVIDER,
    REPO,
    Client,
    Member,
    distribution_spec,
    load_rows,
    start_members,
    stop_members,
)

FAILED = common_pb2.JOB_STATUS_FAILED
# The variable the arbiter's Distribution waits for first from each party.
VARIABLE = "DistributionTransferVariable."
# What the issue asks: the diagnosis shows within this many seconds of the task running.
DIAGNOSIS_WITHIN_S = 10.0


async def _members(tmp_path: Path, get_timeout_s: float) -> dict[str, Member]:
    urls = {m: f"sqlite+aiosqlite:///{tmp_path / m[:6]}.db" for m in MEMBERS}
    members = await start_members(tmp_path, urls, get_timeout_s=get_timeout_s)
    load_rows(members[PROMOTER], "promoter_rows", 300, 1, True)
    load_rows(members[PROVIDER], "provider_rows", 200, 2, False, id_offset=1000)
    return members


@pytest.fixture()
async def federation(tmp_path: Path) -> AsyncIterator[dict[str, Member]]:
    members = await _members(tmp_path, get_timeout_s=600)
    try:
        yield members
    finally:
        await stop_members(members)


def _arbiter_task(info: scheduler_pb2.JobInfo) -> scheduler_pb2.JobTask:
    return next(t for t in info.tasks if t.key.component_name == "distribution_0" and t.key.party.role == "arbiter")


async def _diagnosis(client: Client, job_id: str, member_id: str) -> str:
    """The arbiter task's waiting sentence once it names `member_id` (checked at each event of the job).

    The arbiter first waits a moment on the promoter, whose message does come."""
    request = scheduler_pb2.WatchJobRequest(job_id=job_id)
    while True:
        async for event in client.stub.WatchJob(request):
            if event.WhichOneof("event") in ("snapshot", "task_progress", "task_status"):
                waiting = _arbiter_task(await client.job(job_id)).waiting
                if waiting.startswith(f"waiting on member {member_id} "):
                    return waiting
        await asyncio.sleep(0.2)  # the stream closed (job ended?): look once more


async def test_a_waiting_task_names_the_member_role_and_variable(federation: dict[str, Member]) -> None:
    # Prepare: the provider takes no part in Distribution, so the arbiter waits on it forever.
    spec = distribution_spec(distribution_roles=["promoter", "arbiter"])
    job_id = await federation[PROMOTER].client.submit(spec)
    arbiter = federation[ARBITER]
    await wait_task(arbiter.client, job_id, "distribution_0", "arbiter", common_pb2.TASK_STATUS_RUNNING)

    # Execute: read the job at the arbiter's scheduler until its task says why it waits.
    waiting = await asyncio.wait_for(_diagnosis(arbiter.client, job_id, PROVIDER), DIAGNOSIS_WITHIN_S)

    # Assert: the sentence names the provider, its role, the variable, a tag and the state of its task.
    assert waiting.startswith(f"waiting on member {PROVIDER} (provider) for `{VARIABLE}"), waiting
    assert " tag fit" in waiting and " since " in waiting
    assert waiting.endswith("its task was never created"), waiting

    # `weft job` prints it under the task table.
    token = (arbiter.root / "admin.token").read_text(encoding="utf-8").strip()
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.client.cli", "--scheduler", arbiter.endpoint, "--token", token,
         "job", job_id], cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"distribution_0 (arbiter {ARBITER[:8]}): waiting on member {PROVIDER} (provider)" in result.stdout


async def test_a_get_past_its_limit_fails_the_job_with_the_sentence(tmp_path: Path) -> None:
    # Prepare: the same wait, with a short get limit at every member (long enough for the
    # promoter's first message to come, so the first get that times out is the provider's).
    members = await _members(tmp_path, get_timeout_s=30)
    try:
        job_id = await members[PROMOTER].client.submit(distribution_spec(distribution_roles=["promoter", "arbiter"]))

        # Execute: wait for the job to fail.
        infos = [await member.client.wait_status(job_id, {FAILED}, timeout=120) for member in members.values()]

        # Assert: every member's job message carries the sentence; the arbiter's task error too.
        for info in infos:
            assert info.status == FAILED
            assert f"waiting on member {PROVIDER} (provider) for `{VARIABLE}" in info.message, info.message
        error = _arbiter_task(await members[ARBITER].client.job(job_id)).error
        assert f"waiting on member {PROVIDER} (provider) for `{VARIABLE}" in error, error
        assert "its task is never created" not in error and error.endswith("its task was never created"), error
    finally:
        await stop_members(members)
