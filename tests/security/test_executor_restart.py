"""An executor SIGKILLed mid-job: restarted in time, the job succeeds; never restarted, it fails and leaves no process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from protos.weft.v1 import common_pb2
from tests.test_scheduler_federation import wait_task
from tests.test_scheduler_support import (
    ARBITER,
    PROMOTER,
    PROVIDER,
    Member,
    distribution_spec,
    load_rows,
    start_members,
    stop_members,
)

SUCCESS, FAILED = common_pb2.JOB_STATUS_SUCCESS, common_pb2.JOB_STATUS_FAILED


async def _federation(tmp_path: Path, restart_wait_s: float | None) -> dict[str, Member]:
    """Three members; with `restart_wait_s`, tasks wait for messages far longer than that (so
    only the end of a task without its executor can end them early)."""
    urls = {m: f"sqlite+aiosqlite:///{tmp_path / m[:6]}.db" for m in (PROMOTER, PROVIDER, ARBITER)}
    members = await start_members(tmp_path, urls, start=False)
    for member in members.values():
        if restart_wait_s is not None:
            member.config["executor"]["restart_wait_s"] = restart_wait_s
            await member.stop_executor()
            await member.start_executor(WEFT_GET_TIMEOUT_S="900")
        await member.start_scheduler()
    load_rows(members[PROMOTER], "promoter_rows", 200, 1, True)
    load_rows(members[PROVIDER], "provider_rows", 150, 2, False, id_offset=1000)
    return members


def _sigkill(member: Member) -> None:
    process = member.executor_process
    assert process is not None
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    member.executor_process = None


async def _arbiter_task_pid(member: Member, job_id: str) -> int:
    info = await member.client.job(job_id)
    return next(t.pid for t in info.tasks if t.key.party.role == "arbiter" and t.key.component_name == "distribution_0")


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for a parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_an_executor_killed_and_restarted_within_the_wait_keeps_the_job_alive(tmp_path: Path) -> None:
    # Prepare: the promoter's executor is down, so the arbiter's Distribution starts and waits
    # for the promoter's statistics.
    members = await _federation(tmp_path, None)
    try:
        _sigkill(members[PROMOTER])
        job_id = await members[PROMOTER].client.submit(distribution_spec())
        arbiter = members[ARBITER]
        await wait_task(arbiter.client, job_id, "distribution_0", "arbiter", common_pb2.TASK_STATUS_RUNNING, timeout=120)
        pid = await _arbiter_task_pid(arbiter, job_id)

        # Execute: SIGKILL the arbiter's executor mid-task; restart both executors a little later.
        _sigkill(arbiter)
        alive_without_executor = _alive(pid)
        await asyncio.sleep(3)  # the executor stays away for a while, as a crashed pod would
        await arbiter.start_executor()
        await members[PROMOTER].start_executor()
        final = await members[PROMOTER].client.wait_status(job_id, {SUCCESS}, timeout=300)

        # Assert: success everywhere; the arbiter's task kept its one process (re-attached, not rerun).
        assert alive_without_executor
        assert final.status == SUCCESS, final.message
        for member in members.values():
            info = await member.client.wait_status(job_id, {SUCCESS}, timeout=60)
            assert info.status == SUCCESS, info.message
        runs = [t for t in await arbiter.executor_tasks() if t.component_name == "distribution_0"]
        assert [(t.attempt, t.pid, t.status) for t in runs] == [(1, pid, common_pb2.TASK_STATUS_SUCCESS)]
    finally:
        await stop_members(members)


async def test_an_executor_that_never_comes_back_fails_the_job_and_leaves_no_task_process(tmp_path: Path) -> None:
    # Prepare: a short wait; the arbiter's Distribution running (waiting for the promoter).
    members = await _federation(tmp_path, 8.0)
    try:
        _sigkill(members[PROMOTER])
        job_id = await members[PROMOTER].client.submit(distribution_spec())
        arbiter = members[ARBITER]
        await wait_task(arbiter.client, job_id, "distribution_0", "arbiter", common_pb2.TASK_STATUS_RUNNING, timeout=120)
        pid = await _arbiter_task_pid(arbiter, job_id)

        # Execute: SIGKILL the arbiter's executor; nobody restarts it.
        _sigkill(arbiter)
        final = await members[PROMOTER].client.wait_status(job_id, {FAILED}, timeout=180)
        deadline = time.monotonic() + 60
        while _alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # the task ends itself once its executor stayed away too long

        # Assert: failed at every member, the reason names the lost executor; no task process left.
        assert final.status == FAILED
        assert "executor.restart_wait_s" in final.message or "restart_wait_s" in final.message, final.message
        for member in members.values():
            assert (await member.client.wait_status(job_id, {FAILED}, timeout=60)).status == FAILED
        assert not _alive(pid)
    finally:
        await stop_members(members)
