"""The state one member's scheduler shares between its parts, and the helpers on it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Collection
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.constants import WORK_MODE_CLUSTER, WORK_MODE_CODES
from kernel.errors import InvalidArgument, NotFound, PermissionDenied
from kernel.storage import DataStore
from protos.weft.v1 import executor_pb2
from services.common.db.queue import enqueue_action
from services.common.db.records import JobRecord
from services.common.db.repository import get_job
from services.scheduler.constants import PRIORITY_RUN, PRODUCER
from services.scheduler.events import JobEvents
from services.scheduler.executors import ExecutorPool
from services.scheduler.peers import PeerClient, TransferClient
from services.scheduler.settings import SchedulerSettings
from services.scheduler.spec import JobSpec
from services.scheduler.spec_parser import parse_job_spec
from services.scheduler.task_conf import component_session_id

log = logging.getLogger("weft.scheduler")


def now_ms() -> int:
    """Now, in milliseconds since the epoch (the timestamps of events)."""
    return int(time.time() * 1000)


def is_cluster(job_parameters: dict[str, Any]) -> bool:
    """Whether a job runs in cluster mode (its tasks talk through the transfer service)."""
    value = job_parameters.get("work_mode", 0)
    name = WORK_MODE_CODES.get(value, "") if isinstance(value, int) else str(value).upper()
    return name == WORK_MODE_CLUSTER


class SchedulerState:
    """What every part of a scheduler shares: settings, database, peers, executors, specs, locks.

    The scheduler's responsibilities live in their own modules as classes built on this
    one; `services.scheduler.scheduler.Scheduler` joins them.
    """

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
        #: The blocking get each running task of this member reported last, by task id.
        self._waiting: dict[str, executor_pb2.TaskWaiting] = {}
        #: The last blocking get each running task reported, even once it ended (for its error).
        self._last_waiting: dict[str, executor_pb2.TaskWaiting] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._consumers: list[asyncio.Task[None]] = []
        #: Jobs stopped or failed here: a task that reaches an executor late is stopped at once.
        self._halted: set[str] = set()
        #: Tasks this process wrote claimed for an executor and has not sent yet (by task id).
        self._unsent: set[str] = set()
        self._closing = False

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

    def peer_waits(self) -> list[executor_pb2.TaskWaiting]:
        """The blocking get each running task of this replica waits in now (its diagnosis)."""
        return list(self._waiting.values())

    async def _enqueue(self, action: str, job_id: str, priority: int = PRIORITY_RUN, **params: Any) -> None:
        await enqueue_action(self.engine, action, {"job_id": job_id, **params}, PRODUCER, priority)

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

    def _check_caller(self, sender: str, caller: str) -> None:
        """The request's sender must be the member the relay verified (`caller`)."""
        if not sender:
            raise InvalidArgument("sender_member_id: empty")
        if caller != sender:
            raise PermissionDenied(f"sender_member_id {sender} is not the calling member {caller}")

    async def _register_sessions(self, job_id: str, spec: JobSpec, session_prefix: str,
                                 components: Collection[str] | None = None) -> None:
        if self.transfer is None or not is_cluster(spec.job_parameters):
            return  # STANDALONE tasks exchange messages through the spool, not the transfer service
        parties = [(p.role, p.member_id) for p in spec.parties()]
        for name in components if components is not None else spec.components:
            await self.transfer.register_session(component_session_id(session_prefix, name), job_id, parties)
