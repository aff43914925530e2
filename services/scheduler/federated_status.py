"""Federated status: members report task changes to the initiator, which derives and pushes the job's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

from kernel.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, WeftError
from protos.weft.v1 import common_pb2, scheduler_pb2
from services.common.db.constants import (
    ACTION_STOP_JOB,
    STATUS_FAILED,
    STATUS_RUNNING,
    STATUS_STOPPED,
    STATUS_SUCCESS,
    STATUS_WAITING,
    TERMINAL_STATUSES,
)
from services.common.db.records import JobRecord, TaskRecord
from services.common.db.repository import get_job, get_task, list_tasks
from services.scheduler import store
from services.scheduler.constants import PRIORITY_STOP
from services.scheduler.state import SchedulerState, is_cluster, now_ms
from services.scheduler.views import (
    JOB_STATUS,
    JOB_STATUS_NAME,
    TASK_STATUS,
    TASK_STATUS_NAME,
    job_task,
)

log = logging.getLogger("weft.scheduler")


def derive_job_status(tasks: Collection[TaskRecord]) -> tuple[str, str, TaskRecord | None]:
    """The job status the initiator reads from every member's tasks, its message, the culprit."""
    broken = [t for t in tasks if t.status in (STATUS_FAILED, STATUS_STOPPED)]
    if broken:
        first = min(broken, key=lambda t: (t.status != STATUS_FAILED, t.ended_at or 0.0))
        verb = "failed" if first.status == STATUS_FAILED else "was stopped"
        detail = f": {first.error}" if first.error else ""
        message = f"component {first.component} {verb} at member {first.member_id} ({first.role}){detail}"
        return STATUS_FAILED, message, first
    if tasks and all(t.status == STATUS_SUCCESS for t in tasks):
        return STATUS_SUCCESS, "", None
    if any(t.status in (STATUS_RUNNING, STATUS_SUCCESS) for t in tasks):
        return STATUS_RUNNING, "", None
    return STATUS_WAITING, "", None


class FederatedStatus(SchedulerState):
    """Status as it spreads: to local watchers, to the initiator, and from the initiator back."""

    def _publish_task(self, record: TaskRecord) -> None:
        self.events.publish(scheduler_pb2.JobEvent(
            job_id=record.job_id, timestamp_ms=now_ms(),
            task_status=scheduler_pb2.TaskStatusEvent(
                task=job_task(record).key, status=TASK_STATUS[record.status],  # type: ignore[arg-type]
                attempt=record.attempt, error=record.error or "",
            ),
        ))

    def _publish_progress(self, record: TaskRecord, percent: float, message: str) -> None:
        self.events.publish(scheduler_pb2.JobEvent(
            job_id=record.job_id, timestamp_ms=now_ms(),
            task_progress=scheduler_pb2.TaskProgressEvent(task=job_task(record).key, percent=percent, message=message),
        ))

    def _publish_job(self, job: JobRecord) -> None:
        if job.status in TERMINAL_STATUSES:
            self._spawn(self._clean_sessions(job.job_id), f"clean-{job.job_id}")
        self.events.publish(scheduler_pb2.JobEvent(
            job_id=job.job_id, timestamp_ms=now_ms(),
            job_status=scheduler_pb2.JobStatusEvent(
                status=JOB_STATUS[job.status], progress=job.progress * 100.0, message=job.message or "",  # type: ignore[arg-type]
            ),
        ))

    async def _clean_sessions(self, job_id: str) -> None:
        """The job ended here: its sessions end at this member's transfer service (messages
        dropped, later deliveries refused)."""
        if self.transfer is None:
            return
        job = await get_job(self.engine, job_id)
        if job is None or not is_cluster(self._spec(job).job_parameters):
            return
        sessions = sorted({t.session_id for t in await list_tasks(self.engine, job_id=job_id) if t.session_id})
        for session_id in sessions:
            try:
                removed, freed = await self.transfer.clean_session(session_id)
            except WeftError as exc:
                log.warning("could not clean session %s of job %s: %s", session_id, job_id, exc)
                continue
            log.info("job %s ended: session %s cleaned (%d messages, %d bytes)", job_id, session_id, removed, freed)

    async def _own_task_changed(self, record: TaskRecord) -> None:
        self._publish_task(record)
        job = await get_job(self.engine, record.job_id)
        if job is None:
            return
        if job.initiator_member_id == self.me:
            await self._recompute(record.job_id)
        else:
            self._report(record)

    def _report(self, record: TaskRecord, progress: float | None = None) -> None:
        """Send a task change to the initiator, in order per job, retrying while it is away."""
        if self._closing:
            return
        request = scheduler_pb2.ReportTaskStatusRequest(
            job_id=record.job_id, sender_member_id=self.me, role=record.role, component_name=record.component,
            task_id=record.task_id, status=TASK_STATUS[record.status],  # type: ignore[arg-type]
            attempt=record.attempt, progress=progress if progress is not None else (100.0 if record.status == STATUS_SUCCESS else 0.0),
            error=record.error or "", timestamp_ms=now_ms(),
        )
        spec = self._specs.get(record.job_id)

        async def send() -> None:
            async with self._report_locks[record.job_id]:
                initiator = spec.initiator.member_id if spec else (await self._job(record.job_id)).initiator_member_id
                if initiator == self.me:
                    await self._recompute(record.job_id)
                    return
                try:
                    await self.peers.report_task_status(initiator, request)
                except WeftError as exc:
                    log.warning("could not report task %s to initiator %s: %s", record.task_id, initiator, exc)

        self._spawn(send(), f"report-{record.task_id}")

    async def report_task_status(self, request: scheduler_pb2.ReportTaskStatusRequest, caller: str) -> None:
        """At the initiator: a member's task changed."""
        self._check_caller(request.sender_member_id, caller)
        job = await self._job(request.job_id)
        if job.initiator_member_id != self.me:
            raise FailedPrecondition(f"member {self.me} is not the initiator of job {request.job_id}")
        record = await get_task(self.engine, request.task_id)
        if record is None or record.job_id != request.job_id:
            raise NotFound(f"task {request.task_id!r} is not part of job {request.job_id}")
        if record.member_id != request.sender_member_id:
            raise PermissionDenied(f"task {request.task_id} belongs to member {record.member_id}, "
                                   f"not {request.sender_member_id}")
        status = TASK_STATUS_NAME.get(request.status)
        if status is None:
            raise InvalidArgument("status: unspecified")
        changed = await store.apply_task_status(
            self.engine, request.task_id, request.attempt, status, error=request.error or None
        )
        if changed is not None:
            self._publish_task(changed)
        elif status == STATUS_RUNNING and request.progress > 0:
            self._publish_progress(record, request.progress, "")
        if changed is not None:
            await self._recompute(request.job_id)

    async def _recompute(self, job_id: str) -> None:
        """At the initiator: derive the job status from every task; push it when it changed."""
        async with self._job_locks[job_id]:
            job = await get_job(self.engine, job_id)
            if job is None or job.status in TERMINAL_STATUSES:
                return
            tasks = await list_tasks(self.engine, job_id=job_id)
            status, message, _ = derive_job_status(tasks)
            progress = sum(t.status == STATUS_SUCCESS for t in tasks) / max(len(tasks), 1)
            if status == job.status and abs(progress - job.progress) < 1e-9:
                return
            if status != job.status:
                await store.set_job_state(self.engine, job_id, status, message=message, progress=progress)
            else:
                await store.set_job_progress(self.engine, job_id, progress)
        updated = await self._job(job_id)
        self._publish_job(updated)
        if status != job.status:
            self._push(job_id)
        if status == STATUS_FAILED:
            await self._halt(job_id, message)

    def _push(self, job_id: str) -> None:
        """Send the job's current status and task view to every other member, in order."""

        async def push() -> None:
            async with self._push_locks[job_id]:
                job = await self._job(job_id)
                spec = self._spec(job)
                tasks = await list_tasks(self.engine, job_id=job_id)
                _, _, culprit = derive_job_status(tasks)
                request = scheduler_pb2.PushJobStatusRequest(
                    job_id=job_id, sender_member_id=self.me, status=JOB_STATUS[job.status],  # type: ignore[arg-type]
                    progress=job.progress * 100.0, message=job.message or "",
                    tasks=[job_task(t) for t in tasks], timestamp_ms=now_ms(),
                )
                if job.status == STATUS_FAILED and culprit is not None:
                    request.failed_party.CopyFrom(common_pb2.Party(role=culprit.role, member_id=culprit.member_id))
                    request.failed_component = culprit.component
                others = [m for m in spec.members() if m != self.me]

                async def send(member: str) -> None:
                    try:
                        await self.peers.push_job_status(member, request)
                    except WeftError as exc:
                        log.warning("could not push job %s status to member %s: %s", job_id, member, exc)

                await asyncio.gather(*(send(m) for m in others))

        self._spawn(push(), f"push-{job_id}")

    async def push_job_status(self, request: scheduler_pb2.PushJobStatusRequest, caller: str) -> None:
        """At a member: the initiator's verdict on the job."""
        self._check_caller(request.sender_member_id, caller)
        job = await self._job(request.job_id)
        if job.initiator_member_id != request.sender_member_id:
            raise PermissionDenied(f"member {request.sender_member_id} is not the initiator of job {request.job_id}")
        status = JOB_STATUS_NAME.get(request.status)
        if status is None:
            raise InvalidArgument("status: unspecified")
        others = [
            TaskRecord(
                task_id=t.key.task_id, job_id=request.job_id, component=t.key.component_name, module=t.module,
                role=t.key.party.role, member_id=t.key.party.member_id, status=TASK_STATUS_NAME.get(t.status, STATUS_WAITING),
                attempt=t.attempt, executor=t.executor or None, pid=t.pid or None, error=t.error or None,
                started_at=t.started_at_ms / 1000 or None, ended_at=t.ended_at_ms / 1000 or None,
            )
            for t in request.tasks if t.key.party.member_id != self.me
        ]
        await store.mirror_tasks(self.engine, others)
        if job.status in TERMINAL_STATUSES:
            return  # a late push of an earlier state; a rerun resets the job explicitly
        changed = await store.set_job_state(
            self.engine, request.job_id, status, message=request.message, progress=request.progress / 100.0
        )
        if changed:
            self._publish_job(await self._job(request.job_id))
        if status in (STATUS_FAILED, STATUS_STOPPED):
            await self._halt(request.job_id, request.message)

    async def _halt(self, job_id: str, reason: str) -> None:
        """Stop this member's tasks of a job that failed or was stopped (through the queue)."""
        self._halted.add(job_id)
        await self._enqueue(ACTION_STOP_JOB, job_id, PRIORITY_STOP, reason=reason or "job ended")

    async def _finish_as_initiator(self, job_id: str, status: str, message: str) -> None:
        if await store.set_job_state(self.engine, job_id, status, message=message):
            self._publish_job(await self._job(job_id))
            self._push(job_id)
        await self._halt(job_id, message)
