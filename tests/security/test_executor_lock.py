"""The executor accepts its member's scheduler only: RunTask and friends need the scheduler credential."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from protos.weft.v1 import common_pb2, executor_pb2, executor_pb2_grpc
from services.common import internal_auth
from tests.test_executor_support import ExecutorProcess, distribution_conf, make_data_set, task_spec


@pytest.fixture()
def executor(tmp_path: Path) -> Iterator[ExecutorProcess]:
    process = ExecutorProcess(tmp_path, {"warm_pool": 0, "heartbeat_timeout_s": 10})
    make_data_set(process.storage_root, tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.stop(signal.SIGKILL)
        process.kill_leftover_tasks()


def stub_with(executor: ExecutorProcess, token: str | None) -> executor_pb2_grpc.ExecutorServiceStub:
    channel = grpc.insecure_channel(f"127.0.0.1:{executor.port}")
    if token is not None:
        channel = internal_auth.signed_channel(channel, lambda: token)
    return executor_pb2_grpc.ExecutorServiceStub(channel)


def test_run_task_without_the_scheduler_credential_is_refused_and_starts_nothing(executor: ExecutorProcess) -> None:
    # Prepare: no credential; one signed with another key; a task's credential (not the scheduler's).
    spec = task_spec(distribution_conf())
    key = internal_auth.read_key(executor.key_file)
    attempts = {
        "none": stub_with(executor, None),
        "other key": stub_with(executor, internal_auth.sign(bytes(32), internal_auth.SCHEDULER)),
        "task": stub_with(executor, internal_auth.sign(key, internal_auth.TASK, job=spec.job_id, task=spec.task_id)),
    }

    # Execute
    errors = {}
    for name, stub in attempts.items():
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.RunTask(executor_pb2.RunTaskRequest(spec=spec), timeout=30))
        errors[name] = refused.value
    with pytest.raises(grpc.RpcError) as stop:
        attempts["none"].StopTask(executor_pb2.StopTaskRequest(task_id=spec.task_id), timeout=30)
    with pytest.raises(grpc.RpcError) as listing:
        attempts["none"].ListTasks(executor_pb2.ListTasksRequest(), timeout=30)

    # Assert: the codes and messages; the executor knows no task and started no process.
    assert errors["none"].code() == grpc.StatusCode.UNAUTHENTICATED
    assert errors["none"].details() == ("executor RunTask needs the member-internal credential of the scheduler; "
                                        "none was sent")
    assert errors["other key"].code() == grpc.StatusCode.UNAUTHENTICATED
    assert errors["other key"].details() == "executor RunTask: the internal credential is not signed with this member's key"
    assert errors["task"].code() == grpc.StatusCode.PERMISSION_DENIED
    assert "is for the scheduler only" in errors["task"].details()
    assert stop.value.code() == listing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    listed = executor.stub.ListTasks(executor_pb2.ListTasksRequest())
    assert list(listed.tasks) == [] and listed.running_count == 0
    assert not list(executor.state_dir.glob("tasks/*/a*/record.json"))


def test_the_scheduler_credential_runs_the_task(
    executor: ExecutorProcess,
) -> None:
    # Prepare
    spec = task_spec(distribution_conf())

    # Execute: the signed stub is what the scheduler uses.
    events = list(executor.stub.RunTask(executor_pb2.RunTaskRequest(spec=spec), timeout=300))

    # Assert: the task ran; its saved record (spec, command) holds no credential.
    assert events[-1].finished.status == common_pb2.TASK_STATUS_SUCCESS, events[-1]
    record = next(executor.state_dir.glob("tasks/*/a*/record.json")).read_text()
    assert internal_auth.TASK_CREDENTIAL_ENV not in record
