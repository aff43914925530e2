"""Following a task: its executor's event stream, re-attaching when it breaks, applying each event."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable

from kernel.errors import NotFound, Unavailable, WeftError
from protos.weft.v1 import common_pb2, executor_pb2, scheduler_pb2
from services.common.db.constants import (
    ACTION_RUN_JOB,
    RESULT_DATA,
    RESULT_METRIC,
    RESULT_MODEL,
    STATUS_FAILED,
    STATUS_RUNNING,
    STATUS_STOPPED,
    STATUS_SUCCESS,
    STATUS_WAITING,
    TERMINAL_STATUSES,
    UNFINISHED_STATUSES,
)
from services.common.db.records import TaskProgressRecord, TaskRecord, TaskResultRecord
from services.common.db.repository import (
    get_job,
    get_task,
    list_tasks,
    upsert_task_progress,
    upsert_task_result,
)
from services.scheduler import store
from services.scheduler.constants import EXECUTOR_RETRY_MAX_S, PEER_RETRY_BASE_S
from services.scheduler.diagnosis import peer_clause
from services.scheduler.federated_status import FederatedStatus
from services.scheduler.state import now_ms
from services.scheduler.views import TASK_STATUS_NAME, job_task

log = logging.getLogger("weft.scheduler")


class TaskEvents(FederatedStatus):
    """Follow a dispatched task's event stream from its executor and apply each event."""

    def _follow_task(self, record: TaskRecord, executor: str,
                     open_stream: Callable[[], AsyncIterator[executor_pb2.TaskEvent]]) -> None:
        previous = self._watchers.get(record.task_id)
        if previous is not None and not previous.done():
            previous.cancel()
        task = asyncio.create_task(self._follow(record, executor, open_stream), name=f"task-{record.task_id}")
        self._watchers[record.task_id] = task
        task.add_done_callback(lambda t: self._watchers.pop(record.task_id, None) if self._watchers.get(record.task_id) is t else None)

    def _reattach(self, record: TaskRecord, executor: str) -> None:
        """Follow a task already handed to `executor` through WatchTask (after a restart, say)."""
        def watch() -> AsyncIterator[executor_pb2.TaskEvent]:
            return self.executors.watch_task(executor, record.task_id)

        self._follow_task(record, executor, watch)

    async def _follow(self, record: TaskRecord, executor: str,
                      open_stream: Callable[[], AsyncIterator[executor_pb2.TaskEvent]]) -> None:
        """Consume a task's event stream; re-attach with WatchTask when the stream breaks.

        An executor that went away (a restart) is waited for up to `executor_wait_s` from the
        moment it was last heard; a restarted executor re-attaches its running tasks and
        answers WatchTask with where each one stands.
        """
        failures = 0
        lost_since: float | None = None
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    async for event in open_stream():
                        lost_since, failures = None, 0
                        if event.attempt and event.attempt != record.attempt:
                            continue
                        if await self._on_event(record, executor, event):
                            return
                    raise Unavailable(f"executor {executor}: the event stream ended before the task did")
                except NotFound:
                    await self._task_unknown(record, executor)
                    return
                except Unavailable as exc:
                    reason = str(exc)
                except WeftError as exc:
                    await self._task_lost(record, str(exc))
                    return
                except Exception as exc:
                    # A database that stayed busy through its retries, or a bug: the task goes
                    # on at the executor, so follow it afresh rather than abandon it.
                    log.exception("following task %s failed; re-attaching", record.task_id)
                    reason = f"following it failed: {type(exc).__name__}: {exc}"
                failures += 1
                lost_since = loop.time() if lost_since is None else lost_since
                waited = loop.time() - lost_since
                if waited >= self.settings.executor_wait_s:
                    await self._task_lost(record, f"lost contact with executor {executor} for {waited:.0f} s "
                                                  f"(executor.restart_wait_s): {reason}")
                    return
                if failures == 1:
                    log.warning("task %s: executor %s unreachable (%s); waiting up to %g s for it",
                                record.task_id, executor, reason, self.settings.executor_wait_s)
                # Backoff between re-attach attempts (the executor may be restarting).
                await asyncio.sleep(min(EXECUTOR_RETRY_MAX_S, PEER_RETRY_BASE_S * 2 ** failures,
                                        max(0.0, self.settings.executor_wait_s - waited)))
                open_stream = lambda: self.executors.watch_task(executor, record.task_id)  # noqa: E731
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following task %s failed", record.task_id)

    async def _on_event(self, record: TaskRecord, executor: str, event: executor_pb2.TaskEvent) -> bool:
        """Apply one executor event; True once the task has finished."""
        kind = event.WhichOneof("event")
        if kind in ("accepted", "started", "snapshot") and record.job_id in self._halted:
            await self.executors.stop_task(executor, record.task_id, "job stopped")
        if kind == "started":
            await self._task_status(record, STATUS_RUNNING, pid=event.started.pid, executor=executor)
        elif kind == "snapshot" and event.snapshot.status == common_pb2.TASK_STATUS_RUNNING:
            await self._task_status(record, STATUS_RUNNING, pid=event.snapshot.pid or None, executor=executor)
        elif kind == "progress":
            if event.progress.HasField("waiting"):
                self._waiting[record.task_id] = event.progress.waiting
                self._last_waiting[record.task_id] = event.progress.waiting
            else:
                self._waiting.pop(record.task_id, None)
            await self._task_progress(record, event.progress.percent, event.progress.message)
        elif kind == "metric":
            await self._task_metric(record, event.metric, event.timestamp_ms)
        elif kind == "finished":
            try:
                await self._task_finished(record, event.finished)
            finally:
                self._waiting.pop(record.task_id, None)
                self._last_waiting.pop(record.task_id, None)
            return True
        return False

    async def _task_unknown(self, record: TaskRecord, executor: str) -> None:
        current = await get_task(self.engine, record.task_id)
        if current is None or current.attempt != record.attempt or current.status in TERMINAL_STATUSES:
            return
        if current.status == STATUS_WAITING:
            # Dispatched, but the executor never took it (we died between claim and RunTask).
            if await store.release_dispatch(self.engine, record.task_id, record.attempt):
                await self._enqueue(ACTION_RUN_JOB, record.job_id)
            return
        await self._task_lost(record, f"executor {executor} no longer knows the task (it restarted?)")

    async def _task_lost(self, record: TaskRecord, reason: str) -> None:
        current = await get_task(self.engine, record.task_id)
        if current is None or current.attempt != record.attempt or current.status in TERMINAL_STATUSES:
            return
        await self._task_failed(current, reason)

    async def _task_status(self, record: TaskRecord, status: str, *, error: str | None = None,
                           pid: int | None = None, executor: str | None = None) -> TaskRecord | None:
        changed = await store.apply_task_status(
            self.engine, record.task_id, record.attempt, status, error=error, pid=pid, executor=executor
        )
        if changed is not None:
            await self._own_task_changed(changed)
        return changed

    async def _task_progress(self, record: TaskRecord, percent: float, message: str) -> None:
        fraction = max(0.0, min(100.0, percent)) / 100.0
        await upsert_task_progress(
            self.engine, TaskProgressRecord(record.task_id, record.job_id, fraction, message or None)
        )
        current = await get_task(self.engine, record.task_id) or record
        self._publish_progress(current, percent, message)
        spec = self._specs.get(record.job_id)
        if spec is None or spec.initiator.member_id != self.me:
            self._report(current, progress=percent)

    async def _task_metric(self, record: TaskRecord, metric: executor_pb2.TaskMetric, timestamp_ms: int) -> None:
        try:
            points = json.loads(metric.json) if metric.json else None
        except json.JSONDecodeError:
            points = metric.json
        recorded_at_ms = timestamp_ms or now_ms()
        value = {"name": metric.name, "namespace": metric.namespace, "metric_type": metric.metric_type,
                 "points": points, "recorded_at_ms": recorded_at_ms}
        await upsert_task_result(self.engine, TaskResultRecord(
            record.task_id, record.job_id, record.component, record.role, self.me, RESULT_METRIC,
            f"{metric.namespace}/{metric.name}", value,
        ))
        self.events.publish(scheduler_pb2.JobEvent(
            job_id=record.job_id, timestamp_ms=now_ms(),
            metric=scheduler_pb2.MetricEvent(
                task=job_task(record).key,
                metric=common_pb2.Metric(name=metric.name, namespace=metric.namespace,
                                         metric_type=metric.metric_type, points_json=metric.json,
                                         recorded_at_ms=recorded_at_ms),
            ),
        ))

    async def _task_finished(self, record: TaskRecord, finished: executor_pb2.TaskFinished) -> None:
        status = TASK_STATUS_NAME.get(finished.status, STATUS_FAILED)
        error = finished.error or (f"exit code {finished.exit_code}" if status != STATUS_SUCCESS else "")
        if status == STATUS_FAILED:
            waiting = self._last_waiting.get(record.task_id)
            if waiting is not None and f"waiting on member {waiting.src.member_id} " in error:
                # It failed in a get (its timeout): add the state of the sender's task.
                tasks = await list_tasks(self.engine, job_id=record.job_id)
                error = f"{error}; {peer_clause(waiting, record.component, tasks)}"
            await self._task_failed(record, error)
            return
        if status == STATUS_SUCCESS:
            await self._record_outputs(record)
            await self._task_status(record, STATUS_SUCCESS)
            await self._enqueue(ACTION_RUN_JOB, record.job_id)
            return
        await self._task_status(record, STATUS_STOPPED, error=error or "stopped")

    async def _task_failed(self, record: TaskRecord, error: str) -> None:
        """Retry the task here while `auto_retries` allow (and the job goes on), else fail it."""
        current = await get_task(self.engine, record.task_id) or record
        job = await get_job(self.engine, record.job_id)
        alive = job is not None and job.status not in TERMINAL_STATUSES and record.job_id not in self._halted
        if alive and current.retries < self.settings.auto_retries and current.status in UNFINISHED_STATUSES:
            if await store.retry_task_locally(self.engine, record.task_id, current.attempt, error):
                log.info("task %s attempt %d failed (%s); retrying", record.task_id, current.attempt, error)
                await self._enqueue(ACTION_RUN_JOB, record.job_id)
                return
        await self._task_status(current, STATUS_FAILED, error=error)

    async def _record_outputs(self, record: TaskRecord) -> None:
        """Register the outputs the task wrote (its outputs index in the member's storage)."""
        index = (self.settings.storage_root / "jobs" / record.job_id / record.role / self.me
                 / f"{record.component}.outputs.json")
        try:
            outputs = json.loads(await asyncio.to_thread(index.read_text, encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return
        for kind, result_kind in (("data", RESULT_DATA), ("model", RESULT_MODEL)):
            for name, value in (outputs.get(kind) or {}).items():
                await upsert_task_result(self.engine, TaskResultRecord(
                    record.task_id, record.job_id, record.component, record.role, self.me, result_kind, name, value,
                ))
