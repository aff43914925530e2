"""Queueing: RunTask accepts a task (or attaches to the same attempt), WatchTask follows one."""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import time
from typing import Any

from kernel.errors import FailedPrecondition, WeftError
from protos.weft.v1 import common_pb2, executor_pb2
from services.executor.constants import TASKS_DIR
from services.executor.launch import Launch
from services.executor.launchers import SparkSettings
from services.executor.preflight import check_spec, check_task
from services.executor.state import task_dir_name
from services.executor.task import TaskRun


class Queueing(Launch):
    """RunTask and WatchTask: accept a task into the queue, or attach a caller to one."""

    async def submit(self, spec: executor_pb2.TaskSpec, stream_logs: bool) -> tuple[TaskRun, Any]:
        """Accept a task (or attach to the same attempt); returns the run and a subscription."""
        if self._closed:
            raise FailedPrecondition("the executor is shutting down")
        raw_conf = check_spec(spec)
        if spec.HasField("spark"):  # a job's Spark options: only keys a job may set (before any process)
            SparkSettings.resolve(spec.spark, self.settings.spark)
        self._forget_old_runs()
        spec = executor_pb2.TaskSpec.FromString(spec.SerializeToString())
        spec.attempt = spec.attempt or 1
        attempts = self.runs.setdefault(spec.task_id, {})
        existing = attempts.get(spec.attempt)
        if existing is not None:
            return existing, self._attach(existing, stream_logs)
        for other in attempts.values():
            if not other.ended:
                raise FailedPrecondition(
                    f"task {spec.task_id}: attempt {other.attempt} has not ended; stop it before "
                    f"starting attempt {spec.attempt}")
        run = self._new_run(spec)
        attempts[spec.attempt] = run
        run.conf_path.write_text(spec.runtime_conf_json, encoding="utf-8")
        subscriber = run.subscribe(stream_logs)
        try:
            await asyncio.to_thread(check_task, spec, raw_conf, self.storage_root)
        except WeftError as exc:
            run.publish(run.event(accepted=executor_pb2.TaskAccepted(queue_position=0)))
            self._finish(run, common_pb2.TASK_STATUS_FAILED, str(exc), 0)
            return run, subscriber
        heapq.heappush(self._queue, (-spec.priority, run.sequence, run))
        position = self.queue_position(run)
        run.save()
        run.publish(run.event(accepted=executor_pb2.TaskAccepted(queue_position=position)))
        self._dispatch()
        return run, subscriber

    def _forget_old_runs(self) -> None:
        """Ended tasks stay listed for the retention period; their files stay on disk."""
        horizon = (time.time() - self.settings.ended_task_retention_s) * 1000
        for task_id in list(self.runs):
            attempts = self.runs[task_id]
            if all(run.ended and run.ended_at_ms < horizon for run in attempts.values()):
                del self.runs[task_id]

    def _new_run(self, spec: executor_pb2.TaskSpec) -> TaskRun:
        self._sequence += 1
        directory = self.state_dir / TASKS_DIR / task_dir_name(spec.task_id) / f"a{spec.attempt}"
        directory.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(f"{self.state_dir}|{spec.task_id}|{spec.attempt}".encode()).hexdigest()[:20]
        backend = spec.backend
        if backend == common_pb2.BACKEND_UNSPECIFIED:
            backend = common_pb2.BACKEND_SPARK if self.settings.mode == "spark" else common_pb2.BACKEND_LOCAL
        task_dir = (self.storage_root / "tasks" / spec.job_id / spec.component_name / spec.role
                    / spec.member_id)
        return TaskRun(spec=spec, directory=directory, task_dir=task_dir,
                       socket_path=str(self.socket_dir / f"{name}.sock"), backend=backend,
                       sequence=self._sequence)

    def _attach(self, run: TaskRun, stream_logs: bool) -> Any:
        subscriber = run.subscribe(stream_logs)
        position = self.queue_position(run) if run.status == common_pb2.TASK_STATUS_WAITING else 0
        subscriber.put(run.event(accepted=executor_pb2.TaskAccepted(queue_position=position)))
        if run.started_event is not None:
            subscriber.put(run.started_event)
        if run.finished_event is not None:
            subscriber.put(run.finished_event)
            subscriber.put(None)
        return subscriber

    def watch(self, task_id: str, stream_logs: bool) -> tuple[TaskRun, Any]:
        run = self.latest(task_id)
        subscriber = run.subscribe(stream_logs)
        subscriber.put(run.event(snapshot=run.info()))
        if run.finished_event is not None:
            subscriber.put(run.finished_event)
            subscriber.put(None)
        return run, subscriber
