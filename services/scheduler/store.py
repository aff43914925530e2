"""The scheduler's own conditional writes on the job and task tables (claims, transitions, reruns)."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.errors import FailedPrecondition
from services.common.db.constants import (
    STATUS_RUNNING,
    STATUS_STOPPED,
    STATUS_WAITING,
    TERMINAL_STATUSES,
    UNFINISHED_STATUSES,
)
from services.common.db.engine import retry_transient, write_transaction
from services.common.db.queue import ClaimedAction, action_notifier, insert_action
from services.common.db.records import JobRecord, TaskRecord
from services.common.db.repository import get_task
from services.common.db.schema import job, task

#: Order of task statuses: a report never moves a task backwards within one attempt.
_RANK = {STATUS_WAITING: 0, STATUS_RUNNING: 1}


def _rank(status: str) -> int:
    return _RANK.get(status, 2)


async def _execute(engine: AsyncEngine, statement: sa.Executable) -> int:
    async def run() -> int:
        async with write_transaction(engine) as conn:
            result = await conn.execute(statement)
            return int(getattr(result, "rowcount", 0))

    return await retry_transient(run)


async def claim_for_dispatch(engine: AsyncEngine, task_id: str, executor: str) -> bool:
    """Mark a waiting task as handed to `executor`; False if another consumer got it first."""
    statement = (
        task.update()
        .where(task.c.task_id == task_id, task.c.status == STATUS_WAITING, task.c.executor.is_(None))
        .values(executor=executor, updated_at=time.time())
    )
    return await _execute(engine, statement) == 1


async def release_dispatch(engine: AsyncEngine, task_id: str, attempt: int) -> bool:
    """Undo a claim whose RunTask never reached an executor, so the task is dispatched again."""
    statement = (
        task.update()
        .where(task.c.task_id == task_id, task.c.attempt == attempt, task.c.status == STATUS_WAITING)
        .values(executor=None, updated_at=time.time())
    )
    return await _execute(engine, statement) == 1


async def apply_task_status(
    engine: AsyncEngine,
    task_id: str,
    attempt: int,
    status: str,
    *,
    error: str | None = None,
    pid: int | None = None,
    executor: str | None = None,
) -> TaskRecord | None:
    """Move a task forward to `status` for `attempt`; None when the change is stale or a repeat.

    A change for an older attempt, or one that would move the task backwards within its
    attempt (running after success, say), is ignored. A newer attempt (a retry or rerun
    seen first through another member's report) is taken over.
    """
    now = time.time()

    async def run() -> bool:
        async with write_transaction(engine) as conn:
            row = (await conn.execute(
                sa.select(task.c.status, task.c.attempt).where(task.c.task_id == task_id)
            )).first()
            if row is None:
                return False
            current_status, current_attempt = row
            if attempt < current_attempt:
                return False
            if attempt == current_attempt and (
                current_status in TERMINAL_STATUSES or _rank(status) <= _rank(current_status)
            ):
                return False
            values: dict[str, Any] = {"status": status, "attempt": attempt, "updated_at": now}
            if status == STATUS_RUNNING:
                values["started_at"] = sa.func.coalesce(task.c.started_at, now)
            if status in TERMINAL_STATUSES:
                values["ended_at"] = now
            if error is not None:
                values["error"] = error
            if pid is not None:
                values["pid"] = pid
            if executor is not None:
                values["executor"] = executor
            await conn.execute(task.update().where(task.c.task_id == task_id).values(values))
            return True

    changed = await retry_transient(run)
    return await get_task(engine, task_id) if changed else None


async def retry_task_locally(engine: AsyncEngine, task_id: str, attempt: int, error: str) -> bool:
    """Put a failed attempt back to waiting as attempt + 1, counting one automatic retry."""
    statement = (
        task.update()
        .where(task.c.task_id == task_id, task.c.attempt == attempt, task.c.status.in_(UNFINISHED_STATUSES))
        .values(
            status=STATUS_WAITING, attempt=attempt + 1, retries=task.c.retries + 1, executor=None,
            pid=None, error=f"attempt {attempt} failed: {error}", started_at=None, ended_at=None,
            updated_at=time.time(),
        )
    )
    return await _execute(engine, statement) == 1


async def reset_for_rerun(
    engine: AsyncEngine, job_id: str, components: Collection[str], session_ids: dict[str, str]
) -> int:
    """Every task of `components` back to waiting with attempt + 1 and its new session."""
    now = time.time()
    count = 0
    async with write_transaction(engine) as conn:
        for component in components:
            result = await conn.execute(
                task.update()
                .where(task.c.job_id == job_id, task.c.component == component)
                .values(
                    status=STATUS_WAITING, attempt=task.c.attempt + 1, retries=0, executor=None, pid=None,
                    error=None, started_at=None, ended_at=None, updated_at=now,
                    session_id=session_ids[component],
                )
            )
            count += int(getattr(result, "rowcount", 0))
        await conn.execute(
            job.update().where(job.c.job_id == job_id).values(
                status=STATUS_WAITING, message=None, ended_at=None, updated_at=now
            )
        )
    return count


async def stop_undispatched(engine: AsyncEngine, job_id: str, member_id: str, reason: str) -> list[str]:
    """Stop this member's tasks of a job that no executor holds yet; returns their ids."""
    condition = sa.and_(
        task.c.job_id == job_id, task.c.member_id == member_id,
        task.c.status == STATUS_WAITING, task.c.executor.is_(None),
    )

    async def run() -> list[str]:
        async with write_transaction(engine) as conn:
            ids = list((await conn.execute(sa.select(task.c.task_id).where(condition))).scalars())
            if ids:
                now = time.time()
                await conn.execute(
                    task.update().where(condition, task.c.task_id.in_(ids)).values(
                        status=STATUS_STOPPED, error=reason, ended_at=now, updated_at=now
                    )
                )
            return ids

    return await retry_transient(run)


async def set_job_state(
    engine: AsyncEngine,
    job_id: str,
    status: str,
    *,
    message: str | None = None,
    progress: float | None = None,
    only_if_unfinished: bool = True,
) -> bool:
    """Record a job status (and message, progress); a finished job is left alone unless told."""
    now = time.time()
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status == STATUS_RUNNING:
        values["started_at"] = sa.func.coalesce(job.c.started_at, now)
    values["ended_at"] = now if status in TERMINAL_STATUSES else None
    if message is not None:
        values["message"] = message
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, progress))
    conditions = [job.c.job_id == job_id]
    if only_if_unfinished:
        conditions.append(job.c.status.in_(UNFINISHED_STATUSES))
    return await _execute(engine, job.update().where(*conditions).values(values)) == 1


async def set_job_progress(engine: AsyncEngine, job_id: str, progress: float) -> None:
    await _execute(engine, job.update().where(job.c.job_id == job_id).values(
        progress=max(0.0, min(1.0, progress)), updated_at=time.time()))


async def mirror_tasks(engine: AsyncEngine, records: Iterable[TaskRecord]) -> None:
    """Copy other members' task states pushed by the initiator (never this member's own)."""
    rows = list(records)
    if not rows:
        return
    async with write_transaction(engine) as conn:
        for record in rows:
            await conn.execute(
                task.update()
                .where(task.c.task_id == record.task_id, task.c.attempt <= record.attempt)
                .values(
                    status=record.status, attempt=record.attempt, executor=record.executor, pid=record.pid,
                    error=record.error, started_at=record.started_at, ended_at=record.ended_at,
                    updated_at=time.time(),
                )
            )


async def list_jobs_page(
    engine: AsyncEngine,
    *,
    statuses: Collection[str] = (),
    name_contains: str = "",
    role: str = "",
    initiator_member_id: str = "",
    created_after: float | None = None,
    created_before: float | None = None,
    limit: int,
    offset: int,
) -> list[Any]:
    """Job rows matching every given filter, newest first (one page)."""
    filters: list[Any] = []
    if statuses:
        filters.append(job.c.status.in_(list(statuses)))
    if name_contains:
        filters.append(sa.func.lower(job.c.name).contains(name_contains.lower(), autoescape=True))
    if role:
        filters.append(sa.cast(job.c.my_roles, sa.Text).contains(f'"{role}"', autoescape=True))
    if initiator_member_id:
        filters.append(job.c.initiator_member_id == initiator_member_id)
    if created_after is not None:
        filters.append(job.c.created_at >= created_after)
    if created_before is not None:
        filters.append(job.c.created_at < created_before)
    statement = (
        sa.select(job).where(*filters).order_by(job.c.created_at.desc(), job.c.job_id.desc())
        .limit(limit).offset(offset)
    )
    async with engine.connect() as conn:
        return list((await conn.execute(statement)).mappings().all())


async def list_data_sets_page(
    engine: AsyncEngine, *, namespace: str = "", name_contains: str = "", limit: int, offset: int
) -> list[Any]:
    """data_set rows matching the filters, by namespace then name (one page)."""
    from services.common.db.schema import data_set

    filters: list[Any] = []
    if namespace:
        filters.append(data_set.c.namespace == namespace)
    if name_contains:
        filters.append(sa.func.lower(data_set.c.name).contains(name_contains.lower(), autoescape=True))
    statement = (
        sa.select(data_set).where(*filters).order_by(data_set.c.namespace, data_set.c.name)
        .limit(limit).offset(offset)
    )
    async with engine.connect() as conn:
        return list((await conn.execute(statement)).mappings().all())


async def insert_job_and_queue(
    engine: AsyncEngine,
    record: JobRecord,
    tasks: Iterable[TaskRecord],
    action: str,
    producer: str,
    priority: int = 0,
    *,
    hand_to: str | None = None,
    hold_as: str | None = None,
    lease_seconds: float = 0.0,
) -> ClaimedAction | None:
    """Write a job, its tasks and its first action in one transaction, then wake consumers.

    One commit instead of two on the path from SubmitJob to the first RunTask, and no
    window in which the job exists without its action. With `hand_to` (a consumer name of
    this process), when a local consumer is idle the action is written already claimed by
    that name and handed to the consumer, which then needs no claim transaction either.
    With `hold_as` the action is written claimed by that name and returned instead: the
    caller carries it out and completes it (no consumer is woken); if the caller dies
    first, the lease runs out and a consumer claims it like an abandoned one.
    """
    task_rows = [asdict(t) for t in tasks]
    notifier = action_notifier(engine)
    holder = hold_as if hold_as is not None else hand_to if hand_to is not None and notifier.idle() else None

    async def run() -> int:
        async with write_transaction(engine) as conn:
            await conn.execute(job.insert().values(asdict(record)))
            if task_rows:
                await conn.execute(task.insert(), task_rows)
            return await insert_action(conn, action, {"job_id": record.job_id}, producer, priority,
                                       claimed_by=holder, lease_seconds=lease_seconds)

    try:
        action_id = await retry_transient(run)
    except IntegrityError as err:
        raise FailedPrecondition(f"job_id {record.job_id!r} or one of its task_ids already exists") from err
    if holder is None:
        notifier.notify()
        return None
    now = time.time()
    claimed = ClaimedAction(
        id=action_id, action=action, params={"job_id": record.job_id}, producer=producer, priority=priority,
        created_at=now, claimed_by=holder, claimed_at=now, lease_until=now + lease_seconds, attempts=1)
    if hold_as is not None:
        return claimed
    notifier.hand_over(claimed)
    return None


async def load_job_and_tasks(
    engine: AsyncEngine, job_id: str, member_id: str
) -> tuple[JobRecord | None, list[TaskRecord]]:
    """A job and this member's tasks of it, read over one connection."""
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(job).where(job.c.job_id == job_id))).mappings().first()
        if row is None:
            return None, []
        rows = (await conn.execute(
            sa.select(task).where(task.c.job_id == job_id, task.c.member_id == member_id)
            .order_by(task.c.created_at, task.c.task_id)
        )).mappings().all()
    return JobRecord(**dict(row)), [TaskRecord(**dict(r)) for r in rows]
