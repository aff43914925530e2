"""Database records to protobuf messages and back: statuses, jobs, tasks, data sets."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Final

from protos.weft.v1 import common_pb2, scheduler_pb2
from services.common.db.constants import (
    STATUS_FAILED,
    STATUS_RUNNING,
    STATUS_STOPPED,
    STATUS_SUCCESS,
    STATUS_WAITING,
)
from services.common.db.records import DataSetRecord, JobRecord, TaskRecord

JOB_STATUS: Final[dict[str, int]] = {
    STATUS_WAITING: common_pb2.JOB_STATUS_WAITING,
    STATUS_RUNNING: common_pb2.JOB_STATUS_RUNNING,
    STATUS_SUCCESS: common_pb2.JOB_STATUS_SUCCESS,
    STATUS_FAILED: common_pb2.JOB_STATUS_FAILED,
    STATUS_STOPPED: common_pb2.JOB_STATUS_STOPPED,
}
JOB_STATUS_NAME: Final[dict[int, str]] = {code: name for name, code in JOB_STATUS.items()}
TASK_STATUS: Final[dict[str, int]] = {
    STATUS_WAITING: common_pb2.TASK_STATUS_WAITING,
    STATUS_RUNNING: common_pb2.TASK_STATUS_RUNNING,
    STATUS_SUCCESS: common_pb2.TASK_STATUS_SUCCESS,
    STATUS_FAILED: common_pb2.TASK_STATUS_FAILED,
    STATUS_STOPPED: common_pb2.TASK_STATUS_STOPPED,
}
TASK_STATUS_NAME: Final[dict[int, str]] = {code: name for name, code in TASK_STATUS.items()}


def ms(seconds: float | None) -> int:
    """Epoch seconds (or None) as the protos' epoch milliseconds (0 = not yet)."""
    return int(seconds * 1000) if seconds else 0


def task_key(task: TaskRecord) -> common_pb2.TaskKey:
    return common_pb2.TaskKey(
        job_id=task.job_id, task_id=task.task_id, component_name=task.component,
        party=common_pb2.Party(role=task.role, member_id=task.member_id),
    )


def job_task(task: TaskRecord, progress: float | None = None, waiting: str = "") -> scheduler_pb2.JobTask:
    """A task row as JobTask; `progress` is 0..1 (None: 100 for a success, else 0); `waiting` its diagnosis."""
    if progress is None:
        progress = 1.0 if task.status == STATUS_SUCCESS else 0.0
    return scheduler_pb2.JobTask(
        key=task_key(task), module=task.module, status=TASK_STATUS[task.status],  # type: ignore[arg-type]
        attempt=task.attempt, progress=progress * 100.0, executor=task.executor or "",
        pid=task.pid or 0, created_at_ms=ms(task.created_at), started_at_ms=ms(task.started_at),
        ended_at_ms=ms(task.ended_at), error=task.error or "", waiting=waiting,
    )


def job_info(
    job: JobRecord,
    tasks: Iterable[TaskRecord] = (),
    progress: Mapping[str, float] | None = None,
    waiting: Mapping[str, str] | None = None,
) -> scheduler_pb2.JobInfo:
    """A job row (and its task rows, with their progress and waiting diagnosis) as JobInfo."""
    roles = job.spec.get("role", {})
    parties = [
        common_pb2.Party(role=role, member_id=member)
        for role in ("promoter", "provider", "arbiter")
        for member in roles.get(role, [])
    ]
    progress = progress or {}
    waiting = waiting or {}
    return scheduler_pb2.JobInfo(
        job_id=job.job_id, name=job.name,
        initiator=common_pb2.Party(role=job.initiator_role, member_id=job.initiator_member_id),
        parties=parties, my_roles=list(job.my_roles), status=JOB_STATUS[job.status],  # type: ignore[arg-type]
        progress=job.progress * 100.0, spec_json=json.dumps(job.spec, sort_keys=True),
        message=job.message or "", created_at_ms=ms(job.created_at), started_at_ms=ms(job.started_at),
        ended_at_ms=ms(job.ended_at),
        tasks=[job_task(t, progress.get(t.task_id), waiting.get(t.task_id, "")) for t in tasks],
    )


def data_set_info(record: DataSetRecord) -> scheduler_pb2.DataSetInfo:
    return scheduler_pb2.DataSetInfo(
        ref=common_pb2.DataSetRef(namespace=record.namespace, name=record.name), uri=record.uri,
        row_count=record.row_count, column_count=record.column_count,
        columns=[scheduler_pb2.ColumnSchema(name=str(c.get("name", "")), type=str(c.get("type", "")))
                 for c in record.data_schema],
        id_column=record.id_column or "", label_column=record.label_column or "",
        description=record.description or "", created_at_ms=ms(record.created_at),
    )
