"""Submitting a job: validate it, create it at every member, queue its first run."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

from kernel.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
    WeftError,
)
from protos.weft.v1 import common_pb2, scheduler_pb2
from services.common.db.constants import (
    ACTION_RUN_JOB,
    OUTCOME_SUCCESS,
    STATUS_FAILED,
    STATUS_WAITING,
)
from services.common.db.queue import complete_action, release_action
from services.common.db.records import JobRecord, TaskRecord
from services.common.db.repository import get_data_set, get_job, insert_job
from services.scheduler import store
from services.scheduler.constants import PRIORITY_RUN, PRODUCER
from services.scheduler.data_checks import check_job_data
from services.scheduler.dispatch import Dispatch
from services.scheduler.spec import DataRef, JobSpec, SpecError, required_data_sets
from services.scheduler.spec_parser import load_spec_json, parse_job_spec
from services.scheduler.task_conf import component_session_id, new_job_id, task_id_of
from services.scheduler.work_mode import check_work_mode


class Submission(Dispatch):
    """SubmitJob at the initiator and CreateJob at every other member."""

    async def submit_job(self, spec_json: str) -> str:
        """Validate, create the job here and at every other member, queue run_job; the job id."""
        spec = parse_job_spec(
            load_spec_json(spec_json), local_member_id=self.me, known_members=self.settings.known_members
        )
        check_work_mode(spec, self.me, self.settings.spool_dir)
        await self._check_local_data(spec, error=SpecError)
        job_id = new_job_id()
        others = [m for m in spec.members() if m != self.me]

        def request(validate_only: bool) -> scheduler_pb2.CreateJobRequest:
            return scheduler_pb2.CreateJobRequest(
                job_id=job_id, spec_json=spec.to_json(),
                initiator=common_pb2.Party(role=spec.initiator.role, member_id=spec.initiator.member_id),
                sender_member_id=self.me, federation_session_id=job_id, validate_only=validate_only,
            )

        async def check(member: str) -> None:
            try:
                await self.peers.create_job(member, request(True))
            except Unavailable as exc:
                raise Unavailable(f"cannot reach member {member} to create the job: {exc}") from None
            except WeftError as exc:
                raise SpecError(f"member {member} refused the job: {exc}") from None

        await asyncio.gather(*(check(m) for m in others))
        if not others:
            await self._start_ready(job_id, spec, job_id)
            return job_id
        # With peers, run_job is queued once every member has the job.
        await self._write_job(job_id, spec, job_id)
        try:
            await self._register_sessions(job_id, spec, job_id)
            for member in others:
                try:
                    await self.peers.create_job(member, request(False))
                except WeftError as exc:
                    raise Unavailable(f"job {job_id}: could not be created at member {member}: {exc}") from None
        except WeftError as exc:
            await self._finish_as_initiator(job_id, STATUS_FAILED, str(exc))
            raise
        await self._enqueue(ACTION_RUN_JOB, job_id)
        return job_id

    async def create_job(self, request: scheduler_pb2.CreateJobRequest, caller: str) -> str:
        """A peer initiator creates a job here (or asks whether it could); returns a note."""
        self._check_caller(request.sender_member_id, caller)
        try:
            raw = json.loads(request.spec_json)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"spec_json: not valid JSON ({exc.msg})") from None
        spec = parse_job_spec(raw, local_member_id=self.me, require_local_initiator=False)
        if spec.initiator.member_id != request.sender_member_id:
            raise PermissionDenied(
                f"member {request.sender_member_id} is not the initiator ({spec.initiator.member_id}) of this job"
            )
        if not request.job_id:
            raise InvalidArgument("job_id: empty")
        existing = await get_job(self.engine, request.job_id)
        if existing is not None:
            if existing.spec == spec.raw:
                return "already created"
            raise AlreadyExists(f"job {request.job_id} already exists at member {self.me} with another spec")
        await self._check_local_data(spec, error=NotFound)
        if request.validate_only:
            return "would accept"
        await self._start_ready(request.job_id, spec, request.federation_session_id or request.job_id)
        return "created"

    async def _check_local_data(self, spec: JobSpec, *, error: type[WeftError]) -> None:
        # The data sets' files answer at once, and the data is checked in the same trip to a
        # thread; the registry is read only for a data set whose files are missing.
        missing = await asyncio.to_thread(self._missing_or_checked, spec)
        for ref in missing:
            if await get_data_set(self.engine, ref.namespace, ref.name) is None:
                raise error(f"{ref.field}: data set {ref.namespace}/{ref.name} is not registered at member {self.me}")
        if missing:
            await asyncio.to_thread(check_job_data, spec, self.me, self.data_store)

    def _missing_or_checked(self, spec: JobSpec) -> list[DataRef]:
        """The data sets the job reads here whose files are missing; when none is, the data checked too."""
        missing = [ref for ref in required_data_sets(spec, self.me)
                   if not self.data_store.exists(ref.namespace, ref.name)]
        if not missing:
            check_job_data(spec, self.me, self.data_store)
        return missing

    async def _start_ready(self, job_id: str, spec: JobSpec, session_prefix: str) -> None:
        """Write a job that may start now with its first tasks here claimed, then send them.

        A job one member submits alone, or one an initiator creates here. One transaction
        writes the job, its tasks and its run_job action: this member's tasks that wait on
        nothing here are written claimed for the executor picked, the action claimed by
        this process. Once the job's transfer sessions are registered those tasks go to the
        executor: no consumer is woken, no row is read back and no claim is committed
        apart. The action is completed after. If this process dies in between, a restart's
        recovery finds the claimed tasks and asks the executor about them; a replica that
        claims the action once its lease ran out does the same (`recheck_claimed`).
        """
        try:
            executor: str | None = await self.executors.pick(job_id)
        except Unavailable:
            executor = None  # the queue's path: its consumer fails the first tasks as usual
        record, tasks = self._job_rows(job_id, spec, session_prefix)
        ready: list[tuple[TaskRecord, str]] = []
        if executor is not None:
            by_key = {(t.component, t.role): t for t in tasks if t.member_id == self.me}
            for index, task in enumerate(tasks):
                if task.member_id == self.me and self._upstream_done(spec, by_key, task.component, task.role):
                    tasks[index] = dataclasses.replace(task, executor=executor)
                    ready.append((tasks[index], executor))
        self._specs[job_id] = spec
        unsent = {task.task_id for task, _ in ready}
        self._unsent |= unsent
        try:
            held = await store.insert_job_and_queue(
                self.engine, record, tasks, ACTION_RUN_JOB, PRODUCER, PRIORITY_RUN,
                hold_as=f"{self.settings.consumer_name}-submit" if ready else None,
                hand_to=f"{self.settings.consumer_name}-submit", lease_seconds=self.settings.lease_seconds,
            )
            try:
                await self._register_sessions(job_id, spec, session_prefix)
            except Exception:
                if held is not None:
                    # Nothing sent: the queue carries the job on (its consumer asks first about the claimed tasks).
                    self._spawn(release_action(self.engine, held.id, held.claimed_by),
                                name=f"release run_job of {job_id}")
                raise
        finally:
            self._unsent -= unsent
        if held is None:
            return  # no task claimed: the queue's consumer starts the job
        for task, to in ready:
            self._send(spec, task, to)
        self._spawn(complete_action(self.engine, held.id, held.claimed_by, OUTCOME_SUCCESS),
                    name=f"complete run_job of {job_id}")

    def _job_rows(self, job_id: str, spec: JobSpec, session_prefix: str) -> tuple[JobRecord, list[TaskRecord]]:
        """The job's row here and the rows of every member's tasks of it, all waiting."""
        now = time.time()
        record = JobRecord(
            job_id=job_id, member_id=self.me, my_roles=spec.roles_of(self.me),
            initiator_member_id=spec.initiator.member_id, initiator_role=spec.initiator.role,
            spec=spec.raw, name=spec.name, status=STATUS_WAITING, created_at=now, updated_at=now,
        )
        tasks = [
            TaskRecord(
                task_id=task_id_of(job_id, component.name, party), job_id=job_id, component=component.name,
                module=component.module, role=party.role, member_id=party.member_id, status=STATUS_WAITING,
                attempt=1, session_id=component_session_id(session_prefix, component.name),
                created_at=now, updated_at=now,
            )
            for component in spec.components.values()
            for party in spec.task_parties(component.name)
        ]
        return record, tasks

    async def _write_job(self, job_id: str, spec: JobSpec, session_prefix: str) -> None:
        """Write the job and every member's tasks (its run_job is queued later)."""
        record, tasks = self._job_rows(job_id, spec, session_prefix)
        self._specs[job_id] = spec
        await insert_job(self.engine, record, tasks)
