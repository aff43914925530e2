"""Recovery after an executor restart: adopt tasks still running, settle those that ended."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import time

from kernel.tracker import PROGRESS_FILE
from protos.weft.v1 import common_pb2, executor_pb2
from services.executor.constants import RECORD_FILE, TASKS_DIR
from services.executor.launch import Launch
from services.executor.process import is_running, wait_for_exit
from services.executor.task import TaskRun

log = logging.getLogger("weft.executor")


class Recovery(Launch):
    """After a restart: reload task records, re-attach to live processes, settle the others."""

    async def _recover(self) -> None:
        records = sorted((self.state_dir / TASKS_DIR).glob(f"*/a*/{RECORD_FILE}"))
        horizon = (time.time() - self.settings.ended_task_retention_s) * 1000
        for path in records:
            try:
                run = TaskRun.load(path.parent)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("skipping unreadable task record %s: %s", path, exc)
                continue
            if run.ended and run.ended_at_ms < horizon:
                continue
            self._sequence = max(self._sequence, run.sequence)
            self.runs.setdefault(run.task_id, {})[run.attempt] = run
            if run.ended:
                run.finished_event = run.event(finished=executor_pb2.TaskFinished(
                    status=run.status, error=run.error, exit_code=run.exit_code))
            elif run.pid == 0:
                heapq.heappush(self._queue, (-run.spec.priority, run.sequence, run))
            elif is_running(run.pid, run.pid_ticks):
                await self._reattach(run)
            else:
                self._reconcile_gone(run)

    async def _reattach(self, run: TaskRun) -> None:
        log.info("task %s attempt %d: still running as pid %d; re-attaching", run.task_id, run.attempt, run.pid)
        self._refresh_progress(run)
        if run.reported_running:
            run.started_event = run.event(started=executor_pb2.TaskStarted(
                pid=run.pid, spark_app_id=run.spark_app_id, warm=run.warm))
        self._active.add(run)
        await self._open_channels(run, from_end=True)
        self._spawn_background(self._supervise_adopted(run), f"adopted-{run.task_id}")

    async def _supervise_adopted(self, run: TaskRun) -> None:
        watchdog = asyncio.create_task(self._watchdog(run))
        try:
            await wait_for_exit(run.pid, run.pid_ticks)
            run.leader_ended.set()
            self._conclude(run, None)
        finally:
            watchdog.cancel()
            await self._close_channels(run)
            self._active.discard(run)
            self._dispatch()

    def _reconcile_gone(self, run: TaskRun) -> None:
        file_status = self._task_file_status(run)
        if file_status.get("status") == "success":
            self._finish(run, common_pb2.TASK_STATUS_SUCCESS, "", 0)
            return
        detail = str(file_status.get("error") or "")
        reason = "the task's process ended while the executor was down"
        self._finish(run, common_pb2.TASK_STATUS_FAILED, f"{reason}: {detail}" if detail else reason, 1)

    def _refresh_progress(self, run: TaskRun) -> None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            progress = json.loads((run.task_dir / PROGRESS_FILE).read_text(encoding="utf-8"))
            run.progress = float(progress.get("percent", run.progress))
