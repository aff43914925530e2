"""Reading a job: its current state (GetJob) and its stream of events (WatchJob)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from protos.weft.v1 import scheduler_pb2
from services.common.db.constants import STATUS_RUNNING, TERMINAL_STATUSES
from services.common.db.repository import list_task_progress, list_tasks
from services.scheduler.diagnosis import waiting_sentence
from services.scheduler.state import SchedulerState, now_ms
from services.scheduler.views import JOB_STATUS_NAME, job_info


class Watch(SchedulerState):
    """GetJob and WatchJob: a job's state now, and its events as they happen."""

    async def job_info(self, job_id: str) -> scheduler_pb2.JobInfo:
        job = await self._job(job_id)
        tasks = await list_tasks(self.engine, job_id=job_id)
        progress = {p.task_id: p.progress for p in await list_task_progress(self.engine, job_id)}
        waiting = {t.task_id: waiting_sentence(self._waiting[t.task_id], t.component, tasks)
                   for t in tasks if t.task_id in self._waiting and t.status == STATUS_RUNNING}
        return job_info(job, tasks, progress, waiting)

    async def watch_job(self, job_id: str, include_metrics: bool) -> AsyncIterator[scheduler_pb2.JobEvent]:
        """The current state first, then every event until the job ends."""
        queue = self.events.subscribe(job_id)
        try:
            snapshot = await self.job_info(job_id)
            seq = 1
            yield scheduler_pb2.JobEvent(job_id=job_id, seq=seq, timestamp_ms=now_ms(), snapshot=snapshot)
            if JOB_STATUS_NAME.get(snapshot.status) in TERMINAL_STATUSES:
                return
            while True:
                event = await queue.get()
                if event is None:
                    return
                if event.WhichOneof("event") == "metric" and not include_metrics:
                    continue
                seq += 1
                out = scheduler_pb2.JobEvent()
                out.CopyFrom(event)
                out.seq = seq
                yield out
                if event.WhichOneof("event") == "job_status" and JOB_STATUS_NAME.get(event.job_status.status) in TERMINAL_STATUSES:
                    return
        finally:
            self.events.unsubscribe(job_id, queue)
