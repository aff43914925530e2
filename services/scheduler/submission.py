"""Submitting a job: validate it, create it at every member, queue its first run."""

from __future__ import annotations

import asyncio
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
from services.common.db.constants import ACTION_RUN_JOB, STATUS_FAILED, STATUS_WAITING
from services.common.db.records import JobRecord, TaskRecord
from services.common.db.repository import get_data_set, get_job, insert_job
from services.scheduler import store
from services.scheduler.constants import PRIORITY_RUN, PRODUCER
from services.scheduler.data_checks import check_job_data
from services.scheduler.federated_status import FederatedStatus
from services.scheduler.spec import JobSpec, SpecError, required_data_sets
from services.scheduler.spec_parser import load_spec_json, parse_job_spec
from services.scheduler.task_conf import component_session_id, new_job_id, task_id_of
from services.scheduler.work_mode import check_work_mode


class Submission(FederatedStatus):
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
        # Alone, the job is written with its run_job in one transaction; with peers run_job
        # is queued once every member has the job.
        await self._write_job(job_id, spec, job_id, queue=not others)
        if not others:
            await self._register_sessions(job_id, spec, job_id)
            return job_id
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
        session = request.federation_session_id or request.job_id
        await self._write_job(request.job_id, spec, session, queue=False)
        await self._register_sessions(request.job_id, spec, session)
        await self._enqueue(ACTION_RUN_JOB, request.job_id)
        return "created"

    async def _check_local_data(self, spec: JobSpec, *, error: type[WeftError]) -> None:
        for ref in required_data_sets(spec, self.me):
            # The data set's files answer at once; the registry is read only when they are missing.
            if await asyncio.to_thread(self.data_store.exists, ref.namespace, ref.name):
                continue
            if await get_data_set(self.engine, ref.namespace, ref.name) is None:
                raise error(f"{ref.field}: data set {ref.namespace}/{ref.name} is not registered at member {self.me}")
        await asyncio.to_thread(check_job_data, spec, self.me, self.data_store)

    async def _write_job(self, job_id: str, spec: JobSpec, session_prefix: str, *, queue: bool) -> None:
        """Write the job and every member's tasks (and, with `queue`, its run_job action)."""
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
        self._specs[job_id] = spec
        if queue:
            await store.insert_job_and_queue(
                self.engine, record, tasks, ACTION_RUN_JOB, PRODUCER, PRIORITY_RUN,
                hand_to=f"{self.settings.consumer_name}-submit", lease_seconds=self.settings.lease_seconds,
            )
        else:
            await insert_job(self.engine, record, tasks)
