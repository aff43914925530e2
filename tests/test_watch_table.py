"""The `weft watch` table: a job's tasks in DAG order (from a real scheduler's GetJob and WatchJob),
with the elapsed time of each task."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.console import Console

from protos.weft.v1 import common_pb2, scheduler_pb2, scheduler_pb2_grpc
from services.client.render import JobView, dag_ranks, elapsed_text
from tests.security.client_kit import MEMBER, GuardedScheduler, guarded_scheduler

# Names whose alphabetical order is not the DAG's: zz_dataio -> aa_stats, and mm_merge reads both.
SPEC = {
    "name": "ordered", "initiator": {"member_id": MEMBER, "role": "promoter"}, "role": {"promoter": [MEMBER]},
    "job_args": {MEMBER: {"data": {"train": {"namespace": "x", "name": "rows"}}}},
    "components": {
        "mm_merge": {"module": "Distribution", "input": {"data": {"data": ["aa_stats.train"]}},
                     "output": {"data": ["train"]}},
        "aa_stats": {"module": "Distribution", "input": {"data": {"data": ["zz_dataio.train"]}},
                     "output": {"data": ["train"]}},
        "zz_dataio": {"module": "DataIO", "input": {"data": {"data": ["args.train"]}}, "output": {"data": ["train"]}},
    },
}
DAG = ["zz_dataio", "aa_stats", "mm_merge"]
ELAPSED = re.compile(r"\d+\.\d s|\d+m \d\ds|\d+h \d\dm")


@pytest.fixture()
async def member(tmp_path: Path) -> AsyncIterator[GuardedScheduler]:
    async with guarded_scheduler(tmp_path) as scheduler:
        data = b"id,y,x\nu1,0,1\nu2,1,2\n"
        header = scheduler_pb2.UploadDataSetHeader(
            namespace="x", name="rows", format=scheduler_pb2.DATA_FORMAT_CSV, id_column="id", label_column="y",
            total_size=len(data), sha256=hashlib.sha256(data).digest())
        await scheduler.call("UploadDataSet", iter([scheduler_pb2.UploadDataSetRequest(header=header),
                                                    scheduler_pb2.UploadDataSetRequest(chunk=data)]),
                             scheduler.admin_token)
        yield scheduler


async def _first_event(member: GuardedScheduler, job_id: str) -> scheduler_pb2.JobEvent:
    import grpc

    async with grpc.aio.insecure_channel(member.endpoint) as channel:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        stream = stub.WatchJob(scheduler_pb2.WatchJobRequest(job_id=job_id),
                               metadata=(("authorization", f"Bearer {member.admin_token}"),), timeout=30)
        async for event in stream:
            stream.cancel()
            return event
    raise AssertionError("WatchJob sent no event")


def _status(component: str, status: int, at_ms: int) -> scheduler_pb2.JobEvent:
    key = common_pb2.TaskKey(component_name=component, party=common_pb2.Party(role="promoter", member_id=MEMBER))
    return scheduler_pb2.JobEvent(timestamp_ms=at_ms, task_status=scheduler_pb2.TaskStatusEvent(task=key, status=status))


def _rows(view: JobView) -> list[str]:
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(view.table())
    lines = console.export_text().splitlines()
    return [line for line in lines if any(name in line for name in DAG)]


async def test_get_job_lists_tasks_in_dag_order(member: GuardedScheduler) -> None:
    # Prepare
    job_id = (await member.call("SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=json.dumps(SPEC)),
                                member.admin_token)).job_id

    # Execute
    job = (await member.call("GetJob", scheduler_pb2.GetJobRequest(job_id=job_id), member.admin_token)).job
    snapshot = (await _first_event(member, job_id)).snapshot

    # Assert
    assert [t.key.component_name for t in job.tasks] == DAG
    assert [t.key.component_name for t in snapshot.tasks] == DAG


async def test_the_watch_table_shows_tasks_in_dag_order_with_their_elapsed_time(member: GuardedScheduler) -> None:
    # Prepare: the job's real first WatchJob event, then its tasks' status changes
    job_id = (await member.call("SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=json.dumps(SPEC)),
                                member.admin_token)).job_id
    snapshot = await _first_event(member, job_id)
    start_ms = 1_800_000_000_000
    now_s = start_ms / 1000 + 200.0
    view = JobView(job_id, Console(file=io.StringIO()), clock=lambda: now_s)
    view.update(snapshot)
    before = _rows(view)

    # Execute: zz_dataio ran 3.2 s; aa_stats runs since 125 s before now; mm_merge has not started
    for event in (_status("zz_dataio", common_pb2.TASK_STATUS_RUNNING, start_ms),
                  _status("zz_dataio", common_pb2.TASK_STATUS_SUCCESS, start_ms + 3_200),
                  _status("aa_stats", common_pb2.TASK_STATUS_RUNNING, start_ms + 75_000)):
        view.update(event)
    rows = _rows(view)

    # Assert: DAG order, not alphabetical; elapsed per task (blank before a task starts)
    assert [next(name for name in DAG if name in row) for row in before] == DAG
    assert [next(name for name in DAG if name in row) for row in rows] == DAG
    assert "success" in rows[0] and "3.2 s" in rows[0]
    assert "running" in rows[1] and "2m 05s" in rows[1]
    assert "waiting" in rows[2] and ELAPSED.search(rows[2]) is None


def test_dag_ranks_follow_data_and_model_inputs() -> None:
    # Prepare: a model input makes `b_apply` come after `z_fit`, which reads `y_io`
    spec = {"components": {
        "b_apply": {"input": {"data": {"data": ["y_io.train"]}, "model": ["z_fit.model"]}},
        "z_fit": {"input": {"data": {"train_data": ["y_io.train"]}}},
        "y_io": {"input": {"data": {"data": ["args.train"]}}},
    }}

    # Execute
    ranks = dag_ranks(json.dumps(spec))

    # Assert
    assert sorted(ranks, key=ranks.__getitem__) == ["y_io", "z_fit", "b_apply"]
    assert dag_ranks("not json") == {}


@pytest.mark.parametrize(("seconds", "text"), [(0.04, "0.0 s"), (8.25, "8.2 s"), (185.0, "3m 05s"),
                                               (7440.0, "2h 04m")])
def test_elapsed_text(seconds: float, text: str) -> None:
    assert elapsed_text(seconds) == text
