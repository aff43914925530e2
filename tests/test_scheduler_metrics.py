"""The scheduler's Prometheus metrics, scraped from a real /metrics endpoint: jobs by status, the
queue's depth and oldest action, database errors (from direct changes to a real database), and task
durations per component and tasks waiting on a peer (from a real federated job that waits)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from protos.weft.v1 import common_pb2
from services.common.db import create_engine, migrate
from services.common.db.records import JobRecord
from services.common.db.repository import insert_job
from services.common.db.schema import flow_action_queue
from services.common.observability import MetricsEndpoint, ServiceMetrics
from services.scheduler.metrics import SchedulerMetrics
from tests.test_job_diagnosis import _diagnosis
from tests.test_scheduler_federation import MEMBERS, wait_task
from tests.test_scheduler_support import (
    ARBITER,
    PROMOTER,
    PROVIDER,
    distribution_spec,
    load_rows,
    start_members,
    stop_members,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(endpoint: MetricsEndpoint) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path}/weft.db"
    await migrate(url)
    engine = create_engine(url)
    yield engine
    await engine.dispose()


async def test_jobs_queue_and_database_errors_are_read_from_the_database(engine: AsyncEngine) -> None:
    # Prepare: a scheduler's metrics on a real database and endpoint; jobs in three statuses, an
    # action waiting since two minutes and one held by a consumer
    service = ServiceMetrics("scheduler")
    metrics = SchedulerMetrics(service)
    metrics.watch_database(engine, asyncio.get_running_loop())
    endpoint = service.start_http_server(port=0, host="127.0.0.1")
    assert endpoint is not None
    member = "a" * 32
    for index, status in enumerate(["running", "running", "success", "failed"]):
        await insert_job(engine, JobRecord(job_id=f"job{index}", member_id=member, my_roles=["promoter"],
                                           initiator_member_id=member, initiator_role="promoter", spec={},
                                           status=status), [])
    now = time.time()
    async with engine.begin() as conn:
        await conn.execute(flow_action_queue.insert().values(
            producer="test", action="run_job", params={"job_id": "job0"}, created_at=now - 120))
        await conn.execute(flow_action_queue.insert().values(
            producer="test", action="run_job", params={"job_id": "job1"}, created_at=now - 5,
            claimed_by="replica-a", claimed_at=now, lease_until=now + 600, attempts=1))
    with pytest.raises(OperationalError):  # a statement the database refuses
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT * FROM no_such_table"))
    try:
        # Execute
        samples = await asyncio.to_thread(scrape, endpoint)
    finally:
        endpoint.close()

    # Assert
    jobs = {dict(labels)["status"]: value for (name, labels), value in samples.items()
            if name == "weft_scheduler_jobs"}
    assert jobs == {"waiting": 0, "running": 2, "success": 1, "failed": 1, "stopped": 0}
    assert samples[("weft_scheduler_queue_actions", (("state", "waiting"),))] == 1
    assert samples[("weft_scheduler_queue_actions", (("state", "claimed"),))] == 1
    assert samples[("weft_scheduler_queue_oldest_action_age_seconds", ())] >= 120
    assert samples[("weft_scheduler_database_errors_total", (("kind", "other"),))] == 1
    assert samples[("weft_scheduler_database_up", ())] == 1


async def test_a_waiting_job_shows_in_peer_waits_and_finished_tasks_in_durations(tmp_path: Path) -> None:
    # Prepare: three members; the promoter's and the arbiter's schedulers export metrics. The
    # provider takes no part in Distribution, so the arbiter's task waits on it.
    urls = {m: f"sqlite+aiosqlite:///{tmp_path / m[:6]}.db" for m in MEMBERS}
    members = await start_members(tmp_path, urls, get_timeout_s=600, start=False)
    load_rows(members[PROMOTER], "promoter_rows", 300, 1, True)
    load_rows(members[PROVIDER], "provider_rows", 200, 2, False, id_offset=1000)
    services = {member_id: ServiceMetrics("scheduler") for member_id in (PROMOTER, ARBITER)}
    endpoints: list[MetricsEndpoint] = []
    try:
        for member_id, member in members.items():
            await member.start_scheduler(metrics=services.get(member_id))
        for service in services.values():
            started = service.start_http_server(port=0, host="127.0.0.1")
            assert started is not None
            endpoints.append(started)
        promoter_endpoint, arbiter_endpoint = endpoints
        before = await asyncio.to_thread(scrape, arbiter_endpoint)
        job_id = await members[PROMOTER].client.submit(distribution_spec(distribution_roles=["promoter", "arbiter"]))
        await wait_task(members[PROMOTER].client, job_id, "dataio_0", "promoter", common_pb2.TASK_STATUS_SUCCESS)
        await wait_task(members[ARBITER].client, job_id, "distribution_0", "arbiter",
                        common_pb2.TASK_STATUS_RUNNING)
        await _diagnosis(members[ARBITER].client, job_id, PROVIDER)

        # Execute
        arbiter = await asyncio.to_thread(scrape, arbiter_endpoint)
        promoter = await asyncio.to_thread(scrape, promoter_endpoint)
    finally:
        for endpoint in endpoints:
            endpoint.close()
        await stop_members(members)

    # Assert: nothing waited before the job; then the arbiter's one task waits on a peer
    assert before[("weft_scheduler_tasks_waiting_on_peer", ())] == 0
    assert before[("weft_scheduler_peer_wait_longest_seconds", ())] == 0
    assert arbiter[("weft_scheduler_tasks_waiting_on_peer", ())] == 1
    assert arbiter[("weft_scheduler_peer_wait_longest_seconds", ())] > 0
    # the promoter's DataIO ended in success: one duration observed for that component
    key = ("weft_scheduler_task_duration_seconds_count", (("component", "dataio_0"), ("status", "success")))
    assert promoter[key] == 1
    assert promoter[("weft_scheduler_jobs", (("status", "running"),))] == 1
