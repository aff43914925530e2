"""The job state machine: submission, the queue consumers, dispatch, task events, federated status."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.constants import (
    BACKEND_CODES,
    BACKEND_LOCAL,
    BACKEND_SPARK,
    WORK_MODE_CLUSTER,
    WORK_MODE_CODES,
)
from kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
    WeftError,
)
from kernel.storage import DataStore
from protos.weft.v1 import common_pb2, executor_pb2, scheduler_pb2
from services.common.db.constants import (
    ACTION_RERUN_JOB,
    ACTION_RUN_JOB,
    ACTION_STOP_JOB,
    OUTCOME_FAILED,
    OUTCOME_SUCCESS,
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
from services.common.db.engine import is_transient
from services.common.db.queue import (
    ClaimedAction,
    complete_action,
    enqueue_action,
    release_action,
    wait_for_action,
)
from services.common.db.repository import (
    JobRecord,
    TaskProgressRecord,
    TaskRecord,
    TaskResultRecord,
    get_data_set,
    get_job,
    get_task,
    insert_job,
    list_task_progress,
    list_tasks,
    upsert_task_progress,
    upsert_task_result,
)
from services.scheduler import store
from services.scheduler.constants import (
    EXECUTOR_REATTACH_ATTEMPTS,
    PEER_RETRY_BASE_S,
    PEER_RETRY_MAX_S,
    PRIORITY_RUN,
    PRIORITY_STOP,
    PRODUCER,
    QUEUE_FALLBACK_S,
)
from services.scheduler.events import JobEvents
from services.scheduler.executors import ExecutorPool
from services.scheduler.peers import PeerClient, TransferClient
from services.scheduler.spec import (
    JobSpec,
    Party,
    SpecError,
    load_spec_json,
    parse_job_spec,
    required_data_sets,
)
from services.scheduler.task_conf import (
    build_runtime_conf,
    component_session_id,
    new_job_id,
    task_id_of,
)
from services.scheduler.views import (
    JOB_STATUS,
    JOB_STATUS_NAME,
    TASK_STATUS,
    TASK_STATUS_NAME,
    job_info,
    job_task,
)

log = logging.getLogger("weft.scheduler")


@dataclass(frozen=True)
class SchedulerSettings:
    """What one scheduler process needs to know about itself."""

    member_id: str
    storage_root: Path
    lease_seconds: float = 30.0
    consumers: int = 1
    auto_retries: int = 0
    #: Members a submitted spec may name (this one and its peers); None: any.
    known_members: frozenset[str] | None = None
    #: Names this process's queue consumers (unique per replica).
    consumer_name: str = f"{socket.gethostname()}-{os.getpid()}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _backend(job_parameters: dict[str, Any]) -> int:
    value = job_parameters.get("backend", BACKEND_LOCAL)
    name = BACKEND_CODES.get(value, "") if isinstance(value, int) else str(value).upper()
    return {BACKEND_LOCAL: common_pb2.BACKEND_LOCAL, BACKEND_SPARK: common_pb2.BACKEND_SPARK}.get(
        name, common_pb2.BACKEND_UNSPECIFIED
    )


def _is_cluster(job_parameters: dict[str, Any]) -> bool:
    value = job_parameters.get("work_mode", 0)
    name = WORK_MODE_CODES.get(value, "") if isinstance(value, int) else str(value).upper()
    return name == WORK_MODE_CLUSTER


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


class Scheduler:
    """One member's scheduler: owns its queue consumers, task watchers and peer calls."""

    def __init__(
        self,
        settings: SchedulerSettings,
        engine: AsyncEngine,
        peers: PeerClient,
        executors: ExecutorPool,
        transfer: TransferClient | None = None,
    ) -> None:
        self.settings = settings
        self.me = settings.member_id
        self.engine = engine
        self.peers = peers
        self.executors = executors
        self.transfer = transfer
        self.events = JobEvents()
        self.data_store = DataStore(str(settings.storage_root / "data"))
        self._specs: dict[str, JobSpec] = {}
        self._job_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._push_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._report_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._consumers: list[asyncio.Task[None]] = []
        #: Jobs stopped or failed here: a task that reaches an executor late is stopped at once.
        self._halted: set[str] = set()
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover unfinished jobs, then start the queue consumers."""
        await self.recover()
        for index in range(self.settings.consumers):
            name = f"{self.settings.consumer_name}-{index}"
            self._consumers.append(asyncio.create_task(self._consume(name), name=f"consumer-{index}"))

    async def close(self) -> None:
        self._closing = True
        tasks = [*self._consumers, *self._watchers.values(), *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.events.close()
        await self.executors.close()
        await self.peers.close()
        if self.transfer is not None:
            await self.transfer.close()

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        async def run() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed", name)

        task = asyncio.create_task(run(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- queue -----------------------------------------------------------------------------

    async def _enqueue(self, action: str, job_id: str, priority: int = PRIORITY_RUN, **params: Any) -> None:
        await enqueue_action(self.engine, action, {"job_id": job_id, **params}, PRODUCER, priority)

    async def _consume(self, consumer: str) -> None:
        """Claim actions (woken by enqueues, no polling on the hot path) and run them."""
        while not self._closing:
            try:
                action = await wait_for_action(
                    self.engine, consumer, self.settings.lease_seconds, QUEUE_FALLBACK_S
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database is unreachable: its lease rules make retrying safe.
                log.exception("claiming from flow_action_queue failed; retrying")
                await asyncio.sleep(QUEUE_FALLBACK_S)
                continue
            outcome, error = OUTCOME_SUCCESS, None
            try:
                await self._handle(action)
            except asyncio.CancelledError:
                await asyncio.shield(self._release(action.id, consumer))
                raise
            except Exception as exc:
                if is_transient(exc):
                    # The database stayed busy through its retries: hand the action back for
                    # another claim (its attempts are counted) instead of dropping the job's step.
                    log.warning("action %s %s met a busy database; releasing it for another attempt",
                                action.action, action.params)
                    await asyncio.sleep(QUEUE_FALLBACK_S)
                    await self._release(action.id, consumer)
                    continue
                log.exception("action %s %s failed", action.action, action.params)
                outcome, error = OUTCOME_FAILED, f"{type(exc).__name__}: {exc}"
            try:
                await complete_action(self.engine, action.id, consumer, outcome, error)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Not completed: the lease expires and the action is claimed again.
                log.exception("completing action %d failed", action.id)

    async def _release(self, action_id: int, consumer: str) -> None:
        try:
            await release_action(self.engine, action_id, consumer)
        except Exception:
            # Not released: its lease expires and it is claimed again.
            log.exception("releasing action %d failed", action_id)

    async def _handle(self, action: ClaimedAction) -> None:
        job_id = str(action.params.get("job_id", ""))
        if action.action in (ACTION_RUN_JOB, ACTION_RERUN_JOB):
            await self.advance(job_id)
        elif action.action == ACTION_STOP_JOB:
            await self._stop_local_tasks(job_id, str(action.params.get("reason", "job stopped")))
        else:
            raise InvalidArgument(f"unknown action {action.action!r}")

    # -- specs and rows ---------------------------------------------------------------------

    async def _job(self, job_id: str) -> JobRecord:
        job = await get_job(self.engine, job_id)
        if job is None:
            raise NotFound(f"job {job_id!r} not found at member {self.me}")
        return job

    def _spec(self, job: JobRecord) -> JobSpec:
        spec = self._specs.get(job.job_id)
        if spec is None:
            spec = parse_job_spec(job.spec, local_member_id=self.me, require_local_initiator=False)
            self._specs[job.job_id] = spec
        return spec

    async def _check_local_data(self, spec: JobSpec, *, error: type[WeftError]) -> None:
        for ref in required_data_sets(spec, self.me):
            registered = await get_data_set(self.engine, ref.namespace, ref.name)
            if registered is None and not await asyncio.to_thread(self.data_store.exists, ref.namespace, ref.name):
                raise error(f"{ref.field}: data set {ref.namespace}/{ref.name} is not registered at member {self.me}")

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
            await store.insert_job_and_queue(self.engine, record, tasks, ACTION_RUN_JOB, PRODUCER, PRIORITY_RUN)
        else:
            await insert_job(self.engine, record, tasks)

    async def _register_sessions(self, job_id: str, spec: JobSpec, session_prefix: str,
                                 components: Collection[str] | None = None) -> None:
        if self.transfer is None or not _is_cluster(spec.job_parameters):
            return  # STANDALONE tasks exchange messages through the spool, not the transfer service
        parties = [(p.role, p.member_id) for p in spec.parties()]
        for name in components if components is not None else spec.components:
            await self.transfer.register_session(component_session_id(session_prefix, name), job_id, parties)

    # -- SubmitJob and CreateJob ------------------------------------------------------------

    async def submit_job(self, spec_json: str) -> str:
        """Validate, create the job here and at every other member, queue run_job; the job id."""
        spec = parse_job_spec(
            load_spec_json(spec_json), local_member_id=self.me, known_members=self.settings.known_members
        )
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

    async def create_job(self, request: scheduler_pb2.CreateJobRequest, caller: str | None) -> str:
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

    def _check_caller(self, sender: str, caller: str | None) -> None:
        if not sender:
            raise InvalidArgument("sender_member_id: empty")
        if caller is not None and caller != sender:
            raise PermissionDenied(f"sender_member_id {sender} is not the calling member {caller}")

    # -- advancing a job -------------------------------------------------------------------

    async def advance(self, job_id: str) -> None:
        """Dispatch every task of this member whose upstream tasks here have succeeded."""
        if job_id in self._halted:
            return
        job, mine = await store.load_job_and_tasks(self.engine, job_id, self.me)
        if job is None or job.status in TERMINAL_STATUSES:
            return
        spec = self._spec(job)
        by_key = {(t.component, t.role): t for t in mine}
        for record in mine:
            if record.status == STATUS_WAITING and record.executor is None:
                if self._upstream_done(spec, by_key, record.component, record.role):
                    await self._dispatch(spec, record)

    def _upstream_done(self, spec: JobSpec, by_key: dict[tuple[str, str], TaskRecord],
                       component: str, role: str) -> bool:
        for upstream in spec.components[component].upstream:
            record = by_key.get((upstream, role))
            if record is None:
                # The upstream does not run in this role (an arbiter's DataIO): look past it.
                if not self._upstream_done(spec, by_key, upstream, role):
                    return False
            elif record.status != STATUS_SUCCESS:
                return False
        return True

    async def _dispatch(self, spec: JobSpec, record: TaskRecord) -> None:
        try:
            executor = await self.executors.pick(record.job_id)
        except Unavailable as exc:
            await self._task_failed(record, str(exc))
            return
        if not await store.claim_for_dispatch(self.engine, record.task_id, executor):
            return  # another consumer or replica dispatched it
        session = record.session_id or component_session_id(record.job_id, record.component)
        conf = build_runtime_conf(
            spec, record.component, Party(record.role, self.me), job_id=record.job_id,
            session_id=session, task_id=record.task_id,
        )
        task_spec = executor_pb2.TaskSpec(
            job_id=record.job_id, task_id=record.task_id, component_name=record.component,
            module=record.module, role=record.role, member_id=self.me, federation_session_id=session,
            runtime_conf_json=json.dumps(conf), priority=0, backend=_backend(spec.job_parameters),  # type: ignore[arg-type]
            attempt=record.attempt,
        )
        self._follow_task(record, executor, lambda: self.executors.run_task(executor, task_spec))

    def _follow_task(self, record: TaskRecord, executor: str,
                     open_stream: Callable[[], AsyncIterator[executor_pb2.TaskEvent]]) -> None:
        previous = self._watchers.get(record.task_id)
        if previous is not None and not previous.done():
            previous.cancel()
        task = asyncio.create_task(self._follow(record, executor, open_stream), name=f"task-{record.task_id}")
        self._watchers[record.task_id] = task
        task.add_done_callback(lambda t: self._watchers.pop(record.task_id, None) if self._watchers.get(record.task_id) is t else None)

    async def _follow(self, record: TaskRecord, executor: str,
                      open_stream: Callable[[], AsyncIterator[executor_pb2.TaskEvent]]) -> None:
        """Consume a task's event stream; re-attach with WatchTask when the stream breaks."""
        failures = 0
        try:
            while True:
                try:
                    async for event in open_stream():
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
                if failures >= EXECUTOR_REATTACH_ATTEMPTS:
                    await self._task_lost(record, f"lost contact with executor {executor}: {reason}")
                    return
                # Backoff between re-attach attempts (the executor may be restarting).
                await asyncio.sleep(min(PEER_RETRY_MAX_S, PEER_RETRY_BASE_S * 2 ** failures))
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
            await self._task_progress(record, event.progress.percent, event.progress.message)
        elif kind == "metric":
            await self._task_metric(record, event.metric, event.timestamp_ms)
        elif kind == "finished":
            await self._task_finished(record, event.finished)
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
        recorded_at_ms = timestamp_ms or _now_ms()
        value = {"name": metric.name, "namespace": metric.namespace, "metric_type": metric.metric_type,
                 "points": points, "recorded_at_ms": recorded_at_ms}
        await upsert_task_result(self.engine, TaskResultRecord(
            record.task_id, record.job_id, record.component, record.role, self.me, RESULT_METRIC,
            f"{metric.namespace}/{metric.name}", value,
        ))
        self.events.publish(scheduler_pb2.JobEvent(
            job_id=record.job_id, timestamp_ms=_now_ms(),
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

    # -- federated status -------------------------------------------------------------------

    def _publish_task(self, record: TaskRecord) -> None:
        self.events.publish(scheduler_pb2.JobEvent(
            job_id=record.job_id, timestamp_ms=_now_ms(),
            task_status=scheduler_pb2.TaskStatusEvent(
                task=job_task(record).key, status=TASK_STATUS[record.status],  # type: ignore[arg-type]
                attempt=record.attempt, error=record.error or "",
            ),
        ))

    def _publish_progress(self, record: TaskRecord, percent: float, message: str) -> None:
        self.events.publish(scheduler_pb2.JobEvent(
            job_id=record.job_id, timestamp_ms=_now_ms(),
            task_progress=scheduler_pb2.TaskProgressEvent(task=job_task(record).key, percent=percent, message=message),
        ))

    def _publish_job(self, job: JobRecord) -> None:
        self.events.publish(scheduler_pb2.JobEvent(
            job_id=job.job_id, timestamp_ms=_now_ms(),
            job_status=scheduler_pb2.JobStatusEvent(
                status=JOB_STATUS[job.status], progress=job.progress * 100.0, message=job.message or "",  # type: ignore[arg-type]
            ),
        ))

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
            error=record.error or "", timestamp_ms=_now_ms(),
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

    async def report_task_status(self, request: scheduler_pb2.ReportTaskStatusRequest, caller: str | None) -> None:
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
                    tasks=[job_task(t) for t in tasks], timestamp_ms=_now_ms(),
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

    async def push_job_status(self, request: scheduler_pb2.PushJobStatusRequest, caller: str | None) -> None:
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

    async def _finish_as_initiator(self, job_id: str, status: str, message: str) -> None:
        if await store.set_job_state(self.engine, job_id, status, message=message):
            self._publish_job(await self._job(job_id))
            self._push(job_id)
        await self._halt(job_id, message)

    # -- StopJob and RerunJob ---------------------------------------------------------------

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

    async def peer_stop_job(self, request: scheduler_pb2.PeerStopJobRequest, caller: str | None) -> None:
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

    async def peer_rerun_job(self, request: scheduler_pb2.PeerRerunJobRequest, caller: str | None) -> None:
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

    # -- recovery ---------------------------------------------------------------------------

    async def recover(self) -> None:
        """After a restart: re-attach to dispatched tasks, recompute or re-report, re-queue jobs."""
        from services.common.db.repository import list_jobs

        offset = 0
        jobs: list[JobRecord] = []
        while True:
            page = await list_jobs(self.engine, statuses=UNFINISHED_STATUSES, limit=500, offset=offset)
            jobs.extend(page)
            if len(page) < 500:
                break
            offset += 500
        for job in jobs:
            mine = await list_tasks(self.engine, job_id=job.job_id, member_id=self.me)
            for record in mine:
                if record.status in UNFINISHED_STATUSES and record.executor:
                    self._reattach(record, record.executor)
                elif job.initiator_member_id != self.me and record.status != STATUS_WAITING:
                    self._report(record)
            if job.initiator_member_id == self.me:
                await self._recompute(job.job_id)
            await self._enqueue(ACTION_RUN_JOB, job.job_id)
        if jobs:
            log.info("recovered %d unfinished job(s)", len(jobs))

    def _reattach(self, record: TaskRecord, executor: str) -> None:
        def watch() -> AsyncIterator[executor_pb2.TaskEvent]:
            return self.executors.watch_task(executor, record.task_id)

        self._follow_task(record, executor, watch)

    # -- reads ------------------------------------------------------------------------------

    async def job_info(self, job_id: str) -> scheduler_pb2.JobInfo:
        job = await self._job(job_id)
        tasks = await list_tasks(self.engine, job_id=job_id)
        progress = {p.task_id: p.progress for p in await list_task_progress(self.engine, job_id)}
        return job_info(job, tasks, progress)

    async def watch_job(self, job_id: str, include_metrics: bool) -> AsyncIterator[scheduler_pb2.JobEvent]:
        """The current state first, then every event until the job ends."""
        queue = self.events.subscribe(job_id)
        try:
            snapshot = await self.job_info(job_id)
            seq = 1
            yield scheduler_pb2.JobEvent(job_id=job_id, seq=seq, timestamp_ms=_now_ms(), snapshot=snapshot)
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
