"""Stopping a task, queued or running."""

from __future__ import annotations

from protos.weft.v1 import common_pb2
from services.executor.constants import STOPPED_BY_REQUEST
from services.executor.process import kill_group
from services.executor.supervision import Supervision


class Stopping(Supervision):
    """StopTask: drop a queued task, or end a running one's process group."""

    async def stop(self, task_id: str, reason: str) -> common_pb2.TaskStatus:
        """Stop the latest attempt; returns its status afterwards (STOPPED or how it had ended)."""
        run = self.latest(task_id)
        if run.ended:
            return run.status
        run.stop_reason = reason or STOPPED_BY_REQUEST
        if run not in self._active:  # still queued: drop it
            self._finish(run, common_pb2.TASK_STATUS_STOPPED, run.stop_reason, 0)
            return run.status
        if run.pid:
            await kill_group(run.pid, run.leader_ended, self.settings.stop_grace_s)
        await run.done.wait()  # the supervising coroutine records the end once the leader is reaped
        return run.status
