"""Typed reads and writes of jobs, tasks, task progress and results, data sets and members."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.errors import FailedPrecondition, InvalidArgument
from services.common.db.constants import (
    DEFAULT_PAGE_SIZE,
    RESULT_KINDS,
    STATUS_RUNNING,
    STATUS_WAITING,
    STATUSES,
    TERMINAL_STATUSES,
)
from services.common.db.engine import is_sqlite, retry_transient, write_transaction
from services.common.db.records import (
    DataSetRecord,
    JobRecord,
    MemberRecord,
    TaskProgressRecord,
    TaskRecord,
    TaskResultRecord,
)
from services.common.db.schema import data_set, job, member, task, task_progress, task_result

R = TypeVar("R")


def _record(cls: type[R], row: sa.RowMapping) -> R:
    values = dict(row)
    values.pop("id", None)
    return cls(**values)


def _check_status(status: str, what: str) -> None:
    if status not in STATUSES:
        raise InvalidArgument(f"{what} {status!r} is not one of {', '.join(sorted(STATUSES))}")


def _status_filter(column: sa.ColumnElement[str], statuses: str | Collection[str]) -> Any:
    if isinstance(statuses, str):
        return column == statuses
    return column.in_(list(statuses))


async def _upsert(
    conn: AsyncConnection, table: sa.Table, values: Mapping[str, Any], keys: Sequence[str]
) -> None:
    """Insert a row, or update every column but the key and created_at if the key exists."""
    kept = {"id", "created_at", *keys}
    if is_sqlite(conn):
        lite = sqlite_insert(table).values(dict(values))
        stmt: Any = lite.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: lite.excluded[name] for name in values if name not in kept},
        )
    else:
        my = mysql_insert(table).values(dict(values))
        stmt = my.on_duplicate_key_update(
            {name: my.inserted[name] for name in values if name not in kept}
        )
    await conn.execute(stmt)


async def _write(engine: AsyncEngine, statement: sa.Executable) -> int:
    """Run one write statement in its own transaction; returns the rows it matched."""

    async def run() -> int:
        async with write_transaction(engine) as conn:
            result = await conn.execute(statement)
            return int(getattr(result, "rowcount", 0))

    return await retry_transient(run)


async def _read_all(engine: AsyncEngine, statement: sa.Select[Any]) -> list[sa.RowMapping]:
    async with engine.connect() as conn:
        return list((await conn.execute(statement)).mappings().all())


async def _read_one(engine: AsyncEngine, statement: sa.Select[Any]) -> sa.RowMapping | None:
    async with engine.connect() as conn:
        row: sa.RowMapping | None = (await conn.execute(statement)).mappings().first()
        return row


# Jobs and tasks ---------------------------------------------------------------------------


async def insert_job(
    engine: AsyncEngine, record: JobRecord, tasks: Iterable[TaskRecord] = ()
) -> None:
    """Write a job and its tasks in one transaction (all or nothing)."""
    _check_status(record.status, "job status")
    task_rows = [asdict(t) for t in tasks]
    for row in task_rows:
        _check_status(row["status"], f"status of task {row['task_id']!r}")
        if row["job_id"] != record.job_id:
            raise InvalidArgument(
                f"task {row['task_id']!r} names job_id {row['job_id']!r}, not {record.job_id!r}"
            )
    try:
        async with write_transaction(engine) as conn:
            await conn.execute(job.insert().values(asdict(record)))
            if task_rows:
                await conn.execute(task.insert(), task_rows)
    except IntegrityError as err:
        raise FailedPrecondition(
            f"job_id {record.job_id!r} or one of its task_ids already exists"
        ) from err


async def get_job(engine: AsyncEngine, job_id: str) -> JobRecord | None:
    """The job with `job_id`, or None."""
    row = await _read_one(engine, sa.select(job).where(job.c.job_id == job_id))
    return None if row is None else _record(JobRecord, row)


def _job_filters(
    statuses: str | Collection[str] | None,
    initiator_member_id: str | None,
    name: str | None,
) -> list[Any]:
    filters: list[Any] = []
    if statuses is not None:
        filters.append(_status_filter(job.c.status, statuses))
    if initiator_member_id is not None:
        filters.append(job.c.initiator_member_id == initiator_member_id)
    if name is not None:
        filters.append(job.c.name == name)
    return filters


async def list_jobs(
    engine: AsyncEngine,
    *,
    statuses: str | Collection[str] | None = None,
    initiator_member_id: str | None = None,
    name: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    offset: int = 0,
) -> list[JobRecord]:
    """Jobs matching every given filter, newest first, one page of `limit` from `offset`."""
    if limit < 1 or offset < 0:
        raise InvalidArgument(f"paging needs limit >= 1 and offset >= 0, got {limit}, {offset}")
    statement = (
        sa.select(job)
        .where(*_job_filters(statuses, initiator_member_id, name))
        .order_by(job.c.created_at.desc(), job.c.job_id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_record(JobRecord, row) for row in await _read_all(engine, statement)]


async def count_jobs(
    engine: AsyncEngine,
    *,
    statuses: str | Collection[str] | None = None,
    initiator_member_id: str | None = None,
    name: str | None = None,
) -> int:
    """How many jobs `list_jobs` with the same filters pages through."""
    statement = (
        sa.select(sa.func.count())
        .select_from(job)
        .where(*_job_filters(statuses, initiator_member_id, name))
    )
    async with engine.connect() as conn:
        return int(await conn.scalar(statement) or 0)


def _status_change(
    table: sa.Table, status: str, now: float, message_column: str, message: str | None
) -> dict[str, Any]:
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status == STATUS_RUNNING:
        values["started_at"] = sa.func.coalesce(table.c.started_at, now)
    values["ended_at"] = now if status in TERMINAL_STATUSES else None
    if message is not None:
        values[message_column] = message
    return values


async def update_job_status(
    engine: AsyncEngine,
    job_id: str,
    status: str,
    *,
    expected_status: str | Collection[str] | None = None,
    message: str | None = None,
) -> bool:
    """Move a job to `status` if it is in `expected_status`; False if not (or no such job).

    Entering running stamps started_at once; entering a final status stamps ended_at.
    """
    _check_status(status, "job status")
    conditions = [job.c.job_id == job_id]
    if expected_status is not None:
        conditions.append(_status_filter(job.c.status, expected_status))
    values = _status_change(job, status, time.time(), "message", message)
    return await _write(engine, job.update().where(*conditions).values(values)) == 1


async def update_job_progress(engine: AsyncEngine, job_id: str, progress: float) -> bool:
    """Record a job's progress (0.0 to 1.0); False if there is no such job."""
    if not 0.0 <= progress <= 1.0:
        raise InvalidArgument(f"job progress must be within [0, 1], got {progress}")
    statement = (
        job.update().where(job.c.job_id == job_id).values(progress=progress, updated_at=time.time())
    )
    return await _write(engine, statement) == 1


async def insert_tasks(engine: AsyncEngine, tasks: Iterable[TaskRecord]) -> None:
    """Add tasks to an existing job in one transaction."""
    rows = [asdict(t) for t in tasks]
    if not rows:
        return
    for row in rows:
        _check_status(row["status"], f"status of task {row['task_id']!r}")
    try:
        async with write_transaction(engine) as conn:
            await conn.execute(task.insert(), rows)
    except IntegrityError as err:
        raise FailedPrecondition("one of the task_ids already exists") from err


async def get_task(engine: AsyncEngine, task_id: str) -> TaskRecord | None:
    """The task with `task_id`, or None."""
    row = await _read_one(engine, sa.select(task).where(task.c.task_id == task_id))
    return None if row is None else _record(TaskRecord, row)


async def list_tasks(
    engine: AsyncEngine,
    *,
    job_id: str | None = None,
    statuses: str | Collection[str] | None = None,
    member_id: str | None = None,
    role: str | None = None,
    component: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[TaskRecord]:
    """Tasks matching every given filter, oldest first (creation order within a job)."""
    filters: list[Any] = []
    if job_id is not None:
        filters.append(task.c.job_id == job_id)
    if statuses is not None:
        filters.append(_status_filter(task.c.status, statuses))
    if member_id is not None:
        filters.append(task.c.member_id == member_id)
    if role is not None:
        filters.append(task.c.role == role)
    if component is not None:
        filters.append(task.c.component == component)
    statement = (
        sa.select(task)
        .where(*filters)
        .order_by(task.c.created_at, task.c.task_id)
        .limit(limit)
        .offset(offset)
    )
    return [_record(TaskRecord, row) for row in await _read_all(engine, statement)]


async def update_task_status(
    engine: AsyncEngine,
    task_id: str,
    status: str,
    *,
    expected_status: str | Collection[str] | None = None,
    error: str | None = None,
    executor: str | None = None,
    pid: int | None = None,
) -> bool:
    """Move a task to `status` if it is in `expected_status`; False if not (or no such task).

    `executor` and `pid` are recorded when given (where the task runs).
    """
    _check_status(status, "task status")
    conditions = [task.c.task_id == task_id]
    if expected_status is not None:
        conditions.append(_status_filter(task.c.status, expected_status))
    values = _status_change(task, status, time.time(), "error", error)
    if executor is not None:
        values["executor"] = executor
    if pid is not None:
        values["pid"] = pid
    return await _write(engine, task.update().where(*conditions).values(values)) == 1


async def retry_task(
    engine: AsyncEngine, task_id: str, *, expected_status: str | Collection[str]
) -> bool:
    """Put a task back to waiting for its next attempt (attempt + 1, run details cleared)."""
    statement = (
        task.update()
        .where(task.c.task_id == task_id, _status_filter(task.c.status, expected_status))
        .values(
            status=STATUS_WAITING,
            attempt=task.c.attempt + 1,
            executor=None,
            pid=None,
            error=None,
            started_at=None,
            ended_at=None,
            updated_at=time.time(),
        )
    )
    return await _write(engine, statement) == 1


# Task progress and results ----------------------------------------------------------------


async def upsert_task_progress(engine: AsyncEngine, record: TaskProgressRecord) -> None:
    """Store a task's latest progress, replacing the previous report."""
    if not 0.0 <= record.progress <= 1.0:
        raise InvalidArgument(f"task progress must be within [0, 1], got {record.progress}")

    async def run() -> None:
        async with write_transaction(engine) as conn:
            await _upsert(conn, task_progress, asdict(record), ["task_id"])

    await retry_transient(run)


async def list_task_progress(engine: AsyncEngine, job_id: str) -> list[TaskProgressRecord]:
    """The latest progress of every task of a job that reported any."""
    statement = (
        sa.select(task_progress)
        .where(task_progress.c.job_id == job_id)
        .order_by(task_progress.c.task_id)
    )
    return [_record(TaskProgressRecord, row) for row in await _read_all(engine, statement)]


async def upsert_task_result(engine: AsyncEngine, record: TaskResultRecord) -> None:
    """Store one task output; a second output with the same task, kind and name replaces it."""
    if record.kind not in RESULT_KINDS:
        raise InvalidArgument(
            f"task result kind {record.kind!r} is not one of {', '.join(sorted(RESULT_KINDS))}"
        )

    async def run() -> None:
        async with write_transaction(engine) as conn:
            await _upsert(conn, task_result, asdict(record), ["task_id", "kind", "name"])

    await retry_transient(run)


async def list_task_results(
    engine: AsyncEngine,
    *,
    job_id: str | None = None,
    task_id: str | None = None,
    kind: str | None = None,
) -> list[TaskResultRecord]:
    """Task outputs matching every given filter, in the order they were first stored."""
    filters: list[Any] = []
    if job_id is not None:
        filters.append(task_result.c.job_id == job_id)
    if task_id is not None:
        filters.append(task_result.c.task_id == task_id)
    if kind is not None:
        filters.append(task_result.c.kind == kind)
    statement = sa.select(task_result).where(*filters).order_by(task_result.c.id)
    return [_record(TaskResultRecord, row) for row in await _read_all(engine, statement)]


# Data sets and members --------------------------------------------------------------------


async def upsert_data_set(engine: AsyncEngine, record: DataSetRecord) -> None:
    """Register a data set, or replace the description of the one with its namespace and name."""
    if not record.namespace or not record.name:
        raise InvalidArgument("a data set needs a non-empty namespace and name")

    async def run() -> None:
        async with write_transaction(engine) as conn:
            await _upsert(conn, data_set, asdict(record), ["namespace", "name"])

    await retry_transient(run)


async def get_data_set(engine: AsyncEngine, namespace: str, name: str) -> DataSetRecord | None:
    """The data set `namespace`.`name`, or None."""
    statement = sa.select(data_set).where(
        data_set.c.namespace == namespace, data_set.c.name == name
    )
    row = await _read_one(engine, statement)
    return None if row is None else _record(DataSetRecord, row)


async def list_data_sets(
    engine: AsyncEngine,
    *,
    namespace: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    offset: int = 0,
) -> list[DataSetRecord]:
    """Data sets (of one namespace if given) ordered by namespace and name."""
    if limit < 1 or offset < 0:
        raise InvalidArgument(f"paging needs limit >= 1 and offset >= 0, got {limit}, {offset}")
    statement = sa.select(data_set)
    if namespace is not None:
        statement = statement.where(data_set.c.namespace == namespace)
    statement = (
        statement.order_by(data_set.c.namespace, data_set.c.name).limit(limit).offset(offset)
    )
    return [_record(DataSetRecord, row) for row in await _read_all(engine, statement)]


async def delete_data_set(engine: AsyncEngine, namespace: str, name: str) -> bool:
    """Forget a data set's registration (its files stay); False if it was not registered."""
    statement = data_set.delete().where(data_set.c.namespace == namespace, data_set.c.name == name)
    return await _write(engine, statement) == 1


async def upsert_member(engine: AsyncEngine, record: MemberRecord) -> None:
    """Add a member or replace its name and endpoint."""
    if not record.member_id or not record.endpoint:
        raise InvalidArgument("a member needs a non-empty member_id and endpoint")

    async def run() -> None:
        async with write_transaction(engine) as conn:
            await _upsert(conn, member, asdict(record), ["member_id"])

    await retry_transient(run)


async def get_member(engine: AsyncEngine, member_id: str) -> MemberRecord | None:
    """The member with `member_id`, or None."""
    row = await _read_one(engine, sa.select(member).where(member.c.member_id == member_id))
    return None if row is None else _record(MemberRecord, row)


async def list_members(engine: AsyncEngine) -> list[MemberRecord]:
    """Every known member, by member_id."""
    statement = sa.select(member).order_by(member.c.member_id)
    return [_record(MemberRecord, row) for row in await _read_all(engine, statement)]
