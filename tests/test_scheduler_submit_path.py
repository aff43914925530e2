"""A submitted job's first tasks: claimed as the job is written, sent without the queue, never lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos.weft.v1 import common_pb2, scheduler_pb2
from services.common.db.repository import list_tasks
from services.scheduler import submission
from services.scheduler.scheduler import Scheduler
from tests.test_scheduler_service import _upload_rows, seed_like_spec
from tests.test_scheduler_support import PROMOTER, Member, start_members, stop_members

SUCCESS = common_pb2.JOB_STATUS_SUCCESS
#: The seed-like job's tasks that wait on nothing at its one member: the promoter's DataIO and
#: the arbiter's Distribution (the arbiter has no DataIO to wait for).
FIRST = [("dataio_0", "promoter"), ("distribution_0", "arbiter")]


async def _members(tmp_path: Path, lease_seconds: float) -> dict[str, Member]:
    members = await start_members(tmp_path, {PROMOTER: f"sqlite+aiosqlite:///{tmp_path / 'promoter.db'}"},
                                  start=False)
    members[PROMOTER].config["scheduler"]["lease_seconds"] = lease_seconds
    await members[PROMOTER].start_scheduler()
    return members


@pytest.fixture()
async def member(tmp_path: Path) -> AsyncIterator[Member]:
    members = await _members(tmp_path, lease_seconds=10.0)
    try:
        yield members[PROMOTER]
    finally:
        await stop_members(members)


async def _executor_tasks_of(member: Member, job_id: str, count: int) -> list[tuple[str, str, int]]:
    """(component, role, attempt) of each task of the job the executor was given, once it has `count`
    (the first tasks are sent concurrently, so one may arrive before the other)."""
    while True:
        tasks = sorted((t.component_name, t.role, t.attempt) for t in await member.executor_tasks() if t.job_id == job_id)
        if len(tasks) >= count:
            return tasks
        await asyncio.sleep(0.05)


async def test_a_submitted_jobs_first_tasks_reach_the_executor_with_no_consumer_running(
    member: Member, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _upload_rows(member, tmp_path)
    gate = asyncio.Event()
    advance = Scheduler.advance

    async def gated(self: Scheduler, job_id: str) -> None:
        await gate.wait()
        await advance(self, job_id)

    monkeypatch.setattr(Scheduler, "advance", gated)

    # Execute: submit while no queue consumer can advance a job; then let them.
    job_id = await member.client.submit(seed_like_spec())
    first = await asyncio.wait_for(_executor_tasks_of(member, job_id, len(FIRST)), 30)
    gate.set()
    final = await member.client.wait_status(job_id, {SUCCESS})

    # Assert: the tasks that wait on nothing reached the executor straight from SubmitJob; the
    # queue started the rest, and the job succeeded with one attempt of each task.
    assert first == [(component, role, 1) for component, role in FIRST]
    assert final.status == SUCCESS, final.message
    assert all(t.status == common_pb2.TASK_STATUS_SUCCESS and t.attempt == 1 for t in final.tasks)


async def test_a_scheduler_stopped_between_writing_a_job_and_sending_it_runs_the_job_after_restart(
    member: Member, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: SubmitJob stalls right after the job's transaction committed, before any RunTask.
    await _upload_rows(member, tmp_path)
    stalled = asyncio.Event()

    async def stall(self: Scheduler, *args: Any, **kwargs: Any) -> None:
        stalled.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(Scheduler, "_register_sessions", stall)
    submit = asyncio.create_task(member.client.submit(seed_like_spec()))
    await asyncio.wait_for(stalled.wait(), 30)
    listed = await member.client.stub.ListJobs(scheduler_pb2.ListJobsRequest())
    job_id = listed.jobs[0].job_id
    rows = await list_tasks(member.running.engine, job_id=job_id)
    sent_before = [t for t in await member.executor_tasks() if t.job_id == job_id]

    # Execute: the scheduler goes away there (its handler cancelled, nothing completed or
    # released), then starts again.
    await member.stop_scheduler()
    with pytest.raises(grpc.aio.AioRpcError):
        await submit
    monkeypatch.undo()
    await member.start_scheduler()
    final = await member.client.wait_status(job_id, {SUCCESS})

    # Assert: the first tasks were written claimed and not sent; after the restart the job
    # ran to success, each task once.
    claimed = sorted((r.component, r.role) for r in rows if r.executor == member.executor_endpoint)
    assert claimed == FIRST and sent_before == []
    assert final.status == SUCCESS, final.message
    ran = sorted((t.component_name, t.role, t.attempt, t.status) for t in await member.executor_tasks())
    assert ran == [("dataio_0", "promoter", 1, common_pb2.TASK_STATUS_SUCCESS),
                   ("distribution_0", "arbiter", 1, common_pb2.TASK_STATUS_SUCCESS),
                   ("distribution_0", "promoter", 1, common_pb2.TASK_STATUS_SUCCESS)]


async def test_a_run_job_its_submission_never_finished_is_taken_over_once_its_lease_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: a scheduler whose leases last 1 s; the submission's RunTask calls and the
    # completion of its run_job action are lost, as when the process dies after the commit.
    members = await _members(tmp_path, lease_seconds=1.0)
    member = members[PROMOTER]
    try:
        await _upload_rows(member, tmp_path)
        send = Scheduler._send
        live = False
        lost: list[str] = []

        def send_unless_lost(self: Scheduler, spec: Any, record: Any, executor: str) -> None:
            if not live:
                lost.append(record.component)
                return
            send(self, spec, record, executor)

        async def never_completed(*args: Any, **kwargs: Any) -> bool:
            return False

        monkeypatch.setattr(Scheduler, "_send", send_unless_lost)
        monkeypatch.setattr(submission, "complete_action", never_completed)

        # Execute
        job_id = await member.client.submit(seed_like_spec())
        live = True
        final = await member.client.wait_status(job_id, {SUCCESS})

        # Assert: the first tasks were never sent by the submission; the consumer that claimed
        # the action again found them claimed and unknown to the executor, released and sent
        # them, and the job succeeded with each task run once.
        assert sorted(lost) == ["dataio_0", "distribution_0"]
        assert final.status == SUCCESS, final.message
        ran = sorted((t.component_name, t.role, t.attempt) for t in await member.executor_tasks())
        assert ran == [("dataio_0", "promoter", 1), ("distribution_0", "arbiter", 1), ("distribution_0", "promoter", 1)]
    finally:
        await stop_members(members)
