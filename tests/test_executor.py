"""ExecutorService with LOCAL task processes: runs, warm pool, queue, stop, heartbeats, restart, bad input."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos.weft.v1 import common_pb2, executor_pb2
from tests.test_executor_support import (
    ExecutorProcess,
    descendants,
    distribution_conf,
    make_data_set,
    run_task,
    run_watch,
    task_spec,
    wait_gone,
)

StartExecutor = Callable[..., ExecutorProcess]


@pytest.fixture()
def start_executor(tmp_path: Path) -> Iterator[StartExecutor]:
    """Starts executors on one member directory (with a data set); all are stopped afterwards."""
    started: list[ExecutorProcess] = []
    made = False

    def start(**executor: Any) -> ExecutorProcess:
        nonlocal made
        process = ExecutorProcess(tmp_path, {"warm_pool": 0, "heartbeat_timeout_s": 10, **executor})
        if not made:
            make_data_set(process.storage_root, tmp_path)
            made = True
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop(signal.SIGKILL)
        process.kill_leftover_tasks()


def test_distribution_runs_as_a_local_process(start_executor: StartExecutor) -> None:
    # Prepare
    executor = start_executor()
    spec = task_spec(distribution_conf())

    # Execute
    stream = run_task(executor, spec, stream_logs=True)
    finished = stream.finish()
    again = run_task(executor, spec)  # same (task_id, attempt): attaches, does not run twice
    again_finished = again.finish()

    # Assert: the events, in order, and what the task wrote.
    assert finished.status == common_pb2.TASK_STATUS_SUCCESS, finished.error
    assert finished.exit_code == 0
    kinds = stream.kinds()
    assert kinds[0] == "accepted" and kinds[-1] == "finished"
    assert kinds.index("started") < kinds.index("finished")
    started = stream.of_kind("started")[0].started
    assert started.pid > 0 and not started.warm and started.spark_app_id == ""
    assert [event.progress.percent for event in stream.of_kind("progress")][-1] == 100.0
    summary = json.loads(stream.of_kind("metric")[-1].metric.json)
    assert set(summary) == {"x0", "x1", "x2"} and summary["x2"]["count"] == 300
    assert any("succeeded" in event.log.line for event in stream.of_kind("log"))
    assert again.kinds()[0] == "accepted" and again_finished.status == common_pb2.TASK_STATUS_SUCCESS
    assert again.of_kind("started")[0].started.pid == started.pid
    info = executor.stub.GetTask(executor_pb2.GetTaskRequest(task_id=spec.task_id))
    assert info.status == common_pb2.TASK_STATUS_SUCCESS and info.pid == started.pid
    assert info.backend == common_pb2.BACKEND_LOCAL and info.progress == 100.0
    assert info.started_at_ms >= info.accepted_at_ms > 0 and info.ended_at_ms >= info.started_at_ms
    assert "succeeded" in Path(info.log_path).read_text()
    listed = executor.stub.ListTasks(executor_pb2.ListTasksRequest(job_id=spec.job_id))
    assert [task.task_id for task in listed.tasks] == [spec.task_id]
    assert listed.running_count == 0 and listed.queued_count == 0 and listed.slots_total == 2


def test_warm_worker_takes_the_task_and_is_replaced(start_executor: StartExecutor) -> None:
    # Prepare: one warm worker, ready.
    executor = start_executor(warm_pool=1)
    executor.wait_warm(1)

    # Execute
    stream = run_task(executor, task_spec(distribution_conf()), stream_logs=True)
    finished = stream.finish()

    # Assert: the worker ran it, then exited; a fresh worker is warming in its place.
    assert finished.status == common_pb2.TASK_STATUS_SUCCESS, finished.error
    started = stream.of_kind("started")[0].started
    assert started.warm
    assert not wait_gone({started.pid}, timeout=10)
    executor.wait_warm(1)
    second = run_task(executor, task_spec(distribution_conf()))
    assert second.finish().status == common_pb2.TASK_STATUS_SUCCESS
    assert second.of_kind("started")[0].started.pid != started.pid


def test_stop_kills_every_process_of_a_long_task(start_executor: StartExecutor) -> None:
    # Prepare: a promoter waiting for an arbiter that never comes.
    executor = start_executor()
    spec = task_spec(distribution_conf(with_arbiter=True))
    stream = run_task(executor, spec)
    pid = stream.wait_for("started").started.pid
    processes = descendants(pid)
    assert pid in processes

    # Execute
    reply = executor.stub.StopTask(executor_pb2.StopTaskRequest(task_id=spec.task_id, reason="user asked"))

    # Assert
    assert reply.status == common_pb2.TASK_STATUS_STOPPED
    finished = stream.finish()
    assert finished.status == common_pb2.TASK_STATUS_STOPPED and finished.error == "user asked"
    assert not wait_gone(processes)
    again = executor.stub.StopTask(executor_pb2.StopTaskRequest(task_id=spec.task_id))
    assert again.status == common_pb2.TASK_STATUS_STOPPED


def test_sigkill_of_the_task_process_fails_the_task(start_executor: StartExecutor) -> None:
    # Prepare
    executor = start_executor(heartbeat_timeout_s=3)
    stream = run_task(executor, task_spec(distribution_conf(with_arbiter=True)))
    pid = stream.wait_for("started").started.pid

    # Execute
    os.kill(pid, signal.SIGKILL)

    # Assert
    finished = stream.finish(timeout=30)
    assert finished.status == common_pb2.TASK_STATUS_FAILED
    assert finished.exit_code == -signal.SIGKILL and "SIGKILL" in finished.error


def test_a_hung_task_fails_after_the_heartbeat_timeout(start_executor: StartExecutor) -> None:
    # Prepare
    executor = start_executor(heartbeat_timeout_s=2)
    stream = run_task(executor, task_spec(distribution_conf(with_arbiter=True)))
    pid = stream.wait_for("started").started.pid
    stream.wait_for("heartbeat")

    # Execute: the process stops answering (but does not exit).
    os.kill(pid, signal.SIGSTOP)

    # Assert: failed for the missing heartbeats, and its process group is gone.
    finished = stream.finish(timeout=60)
    assert finished.status == common_pb2.TASK_STATUS_FAILED
    assert finished.error == "no heartbeat for 2 s"
    assert not wait_gone({pid})


def test_restarted_executor_reattaches_running_tasks_and_fails_vanished_ones(
    start_executor: StartExecutor,
) -> None:
    # Prepare: two long tasks (promoters waiting for their arbiters) under a first executor.
    first = start_executor()
    waiting = task_spec(distribution_conf(with_arbiter=True))
    doomed = task_spec(distribution_conf(with_arbiter=True))
    waiting_pid = run_task(first, waiting).wait_for("started").started.pid
    doomed_pid = run_task(first, doomed).wait_for("started").started.pid

    # Execute: the executor crashes; one task dies while it is down; a new executor starts.
    first.stop(signal.SIGKILL)
    os.kill(doomed_pid, signal.SIGKILL)
    assert not wait_gone({doomed_pid})
    second = start_executor()

    # Assert: the live task is re-attached, the vanished one reported failed.
    watch = run_watch(second, waiting.task_id)
    snapshot = watch.wait_for("snapshot").snapshot
    assert snapshot.status == common_pb2.TASK_STATUS_RUNNING and snapshot.pid == waiting_pid
    watch.wait_for("heartbeat", timeout=30)  # the task found the new executor's socket
    gone = second.stub.GetTask(executor_pb2.GetTaskRequest(task_id=doomed.task_id))
    assert gone.status == common_pb2.TASK_STATUS_FAILED and "executor was down" in gone.error

    # Execute: the arbiter comes; the re-attached promoter can finish.
    arbiter = task_spec(distribution_conf(role="arbiter", with_arbiter=True), job_id=waiting.job_id,
                        role="arbiter", session=waiting.federation_session_id)
    assert run_task(second, arbiter).finish().status == common_pb2.TASK_STATUS_SUCCESS

    # Assert: its end is seen although it is no child of this executor.
    finished = watch.finish()
    assert finished.status == common_pb2.TASK_STATUS_SUCCESS, finished.error
    info = second.stub.GetTask(executor_pb2.GetTaskRequest(task_id=waiting.task_id))
    assert info.status == common_pb2.TASK_STATUS_SUCCESS and info.progress == 100.0


def test_queue_runs_higher_priority_first_when_slots_are_full(start_executor: StartExecutor) -> None:
    # Prepare: one slot, taken by a long task.
    executor = start_executor(slots=1)
    blocker = task_spec(distribution_conf(with_arbiter=True))
    blocking = run_task(executor, blocker)
    blocking.wait_for("started")

    # Execute: two tasks queue up; the later one has the higher priority.
    low = run_task(executor, task_spec(distribution_conf(), priority=0))
    assert low.wait_for("accepted").accepted.queue_position == 0
    high = run_task(executor, task_spec(distribution_conf(), priority=5))
    assert high.wait_for("accepted").accepted.queue_position == 0
    listed = executor.stub.ListTasks(executor_pb2.ListTasksRequest(
        statuses=[common_pb2.TASK_STATUS_WAITING]))
    assert listed.queued_count == 2 and listed.running_count == 1 and len(listed.tasks) == 2
    executor.stub.StopTask(executor_pb2.StopTaskRequest(task_id=blocker.task_id))

    # Assert: the high-priority task started first; both succeeded, one at a time.
    high_done, low_done = high.finish(), low.finish()
    assert high_done.status == low_done.status == common_pb2.TASK_STATUS_SUCCESS
    high_started = high.of_kind("started")[0].timestamp_ms
    low_started = low.of_kind("started")[0].timestamp_ms
    high_ended = high.of_kind("finished")[0].timestamp_ms
    assert high_started <= high_ended <= low_started


def test_stopping_a_queued_task_drops_it(start_executor: StartExecutor) -> None:
    # Prepare
    executor = start_executor(slots=1)
    blocker = task_spec(distribution_conf(with_arbiter=True))
    run_task(executor, blocker).wait_for("started")
    queued_spec = task_spec(distribution_conf())
    queued = run_task(executor, queued_spec)
    queued.wait_for("accepted")

    # Execute
    reply = executor.stub.StopTask(executor_pb2.StopTaskRequest(task_id=queued_spec.task_id))

    # Assert
    assert reply.status == common_pb2.TASK_STATUS_STOPPED
    finished = queued.finish()
    assert finished.status == common_pb2.TASK_STATUS_STOPPED and "started" not in queued.kinds()


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        (distribution_conf(module="NoSuchThing"), "unknown module 'NoSuchThing'"),
        (distribution_conf(data_name="absent"), "data set args.train_data (wefe_data/absent) not found"),
        ({**distribution_conf(), "DistributionParam": {"bins": 0}}, "DistributionParam.bins"),
    ],
)
def test_bad_input_fails_fast_with_the_reason(
    start_executor: StartExecutor, conf: dict[str, Any], expected: str,
) -> None:
    # Prepare
    executor = start_executor()

    # Execute
    stream = run_task(executor, task_spec(conf))
    finished = stream.finish(timeout=30)

    # Assert: failed before any process started.
    assert finished.status == common_pb2.TASK_STATUS_FAILED
    assert expected in finished.error and finished.exit_code == 0
    assert stream.kinds() == ["accepted", "finished"]


def test_malformed_requests_are_refused_with_a_status(start_executor: StartExecutor) -> None:
    # Prepare
    executor = start_executor()
    no_session = task_spec(distribution_conf())
    no_session.federation_session_id = ""
    not_json = task_spec(distribution_conf())
    not_json.runtime_conf_json = "{not json"

    # Execute / Assert
    for spec, field in ((no_session, "spec.federation_session_id"), (not_json, "spec.runtime_conf_json")):
        with pytest.raises(grpc.RpcError) as refused:
            list(executor.stub.RunTask(executor_pb2.RunTaskRequest(spec=spec)))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in str(refused.value.details())
    for call in (lambda: executor.stub.GetTask(executor_pb2.GetTaskRequest(task_id="nope")),
                 lambda: executor.stub.StopTask(executor_pb2.StopTaskRequest(task_id="nope")),
                 lambda: list(executor.stub.WatchTask(executor_pb2.WatchTaskRequest(task_id="nope")))):
        with pytest.raises(grpc.RpcError) as missing:
            call()
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_new_attempt_waits_for_the_old_one_to_end(start_executor: StartExecutor) -> None:
    # Prepare
    executor = start_executor()
    first = task_spec(distribution_conf(with_arbiter=True))
    run_task(executor, first).wait_for("started")
    second = executor_pb2.TaskSpec()
    second.CopyFrom(first)
    second.attempt = 2

    # Execute / Assert: refused while attempt 1 runs, accepted once it is stopped.
    with pytest.raises(grpc.RpcError) as refused:
        list(executor.stub.RunTask(executor_pb2.RunTaskRequest(spec=second)))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    executor.stub.StopTask(executor_pb2.StopTaskRequest(task_id=first.task_id))
    retry = run_task(executor, second)
    assert retry.wait_for("started").attempt == 2
    executor.stub.StopTask(executor_pb2.StopTaskRequest(task_id=first.task_id))
    assert retry.finish().status == common_pb2.TASK_STATUS_STOPPED


def test_a_second_executor_on_the_same_data_dir_refuses_to_start(start_executor: StartExecutor) -> None:
    # Prepare
    start_executor()

    # Execute / Assert
    with pytest.raises(RuntimeError, match="another executor already uses"):
        start_executor()
