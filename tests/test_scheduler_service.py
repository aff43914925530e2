"""One member's SchedulerService: data set upload, the seed-format conf, WatchJob, paging, retries."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy.exc import OperationalError

from kernel.runtime_conf import parse_runtime_conf
from protos.weft.v1 import common_pb2, executor_pb2, scheduler_pb2
from services.scheduler.scheduler import Scheduler
from services.scheduler.spec import Party
from services.scheduler.spec_parser import parse_job_spec
from services.scheduler.task_conf import build_runtime_conf
from tests.test_scheduler_support import PROMOTER, Member, start_members, stop_members, write_csv

SUCCESS, FAILED = common_pb2.JOB_STATUS_SUCCESS, common_pb2.JOB_STATUS_FAILED


def seed_like_spec(label: str = "y") -> dict[str, object]:
    """The seed's shape: one member as promoter and arbiter, DataIO then Distribution."""
    return {
        "name": "seed-like",
        "initiator": {"member_id": PROMOTER, "role": "promoter"},
        "role": {"promoter": [PROMOTER], "arbiter": [PROMOTER]},
        "job_args": {PROMOTER: {"data": {"train_data": {"namespace": "wefe_data", "name": "rows"}}}},
        "components": {
            "dataio_0": {"module": "DataIO", "input": {"data": {"data": ["args.train_data"]}},
                         "output": {"data": ["train"]}, "params": {"with_label": True, "label_name": label}},
            "distribution_0": {"module": "Distribution", "input": {"data": {"data": ["dataio_0.train"]}},
                               "output": {"data": ["data_name"], "model": ["model_name"]}},
        },
    }


@pytest.fixture()
async def member(tmp_path: Path) -> AsyncIterator[Member]:
    members = await start_members(tmp_path, {PROMOTER: f"sqlite+aiosqlite:///{tmp_path / 'promoter.db'}"},
                                  auto_retries=1)
    try:
        yield members[PROMOTER]
    finally:
        await stop_members(members)


def _upload(data: bytes, fmt: int, name: str, **header: object) -> list[scheduler_pb2.UploadDataSetRequest]:
    head = scheduler_pb2.UploadDataSetHeader(namespace="wefe_data", name=name, format=fmt, id_column="id",  # type: ignore[arg-type]
                                             total_size=len(data), sha256=hashlib.sha256(data).digest(), **header)
    chunks = [data[i:i + 1000] for i in range(0, len(data), 1000)]
    return [scheduler_pb2.UploadDataSetRequest(header=head)] + [
        scheduler_pb2.UploadDataSetRequest(chunk=c) for c in chunks]


async def _upload_rows(member: Member, tmp_path: Path, name: str = "rows") -> scheduler_pb2.DataSetInfo:
    data = write_csv(tmp_path / "rows.csv", 120, 3, with_label=True).read_bytes()
    requests = _upload(data, scheduler_pb2.DATA_FORMAT_CSV, name, label_column="y")
    return await member.client.stub.UploadDataSet(iter(requests))


async def test_upload_csv_and_parquet_then_list(member: Member, tmp_path: Path) -> None:
    # Prepare: a Parquet file of the same shape.
    table = pa.table({"id": ["a", "b", "c"], "x": [1.0, 2.0, 3.0]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)

    # Execute
    csv_info = await _upload_rows(member, tmp_path)
    parquet_info = await member.client.stub.UploadDataSet(
        iter(_upload(buffer.getvalue(), scheduler_pb2.DATA_FORMAT_PARQUET, "small")))
    listed = await member.client.stub.ListDataSets(scheduler_pb2.ListDataSetsRequest(namespace="wefe_data", page_size=1))
    rest = await member.client.stub.ListDataSets(
        scheduler_pb2.ListDataSetsRequest(namespace="wefe_data", page_size=1, page_token=listed.next_page_token))

    # Assert: registered with their shape, listed by name across two pages.
    assert (csv_info.row_count, csv_info.column_count, csv_info.label_column) == (120, 4, "y")
    assert parquet_info.row_count == 3 and [c.name for c in parquet_info.columns] == ["id", "x"]
    assert [d.ref.name for d in listed.data_sets] == ["rows"] and [d.ref.name for d in rest.data_sets] == ["small"]
    assert rest.next_page_token == ""


async def test_upload_refuses_a_taken_name_and_a_bad_digest(member: Member, tmp_path: Path) -> None:
    await _upload_rows(member, tmp_path)

    # Execute: the same name again; then bytes that do not match their digest.
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await _upload_rows(member, tmp_path)
    requests = _upload(b"id,x\n1,2\n", scheduler_pb2.DATA_FORMAT_CSV, "other")
    requests[0].header.sha256 = hashlib.sha256(b"something else").digest()
    with pytest.raises(grpc.aio.AioRpcError) as corrupt:
        await member.client.stub.UploadDataSet(iter(requests))

    # Assert
    assert taken.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert corrupt.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "sha256" in (corrupt.value.details() or "")


def test_runtime_conf_is_in_the_seed_format_and_accepted_by_the_task() -> None:
    # Prepare
    spec = parse_job_spec(seed_like_spec(), local_member_id=PROMOTER)

    # Execute
    conf = build_runtime_conf(spec, "distribution_0", Party("arbiter", PROMOTER), job_id="j1", session_id="j1.distribution_0")

    # Assert: the seed's keys, this member's job_args only, and the task's identity.
    assert {"initiator", "job_parameters", "role", "local", "job_args", "input", "output", "DistributionParam",
            "module", "role_params", "job_id", "task_id", "component_name", "federation_session_id"} <= set(conf)
    assert conf["local"] == {"member_id": PROMOTER, "role": "arbiter"}
    assert conf["role"] == {"promoter": [PROMOTER], "provider": [], "arbiter": [PROMOTER]}
    assert conf["input"] == {"data": {"data": ["dataio_0.train"]}}
    assert conf["task_id"] == f"j1_distribution_0_arbiter_{PROMOTER}"
    assert parse_runtime_conf(conf).module == "Distribution"


async def test_seed_like_job_runs_and_watch_gives_snapshot_first(member: Member, tmp_path: Path) -> None:
    await _upload_rows(member, tmp_path)

    # Execute: watch from the start, and once more after the end.
    job_id = await member.client.submit(seed_like_spec())
    events = [e async for e in member.client.stub.WatchJob(scheduler_pb2.WatchJobRequest(job_id=job_id))]
    late = [e async for e in member.client.stub.WatchJob(scheduler_pb2.WatchJobRequest(job_id=job_id))]

    # Assert: snapshot first, numbered events, the stream ends on success; a late watcher gets
    # only the final snapshot.
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "snapshot" and kinds[-1] == "job_status"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].job_status.status == SUCCESS
    assert "task_status" in kinds
    assert [e.WhichOneof("event") for e in late] == ["snapshot"] and late[0].snapshot.status == SUCCESS
    info = await member.client.job(job_id)
    assert sorted((t.key.component_name, t.key.party.role) for t in info.tasks) == [
        ("dataio_0", "promoter"), ("distribution_0", "arbiter"), ("distribution_0", "promoter")]
    ran = sorted((t.component_name, t.role, t.status) for t in await member.executor_tasks())
    assert ran == [("dataio_0", "promoter", common_pb2.TASK_STATUS_SUCCESS),
                   ("distribution_0", "arbiter", common_pb2.TASK_STATUS_SUCCESS),
                   ("distribution_0", "promoter", common_pb2.TASK_STATUS_SUCCESS)]


async def test_failed_task_is_retried_then_fails_the_job(member: Member, tmp_path: Path) -> None:
    await _upload_rows(member, tmp_path)

    # Execute: DataIO looks for a label the data does not have; auto_retries is 1.
    job_id = await member.client.submit(seed_like_spec(label="absent"))
    final = await member.client.wait_status(job_id, {FAILED})

    # Assert: two attempts, then the job failed naming the component, member and cause.
    dataio = next(t for t in final.tasks if t.key.component_name == "dataio_0")
    assert final.status == FAILED and dataio.attempt == 2
    assert f"component dataio_0 failed at member {PROMOTER} (promoter)" in final.message and "absent" in final.message


async def test_an_error_while_following_a_task_re_attaches_instead_of_abandoning_it(
    member: Member, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _upload_rows(member, tmp_path)
    apply_event = Scheduler._on_event
    broken: list[str] = []

    async def once_broken(self: Scheduler, record: object, executor: str, event: executor_pb2.TaskEvent) -> bool:
        if event.WhichOneof("event") == "started" and not broken:
            broken.append(event.task_id)
            raise RuntimeError("the database went away")
        return await apply_event(self, record, executor, event)  # type: ignore[arg-type]

    monkeypatch.setattr(Scheduler, "_on_event", once_broken)

    # Execute: the first task's "started" event fails to apply.
    job_id = await member.client.submit(seed_like_spec())
    final = await member.client.wait_status(job_id, {SUCCESS})

    # Assert: the scheduler followed that task again and the job still succeeded, one attempt each.
    assert broken and final.status == SUCCESS, final.message
    assert all(t.status == common_pb2.TASK_STATUS_SUCCESS and t.attempt == 1 for t in final.tasks)


async def test_a_run_step_that_meets_a_busy_database_is_tried_again(
    member: Member, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _upload_rows(member, tmp_path)
    advance = Scheduler.advance
    busy: list[str] = []

    async def once_busy(self: Scheduler, job_id: str) -> None:
        if not busy:
            busy.append(job_id)
            raise OperationalError("UPDATE task", {}, sqlite3.OperationalError("database is locked"))
        await advance(self, job_id)

    monkeypatch.setattr(Scheduler, "advance", once_busy)

    # Execute: the first run_job action a consumer handles (once the first tasks end) meets a locked database.
    job_id = await member.client.submit(seed_like_spec())
    final = await member.client.wait_status(job_id, {SUCCESS}, timeout=60)

    # Assert: the action was claimed again and the job ran to success.
    assert busy == [job_id] and final.status == SUCCESS, final.message


async def test_unknown_job_and_rerun_of_a_running_job(member: Member, tmp_path: Path) -> None:
    await _upload_rows(member, tmp_path)

    # Execute
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await member.client.job("no-such-job")
    job_id = await member.client.submit(seed_like_spec())
    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await member.client.stub.RerunJob(scheduler_pb2.RerunJobRequest(job_id=job_id))
    await member.client.wait_status(job_id, {SUCCESS})
    with pytest.raises(grpc.aio.AioRpcError) as nothing:
        await member.client.stub.RerunJob(scheduler_pb2.RerunJobRequest(job_id=job_id))
    listed = await member.client.stub.ListJobs(scheduler_pb2.ListJobsRequest(name_contains="SEED", role="arbiter"))

    # Assert
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    assert busy.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert nothing.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert [j.job_id for j in listed.jobs] == [job_id] and not listed.jobs[0].tasks
