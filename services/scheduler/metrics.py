"""The scheduler's own Prometheus metrics: jobs by status, the action queue, task durations, database
errors, and tasks waiting on a peer.

Jobs and the queue are member-wide facts kept in the database, so they are read from it when
Prometheus scrapes (every replica reports the same values: dashboards take the max per member).
Task durations are observed by the replica that follows the task to its end; database errors by
the replica that met them; tasks blocked on another member's message (the diagnosis of
`diagnosis.py`) by the replica that follows them (dashboards and alerts take the max or sum per
member).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from protos.weft.v1 import executor_pb2
from services.common.db.constants import (
    STATUS_FAILED,
    STATUS_RUNNING,
    STATUS_STOPPED,
    STATUS_SUCCESS,
    STATUS_WAITING,
)
from services.common.db.engine import is_transient
from services.common.db.schema import flow_action_queue, job
from services.common.observability import ServiceMetrics

log = logging.getLogger("weft.scheduler.metrics")

JOB_STATUSES: Final = (STATUS_WAITING, STATUS_RUNNING, STATUS_SUCCESS, STATUS_FAILED, STATUS_STOPPED)
#: A scrape waits this long for the database before it reports it down.
SCRAPE_QUERY_TIMEOUT_S: Final = 5.0
#: Task durations: a second-long local task up to a day-long Spark training.
TASK_DURATION_BUCKETS: Final = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
                                21600.0, 86400.0)
DB_ERROR_KINDS: Final = ("transient", "other")


@dataclass(frozen=True)
class QueueSnapshot:
    """What the database holds when Prometheus scrapes."""

    jobs: dict[str, int]
    actions: int
    claimed_actions: int
    oldest_action_created_at: float | None


async def read_snapshot(engine: AsyncEngine) -> QueueSnapshot:
    async with engine.connect() as conn:
        jobs = {str(status): int(count) for status, count in
                (await conn.execute(sa.select(job.c.status, sa.func.count()).group_by(job.c.status))).all()}
        row = (await conn.execute(sa.select(
            sa.func.count(), sa.func.count(flow_action_queue.c.claimed_by),
            sa.func.min(flow_action_queue.c.created_at)))).one()
    oldest = row[2]
    return QueueSnapshot(jobs, int(row[0] or 0), int(row[1] or 0), float(oldest) if oldest is not None else None)


class DatabaseCollector(Collector):
    """Reads jobs and queue from the database on each scrape, on the scheduler's event loop."""

    def __init__(self, engine: AsyncEngine, loop: asyncio.AbstractEventLoop) -> None:
        self.engine = engine
        self.loop = loop

    def describe(self) -> list[Metric]:
        return []  # produced per scrape; nothing is queried at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("weft_scheduler_database_up",
                               "1 when the last scrape could read the member's database")
        try:
            future = asyncio.run_coroutine_threadsafe(read_snapshot(self.engine), self.loop)
            snapshot = future.result(timeout=SCRAPE_QUERY_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a scrape reports the database down, it never fails
            log.warning("metrics: cannot read jobs and queue from the database: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily("weft_scheduler_jobs", "jobs of this member by status", labels=["status"])
        for status in sorted(set(JOB_STATUSES) | set(snapshot.jobs)):
            jobs.add_metric([status], snapshot.jobs.get(status, 0))
        yield jobs
        actions = GaugeMetricFamily("weft_scheduler_queue_actions",
                                    "actions in the queue, by whether a consumer holds them", labels=["state"])
        actions.add_metric(["claimed"], snapshot.claimed_actions)
        actions.add_metric(["waiting"], snapshot.actions - snapshot.claimed_actions)
        yield actions
        age = 0.0 if snapshot.oldest_action_created_at is None else \
            max(0.0, time.time() - snapshot.oldest_action_created_at)
        yield GaugeMetricFamily("weft_scheduler_queue_oldest_action_age_seconds",
                                "age of the oldest action still in the queue (0 when it is empty)", value=age)


async def _call(source: Callable[[], Sequence[executor_pb2.TaskWaiting]]) -> list[executor_pb2.TaskWaiting]:
    return list(source())


class PeerWaitCollector(Collector):
    """Running tasks of this replica blocked on a get from another member, read at each scrape.

    `source` returns the blocking get each such task reported last (it is read on the
    scheduler's event loop, where those reports arrive).
    """

    def __init__(self, source: Callable[[], Sequence[executor_pb2.TaskWaiting]],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.source = source
        self.loop = loop

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            waits = asyncio.run_coroutine_threadsafe(_call(self.source), self.loop).result(SCRAPE_QUERY_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a scrape leaves the series out, it never fails
            log.warning("metrics: cannot read the tasks waiting on a peer: %s", exc)
            return
        now_ms = time.time() * 1000.0
        longest = max((max(0.0, now_ms - w.since_ms) / 1000.0 for w in waits), default=0.0)
        yield GaugeMetricFamily("weft_scheduler_tasks_waiting_on_peer",
                                "running tasks blocked on a message from another member right now",
                                value=len(waits))
        yield GaugeMetricFamily("weft_scheduler_peer_wait_longest_seconds",
                                "how long the task that has waited longest on another member has waited "
                                "(0 when none waits); `weft job` names the member and the variable",
                                value=longest)


class SchedulerMetrics:
    """The scheduler's metrics, on the registry of its ServiceMetrics."""

    def __init__(self, service: ServiceMetrics) -> None:
        self.registry = service.registry
        self.task_duration = Histogram(
            "weft_scheduler_task_duration_seconds", "from a task's start to its end, by component and status",
            ["component", "status"], buckets=TASK_DURATION_BUCKETS, registry=self.registry)
        self.database_errors = Counter(
            "weft_scheduler_database_errors", "errors the database returned (transient ones are retried)",
            ["kind"], registry=self.registry)
        for kind in DB_ERROR_KINDS:
            self.database_errors.labels(kind=kind)  # exported at 0 from the start: rate() needs a baseline

    def observe_task(self, component: str, status: str, seconds: float) -> None:
        """A task of this member ended after `seconds` of running."""
        self.task_duration.labels(component=component, status=status).observe(max(0.0, seconds))

    def watch_database(self, engine: AsyncEngine, loop: asyncio.AbstractEventLoop) -> None:
        """Count the engine's errors and read jobs and queue from it at each scrape."""
        sa.event.listen(engine.sync_engine, "handle_error", self._database_error)
        self.registry.register(DatabaseCollector(engine, loop))

    def watch_peer_waits(self, source: Callable[[], Sequence[executor_pb2.TaskWaiting]],
                         loop: asyncio.AbstractEventLoop) -> None:
        """Report the tasks waiting on a peer that `source` (read on `loop`) returns at each scrape."""
        self.registry.register(PeerWaitCollector(source, loop))

    def _database_error(self, context: ExceptionContext) -> None:
        error = context.sqlalchemy_exception
        kind = "transient" if error is not None and is_transient(error) else "other"
        self.database_errors.labels(kind=kind).inc()
