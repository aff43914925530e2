"""Three members (promoter, provider, arbiter) on loopback: success, failure, stop, rerun, scheduler SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from kernel.storage.constants import DATA_FILE
from protos.weft.v1 import common_pb2, scheduler_pb2
from tests.test_scheduler_spec import _create_database, _drop_database
from tests.test_scheduler_support import (
    ARBITER,
    PROMOTER,
    PROVIDER,
    REPO,
    Client,
    Member,
    distribution_spec,
    load_rows,
    start_members,
    stop_members,
)

MEMBERS = (PROMOTER, PROVIDER, ARBITER)
SUCCESS, FAILED, STOPPED = common_pb2.JOB_STATUS_SUCCESS, common_pb2.JOB_STATUS_FAILED, common_pb2.JOB_STATUS_STOPPED


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def database_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """One database per member: SQLite files, or three databases on the local MariaDB."""
    if request.param == "sqlite":
        yield {m: f"sqlite+aiosqlite:///{tmp_path / m[:6]}.db" for m in MEMBERS}
        return
    base = request.getfixturevalue("mysql_url")
    urls = {PROMOTER: base, PROVIDER: base + "_b", ARBITER: base + "_c"}
    for url in (urls[PROVIDER], urls[ARBITER]):
        _create_database(url)
    try:
        yield urls
    finally:
        for url in (urls[PROVIDER], urls[ARBITER]):
            _drop_database(url)


def _load_data(members: dict[str, Member]) -> None:
    load_rows(members[PROMOTER], "promoter_rows", 300, 1, True)
    load_rows(members[PROVIDER], "provider_rows", 200, 2, False, id_offset=1000)


@pytest.fixture()
async def federation(tmp_path: Path, database_urls: dict[str, str]) -> AsyncIterator[dict[str, Member]]:
    members = await start_members(tmp_path, database_urls)
    _load_data(members)
    try:
        yield members
    finally:
        await stop_members(members)


async def wait_task(client: Client, job_id: str, component: str, role: str, status: int, timeout: float = 60) -> None:
    """Follow WatchJob at `client` until the task of `component` at `role` reaches `status`."""

    async def follow() -> None:
        request = scheduler_pb2.WatchJobRequest(job_id=job_id)
        while True:
            async for event in client.stub.WatchJob(request):
                kind = event.WhichOneof("event")
                if kind == "snapshot" and any(
                    t.key.component_name == component and t.key.party.role == role and t.status == status
                    for t in event.snapshot.tasks
                ):
                    return
                if kind == "task_status" and event.task_status.task.component_name == component \
                        and event.task_status.task.party.role == role and event.task_status.status == status:
                    return
            # The job ended (its stream closes) while the task is still being stopped: look again.
            await asyncio.sleep(0.2)

    try:
        await asyncio.wait_for(follow(), timeout)
    except TimeoutError:
        info = await client.job(job_id)
        tasks = "; ".join(
            f"{t.key.component_name}/{t.key.party.role}: {common_pb2.TaskStatus.Name(t.status)} {t.error}".rstrip()
            for t in info.tasks)
        raise AssertionError(
            f"{component}/{role} did not reach {common_pb2.TaskStatus.Name(status)} in {timeout:g}s; job is "
            f"{common_pb2.JobStatus.Name(info.status)} ({info.message}); tasks: {tasks}") from None


async def test_job_runs_to_success_at_all_three_members(federation: dict[str, Member]) -> None:
    promoter = federation[PROMOTER]

    # Execute: DataIO at the data members, then Distribution merged by the arbiter.
    job_id = await promoter.client.submit(distribution_spec())
    final = await promoter.client.wait_status(job_id, {SUCCESS})

    # Assert: success everywhere with every task done, and the arbiter's merged metric.
    assert final.status == SUCCESS, final.message
    for member in federation.values():
        info = await member.client.wait_status(job_id, {SUCCESS}, timeout=30)
        assert info.status == SUCCESS and info.progress == 100.0
        assert sorted((t.key.component_name, t.key.party.role) for t in info.tasks) == [
            ("dataio_0", "promoter"), ("dataio_0", "provider"),
            ("distribution_0", "arbiter"), ("distribution_0", "promoter"), ("distribution_0", "provider")]
        assert all(t.status == common_pb2.TASK_STATUS_SUCCESS for t in info.tasks)
    metrics = await federation[ARBITER].client.stub.GetMetrics(scheduler_pb2.GetMetricsRequest(job_id=job_id))
    summary = [m for task in metrics.tasks for m in task.metrics if m.name == "global"]
    assert summary and summary[0].namespace == "distribution"
    results = await promoter.client.stub.GetTaskResult(
        scheduler_pb2.GetTaskResultRequest(job_id=job_id, component_name="dataio_0"))
    assert [(d.output_name, d.row_count) for r in results.results for d in r.data] == [("train", 300)]
    listed = await promoter.client.stub.ListJobs(scheduler_pb2.ListJobsRequest(statuses=[SUCCESS]))
    assert [j.job_id for j in listed.jobs] == [job_id]


async def test_provider_failure_fails_the_job_everywhere_with_the_cause(federation: dict[str, Member]) -> None:
    # Prepare: the provider's data file is damaged on disk after it was registered, which
    # no check at submit can see (the data set's recorded schema is intact).
    data_file = federation[PROVIDER].root / "storage" / "data" / "test" / "provider_rows" / DATA_FILE
    data_file.write_bytes(b"not a parquet file")
    spec = distribution_spec()

    # Execute
    job_id = await federation[PROMOTER].client.submit(spec)
    await federation[PROMOTER].client.wait_status(job_id, {FAILED})

    # Assert: failed at all three; the message names the provider, the component and the cause.
    for member in federation.values():
        info = await member.client.wait_status(job_id, {FAILED}, timeout=30)
        assert info.status == FAILED
        assert f"component dataio_0 failed at member {PROVIDER} (provider)" in info.message
        assert "parquet" in info.message.lower()
    # The arbiter's Distribution, waiting for the provider, is stopped rather than left to time out.
    await wait_task(federation[ARBITER].client, job_id, "distribution_0", "arbiter",
                    common_pb2.TASK_STATUS_STOPPED, timeout=30)


async def test_stop_job_mid_run_stops_every_member(federation: dict[str, Member]) -> None:
    # Prepare: the provider takes no part in Distribution, so the arbiter waits for it until stopped.
    spec = distribution_spec(distribution_roles=["promoter", "arbiter"])
    job_id = await federation[PROMOTER].client.submit(spec)
    await wait_task(federation[ARBITER].client, job_id, "distribution_0", "arbiter", common_pb2.TASK_STATUS_RUNNING)

    # Execute: stop it at a member that is not the initiator (forwarded to the initiator).
    reply = await federation[PROVIDER].client.stub.StopJob(
        scheduler_pb2.StopJobRequest(job_id=job_id, reason="test stop"))

    # Assert: stopped at all three; the arbiter's task process is gone.
    assert reply.status == STOPPED
    for member in federation.values():
        info = await member.client.wait_status(job_id, {STOPPED}, timeout=30)
        assert info.status == STOPPED and "test stop" in info.message
    arbiter = federation[ARBITER]
    await wait_task(arbiter.client, job_id, "distribution_0", "arbiter", common_pb2.TASK_STATUS_STOPPED, timeout=30)
    task = next(t for t in await arbiter.executor_tasks() if t.component_name == "distribution_0")
    assert task.status == common_pb2.TASK_STATUS_STOPPED and task.pid
    with pytest.raises(ProcessLookupError):
        os.kill(task.pid, 0)


async def test_rerun_reuses_successful_upstream_outputs(federation: dict[str, Member]) -> None:
    promoter = federation[PROMOTER]
    job_id = await promoter.client.submit(distribution_spec())
    assert (await promoter.client.wait_status(job_id, {SUCCESS})).status == SUCCESS

    # Execute: rerun Distribution only.
    reply = await promoter.client.stub.RerunJob(
        scheduler_pb2.RerunJobRequest(job_id=job_id, component_names=["distribution_0"]))
    final = await promoter.client.wait_status(job_id, {SUCCESS})

    # Assert: Distribution ran a second attempt everywhere; DataIO kept its first one.
    assert list(reply.component_names) == ["distribution_0"] and final.status == SUCCESS, final.message
    attempts = {(t.key.component_name, t.key.party.role): t.attempt for t in final.tasks}
    assert attempts == {("dataio_0", "promoter"): 1, ("dataio_0", "provider"): 1, ("distribution_0", "promoter"): 2,
                        ("distribution_0", "provider"): 2, ("distribution_0", "arbiter"): 2}
    for member in federation.values():
        runs = {t.component_name: t.attempt for t in await member.executor_tasks()}
        assert runs.get("dataio_0", 1) == 1 and runs["distribution_0"] == 2


def _launch_scheduler(member: Member) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WEFT_METRICS_PORT": "off", "PYTHONPATH": str(REPO)}
    log = open(member.root / "scheduler.log", "ab")  # noqa: SIM115 (the process owns it)
    return subprocess.Popen(
        [sys.executable, "-m", "services.scheduler", "--config", str(member.write_config())],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


async def _ready(endpoint: str, timeout: float = 60) -> None:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout)


async def test_initiator_killed_mid_job_and_restarted_still_finishes(
    tmp_path: Path, database_urls: dict[str, str]
) -> None:
    # Prepare: the initiator's scheduler runs as its own process; the others in this one.
    members = await start_members(tmp_path, database_urls, start=False)
    _load_data(members)
    promoter = members[PROMOTER]
    await promoter.start_transfer()
    process: subprocess.Popen[bytes] | None = _launch_scheduler(promoter)
    try:
        await _ready(promoter.endpoint)
        for member_id in (PROVIDER, ARBITER):
            await members[member_id].start_scheduler()
        job_id = await promoter.client.submit(distribution_spec())
        await wait_task(promoter.client, job_id, "dataio_0", "promoter", common_pb2.TASK_STATUS_RUNNING)

        # Execute: SIGKILL the initiator's scheduler while its task runs, then restart it.
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process = _launch_scheduler(promoter)
        await _ready(promoter.endpoint)
        final = await promoter.client.wait_status(job_id, {SUCCESS}, timeout=180)

        # Assert: the job finished everywhere; the promoter's DataIO ran once (re-attached).
        assert final.status == SUCCESS, final.message
        for member_id in (PROVIDER, ARBITER):
            assert (await members[member_id].client.wait_status(job_id, {SUCCESS}, timeout=30)).status == SUCCESS
        runs = [t for t in await promoter.executor_tasks() if t.component_name == "dataio_0"]
        assert [(t.attempt, t.status) for t in runs] == [(1, common_pb2.TASK_STATUS_SUCCESS)]
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        await stop_members(members)
