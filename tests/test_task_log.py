"""A task's log tail: ExecutorService.TailTaskLog at the executor, SchedulerService.GetTaskLog through the scheduler."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from protos.weft.v1 import common_pb2, executor_pb2, executor_pb2_grpc, scheduler_pb2
from services.common import internal_auth
from services.executor.logs import read_chunk
from tests.test_executor_support import (
    ExecutorProcess,
    distribution_conf,
    make_data_set,
    run_task,
    task_spec,
)
from tests.test_scheduler_service import _upload_rows, seed_like_spec
from tests.test_scheduler_support import PROMOTER, Member, start_members, stop_members

#: Smaller than the task's one log line: the tail must come in several chunks.
CHUNK = 100


@pytest.fixture()
def executor(tmp_path: Path) -> Iterator[ExecutorProcess]:
    # Ended tasks are forgotten at the next RunTask: their logs must still be read from disk.
    process = ExecutorProcess(tmp_path, {"warm_pool": 0, "heartbeat_timeout_s": 10, "ended_task_retention_s": 0.001})
    make_data_set(process.storage_root, tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.stop(signal.SIGKILL)
        process.kill_leftover_tasks()


def _tail(stub: executor_pb2_grpc.ExecutorServiceStub, spec: executor_pb2.TaskSpec
          ) -> list[executor_pb2.TailTaskLogResponse]:
    """Every chunk of the task's standard error, following next_offset until the log is complete."""
    chunks, offset = [], 0
    while True:
        chunk = stub.TailTaskLog(executor_pb2.TailTaskLogRequest(
            job_id=spec.job_id, task_id=spec.task_id, offset=offset, max_bytes=CHUNK), timeout=30)
        chunks.append(chunk)
        if chunk.complete:
            return chunks
        assert chunk.next_offset > offset, "a finished task's log stopped moving before it was complete"
        offset = chunk.next_offset


def test_tail_returns_what_the_task_wrote_in_whole_lines(executor: ExecutorProcess) -> None:
    # Prepare: a real task, run to its end.
    spec = task_spec(distribution_conf())
    finished = run_task(executor, spec).finish()
    assert finished.status == common_pb2.TASK_STATUS_SUCCESS, finished.error
    written = Path(executor.stub.GetTask(executor_pb2.GetTaskRequest(task_id=spec.task_id)).log_path).read_text()

    # Execute
    chunks = _tail(executor.stub, spec)
    past_end = executor.stub.TailTaskLog(executor_pb2.TailTaskLogRequest(
        job_id=spec.job_id, task_id=spec.task_id, offset=len(written.encode()) + 10), timeout=30)

    # Assert: the chunks join up to the file, each within the bound.
    assert "".join(c.text for c in chunks) == written and "succeeded" in written
    assert len(chunks) > 1 and all(len(c.text.encode()) <= CHUNK for c in chunks)
    assert chunks[-1].status == common_pb2.TASK_STATUS_SUCCESS and chunks[-1].attempt == 1
    assert past_end.restarted and written.startswith(past_end.text) and past_end.text


def test_a_chunk_ends_after_a_whole_line_until_the_writer_is_gone(tmp_path: Path) -> None:
    # Prepare: two whole lines and one being written.
    path = tmp_path / "stderr.log"
    path.write_bytes(b"first\nsecond\nthird, still bei")

    # Execute
    running = read_chunk(path, 0, 1000, whole=False)
    waiting = read_chunk(path, running.next_offset, 1000, whole=False)
    ended = read_chunk(path, running.next_offset, 1000, whole=True)
    long_line = read_chunk(path, running.next_offset, 5, whole=False)

    # Assert
    assert (running.data, running.next_offset) == (b"first\nsecond\n", 13)
    assert (waiting.data, waiting.next_offset) == (b"", 13)
    assert (ended.data, ended.next_offset, ended.size) == (b"third, still bei", 29, 29)
    assert long_line.data == b"third" and not long_line.restarted


def test_a_forgotten_task_is_read_from_disk_and_other_jobs_or_paths_find_nothing(executor: ExecutorProcess) -> None:
    # Prepare: the first task ends; the second RunTask makes the executor forget it.
    first = task_spec(distribution_conf())
    assert run_task(executor, first).finish().status == common_pb2.TASK_STATUS_SUCCESS
    second = task_spec(distribution_conf())
    assert run_task(executor, second).finish().status == common_pb2.TASK_STATUS_SUCCESS
    listed = executor.stub.ListTasks(executor_pb2.ListTasksRequest(job_id=first.job_id))
    assert list(listed.tasks) == []

    # Execute
    chunks = _tail(executor.stub, first)
    refused = {}
    for name, job_id, task_id in (("other job", second.job_id, first.task_id),
                                  ("a path", first.job_id, f"../../tasks/{first.task_id}"),
                                  ("unknown", first.job_id, "nothing_here")):
        with pytest.raises(grpc.RpcError) as caught:
            executor.stub.TailTaskLog(executor_pb2.TailTaskLogRequest(job_id=job_id, task_id=task_id), timeout=30)
        refused[name] = caught.value.code()

    # Assert
    assert "succeeded" in "".join(c.text for c in chunks)
    assert refused == {name: grpc.StatusCode.NOT_FOUND for name in refused}


def test_tail_without_the_scheduler_credential_is_refused(executor: ExecutorProcess) -> None:
    # Prepare: a task that ran; callers without a credential, and with a task's credential.
    spec = task_spec(distribution_conf())
    assert run_task(executor, spec).finish().status == common_pb2.TASK_STATUS_SUCCESS
    key = internal_auth.read_key(executor.key_file)
    task_token = internal_auth.sign(key, internal_auth.TASK, job=spec.job_id, task=spec.task_id)
    plain = grpc.insecure_channel(f"127.0.0.1:{executor.port}")
    signed = internal_auth.signed_channel(grpc.insecure_channel(f"127.0.0.1:{executor.port}"), lambda: task_token)
    request = executor_pb2.TailTaskLogRequest(job_id=spec.job_id, task_id=spec.task_id)

    # Execute
    codes = []
    for channel in (plain, signed):
        with pytest.raises(grpc.RpcError) as refused:
            executor_pb2_grpc.ExecutorServiceStub(channel).TailTaskLog(request, timeout=30)
        codes.append(refused.value.code())
        channel.close()

    # Assert
    assert codes == [grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED]


@pytest.fixture()
async def member(tmp_path: Path) -> AsyncIterator[Member]:
    members = await start_members(tmp_path, {PROMOTER: f"sqlite+aiosqlite:///{tmp_path / 'promoter.db'}"})
    try:
        yield members[PROMOTER]
    finally:
        await stop_members(members)


async def test_get_task_log_reads_this_members_task_through_its_executor(member: Member, tmp_path: Path) -> None:
    # Prepare: a job run to its end (this member is promoter and arbiter of distribution_0).
    await _upload_rows(member, tmp_path)
    job_id = await member.client.submit(seed_like_spec())
    _ = [e async for e in member.client.stub.WatchJob(scheduler_pb2.WatchJobRequest(job_id=job_id))]

    # Execute: follow the promoter's log by offset; ask without a role, and for an unknown component.
    text, offset = "", 0
    while True:
        chunk = await member.client.stub.GetTaskLog(scheduler_pb2.GetTaskLogRequest(
            job_id=job_id, component_name="distribution_0", role="promoter", offset=offset, max_bytes=CHUNK))
        text += chunk.text
        if chunk.complete:
            break
        assert chunk.next_offset > offset
        offset = chunk.next_offset
    errors = {}
    for name, component, role in (("no role", "distribution_0", ""), ("unknown", "nothing_0", "promoter")):
        with pytest.raises(grpc.RpcError) as refused:
            await member.client.stub.GetTaskLog(scheduler_pb2.GetTaskLogRequest(
                job_id=job_id, component_name=component, role=role))
        errors[name] = refused.value.code()

    # Assert: what the executor holds for that task, and the refusals.
    task = next(t for t in await member.executor_tasks() if t.component_name == "distribution_0" and t.role == "promoter")
    assert text == Path(task.log_path).read_text() and "succeeded" in text
    assert chunk.task.party.role == "promoter" and chunk.status == common_pb2.TASK_STATUS_SUCCESS
    assert errors == {"no role": grpc.StatusCode.INVALID_ARGUMENT, "unknown": grpc.StatusCode.NOT_FOUND}
