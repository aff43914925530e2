"""Stopping and rerunning a job at every member."""

from __future__ import annotations

import secrets
from collections.abc import Collection

from kernel.errors import FailedPrecondition, InvalidArgument, PermissionDenied, WeftError
from protos.weft.v1 import common_pb2, scheduler_pb2
from services.common.db.constants import (
    ACTION_RERUN_JOB,
    STATUS_FAILED,
    STATUS_STOPPED,
    STATUS_SUCCESS,
    TERMINAL_STATUSES,
    UNFINISHED_STATUSES,
)
from services.common.db.records import JobRecord
from services.common.db.repository import get_job, get_task, list_tasks
from services.scheduler import store
from services.scheduler.spec import JobSpec
from services.scheduler.task_conf import component_session_id
from services.scheduler.task_events import TaskEvents


class StopAndRerun(TaskEvents):
    """StopJob and RerunJob, from a client or from a peer, and stopping this member's tasks."""

    async def stop_job(self, job_id: str, reason: str) -> str:
        """Stop a job at every member; returns the job's status afterwards."""
        job = await self._job(job_id)
        if job.status in TERMINAL_STATUSES:
            return job.status
        if job.initiator_member_id == self.me:
            await self._finish_as_initiator(job_id, STATUS_STOPPED, reason or f"stopped by a user at member {self.me}")
            return STATUS_STOPPED
        await self.peers.stop_job(
            job.initiator_member_id,
            scheduler_pb2.PeerStopJobRequest(job_id=job_id, sender_member_id=self.me, reason=reason),
        )
        await self._stop_here(job_id, f"stopped by a user at member {self.me}" + (f": {reason}" if reason else ""))
        return STATUS_STOPPED

    async def _stop_here(self, job_id: str, message: str) -> None:
        if await store.set_job_state(self.engine, job_id, STATUS_STOPPED, message=message):
            self._publish_job(await self._job(job_id))
        await self._halt(job_id, message)

    async def peer_stop_job(self, request: scheduler_pb2.PeerStopJobRequest, caller: str) -> None:
        self._check_caller(request.sender_member_id, caller)
        job = await self._job(request.job_id)
        spec = self._spec(job)
        if request.sender_member_id not in spec.members():
            raise PermissionDenied(f"member {request.sender_member_id} takes no part in job {request.job_id}")
        if job.status in TERMINAL_STATUSES:
            return
        reason = request.reason
        if job.initiator_member_id == self.me:
            message = f"stopped by a user at member {request.sender_member_id}" + (f": {reason}" if reason else "")
            await self._finish_as_initiator(request.job_id, STATUS_STOPPED, message)
        elif request.sender_member_id == job.initiator_member_id:
            await self._stop_here(request.job_id, reason or f"stopped by the initiator {request.sender_member_id}")
        else:
            raise PermissionDenied(f"only the initiator stops job {request.job_id} at member {self.me}")

    async def _stop_local_tasks(self, job_id: str, reason: str) -> None:
        job = await get_job(self.engine, job_id)
        if job is None:
            return
        if job.status in (STATUS_FAILED, STATUS_STOPPED):
            self._halted.add(job_id)
        elif job_id not in self._halted:
            return  # rerun since the stop was queued
        reason = job.message or reason
        for task_id in await store.stop_undispatched(self.engine, job_id, self.me, reason):
            record = await get_task(self.engine, task_id)
            if record is not None:
                self._publish_task(record)
                if job.initiator_member_id != self.me:
                    self._report(record)
        for record in await list_tasks(self.engine, job_id=job_id, member_id=self.me, statuses=UNFINISHED_STATUSES):
            if record.executor is None:
                continue
            status = await self.executors.stop_task(record.executor, record.task_id, reason)
            watcher = self._watchers.get(record.task_id)
            if watcher is None or watcher.done():
                # Nobody follows the task (the executor lost it): record the stop ourselves.
                if status in (common_pb2.TASK_STATUS_STOPPED, common_pb2.TASK_STATUS_UNSPECIFIED):
                    await self._task_status(record, STATUS_STOPPED, error=reason)

    async def rerun_job(self, job_id: str, component_names: Collection[str]) -> list[str]:
        """Rerun failed/stopped (or the named) components and their downstream everywhere."""
        job = await self._job(job_id)
        if job.initiator_member_id != self.me:
            await self.peers.rerun_job(job.initiator_member_id, scheduler_pb2.PeerRerunJobRequest(
                job_id=job_id, sender_member_id=self.me, component_names=list(component_names)))
            return self._spec(job).downstream(component_names) if component_names else []
        return await self._rerun_as_initiator(job, component_names)

    async def _rerun_as_initiator(self, job: JobRecord, component_names: Collection[str]) -> list[str]:
        if job.status not in TERMINAL_STATUSES:
            raise FailedPrecondition(f"job {job.job_id} is still {job.status}; stop it or wait for it to end")
        spec = self._spec(job)
        unknown = [name for name in component_names if name not in spec.components]
        if unknown:
            raise InvalidArgument(f"component_names: {', '.join(unknown)} not in job {job.job_id} "
                                  f"(components: {', '.join(spec.components)})")
        names = list(component_names)
        if not names:
            tasks = await list_tasks(self.engine, job_id=job.job_id)
            names = sorted({t.component for t in tasks if t.status != STATUS_SUCCESS})
            if not names:
                raise FailedPrecondition(f"job {job.job_id}: every component succeeded; name the components to rerun")
        components = spec.downstream(names)
        prefix = f"{job.job_id}-r{secrets.token_hex(4)}"
        await self._reset_for_rerun(job.job_id, spec, components, prefix)
        request = scheduler_pb2.PeerRerunJobRequest(
            job_id=job.job_id, sender_member_id=self.me, component_names=components, federation_session_id=prefix,
        )
        try:
            for member in [m for m in spec.members() if m != self.me]:
                await self.peers.rerun_job(member, request)
        except WeftError as exc:
            await self._finish_as_initiator(job.job_id, STATUS_FAILED, f"rerun could not reach every member: {exc}")
            raise
        await self._enqueue(ACTION_RERUN_JOB, job.job_id)
        return components

    async def _reset_for_rerun(self, job_id: str, spec: JobSpec, components: list[str], prefix: str) -> None:
        sessions = {name: component_session_id(prefix, name) for name in components}
        self._halted.discard(job_id)
        await store.reset_for_rerun(self.engine, job_id, components, sessions)
        await self._register_sessions(job_id, spec, prefix, components)
        self._publish_job(await self._job(job_id))

    async def peer_rerun_job(self, request: scheduler_pb2.PeerRerunJobRequest, caller: str) -> None:
        self._check_caller(request.sender_member_id, caller)
        job = await self._job(request.job_id)
        spec = self._spec(job)
        if job.initiator_member_id == self.me:
            if request.sender_member_id not in spec.members():
                raise PermissionDenied(f"member {request.sender_member_id} takes no part in job {request.job_id}")
            await self._rerun_as_initiator(job, list(request.component_names))
            return
        if request.sender_member_id != job.initiator_member_id:
            raise PermissionDenied(f"only the initiator reruns job {request.job_id} at member {self.me}")
        unknown = [name for name in request.component_names if name not in spec.components]
        if unknown or not request.federation_session_id:
            raise InvalidArgument(f"component_names / federation_session_id: bad rerun request ({', '.join(unknown)})")
        await self._reset_for_rerun(request.job_id, spec, list(request.component_names), request.federation_session_id)
        await self._enqueue(ACTION_RERUN_JOB, request.job_id)
