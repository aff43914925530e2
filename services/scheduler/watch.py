"""Reading a job: its current state (GetJob) and its stream of events (WatchJob)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from kernel.constants import ROLES
from protos.weft.v1 import scheduler_pb2
from services.common.db.constants import STATUS_RUNNING, TERMINAL_STATUSES
from services.common.db.records import TaskRecord
from services.common.db.repository import list_task_progress, list_tasks
from services.scheduler.diagnosis import waiting_sentence
from services.scheduler.spec import JobSpec
from services.scheduler.state import SchedulerState, now_ms
from services.scheduler.views import JOB_STATUS_NAME, job_info


def dag_ordered(spec: JobSpec, tasks: Iterable[TaskRecord]) -> list[TaskRecord]:
    """`tasks` with each component after the components it reads, then by role and member."""
    component_rank = {name: rank for rank, name in enumerate(spec.components)}
    role_rank = {role: rank for rank, role in enumerate(ROLES)}
    return sorted(tasks, key=lambda t: (component_rank.get(t.component, len(component_rank)),
                                        role_rank.get(t.role, len(role_rank)), t.member_id))


class Watch(SchedulerState):
    """GetJob and WatchJob: a job's state now, and its events as they happen."""

    async def job_info(self, job_id: str) -> scheduler_pb2.JobInfo:
        """The job and its tasks in DAG order (a component after those it reads; roles in role order)."""
        job = await self._job(job_id)
        tasks = dag_ordered(self._spec(job), await list_tasks(self.engine, job_id=job_id))
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
