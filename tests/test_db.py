"""Scheduler database on MariaDB and SQLite: migrations and the repository helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.errors import FailedPrecondition, InvalidArgument
from services.common.db import create_engine, current_revision, head_revision, migrate
from services.common.db.constants import (
    RESULT_METRIC,
    RESULT_MODEL,
    STATUS_FAILED,
    STATUS_RUNNING,
    STATUS_SUCCESS,
    STATUS_WAITING,
    UNFINISHED_STATUSES,
)
from services.common.db.records import (
    DataSetRecord,
    JobRecord,
    MemberRecord,
    TaskProgressRecord,
    TaskRecord,
    TaskResultRecord,
)
from services.common.db.repository import (
    count_jobs,
    delete_data_set,
    get_data_set,
    get_job,
    get_member,
    get_task,
    insert_job,
    insert_tasks,
    list_data_sets,
    list_jobs,
    list_members,
    list_task_progress,
    list_task_results,
    list_tasks,
    retry_task,
    update_job_progress,
    update_job_status,
    update_task_status,
    upsert_data_set,
    upsert_member,
    upsert_task_progress,
    upsert_task_result,
)
from services.common.db.schema import TABLE_NAMES, member, metadata

ME = "a" * 32
PEER = "b" * 32


@pytest.fixture(params=["sqlite", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """An empty database on each backend (not migrated)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/weft.db"
    url: str = request.getfixturevalue("mysql_url")
    return url


@pytest.fixture()
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated database."""
    await migrate(db_url)
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


def make_job(
    job_id: str, status: str = STATUS_WAITING, created_at: float = 1.0, **kw: Any
) -> JobRecord:
    spec = {"name": "credit-vlr", "components": {"dataio_0": {"module": "DataIO"}}}
    return JobRecord(
        job_id=job_id,
        member_id=ME,
        my_roles=["promoter"],
        initiator_member_id=ME,
        initiator_role="promoter",
        spec=spec,
        name=kw.pop("name", "credit-vlr"),
        status=status,
        created_at=created_at,
        **kw,
    )


def make_task(
    job_id: str, component: str, member_id: str = ME, role: str = "promoter"
) -> TaskRecord:
    return TaskRecord(
        task_id=f"{job_id}_{component}_{role}_{member_id[:4]}",
        job_id=job_id,
        component=component,
        module="DataIO",
        role=role,
        member_id=member_id,
    )


# Migrations -------------------------------------------------------------------------------


def _schema_diff(sync_conn: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def _table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def test_migrations_build_the_schema_the_code_uses(db_url: str) -> None:
    # Execute
    await migrate(db_url)

    # Assert
    engine = create_engine(db_url)
    try:
        assert await _table_names(engine) == TABLE_NAMES | {"alembic_version"}
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(_schema_diff) == []
    finally:
        await engine.dispose()


async def test_second_migration_is_a_no_op_and_keeps_data(db_url: str) -> None:
    # Prepare
    await migrate(db_url)
    engine = create_engine(db_url)
    try:
        await upsert_member(engine, MemberRecord(member_id=ME, endpoint="127.0.0.1:7000"))
        tables_before = await _table_names(engine)

        # Execute
        await migrate(db_url)

        # Assert
        assert await _table_names(engine) == tables_before
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(member)) == 1
    finally:
        await engine.dispose()


async def test_unsupported_database_url_is_refused_naming_the_driver() -> None:
    with pytest.raises(InvalidArgument, match="postgresql"):
        create_engine("postgresql://localhost/weft")


# Jobs and tasks ---------------------------------------------------------------------------


async def test_job_and_tasks_round_trip(engine: AsyncEngine) -> None:
    # Prepare
    job = make_job("j1", message="queued")
    tasks = [make_task("j1", "dataio_0"), make_task("j1", "dataio_0", PEER, "provider")]

    # Execute
    await insert_job(engine, job, tasks)

    # Assert
    assert await get_job(engine, "j1") == job
    assert await list_tasks(engine, job_id="j1") == sorted(tasks, key=lambda t: t.task_id)
    assert await get_task(engine, tasks[1].task_id) == tasks[1]
    assert await get_job(engine, "missing") is None


async def test_insert_job_writes_nothing_when_a_task_clashes(engine: AsyncEngine) -> None:
    # Prepare: j2's task reuses the task_id j1's task already holds.
    taken = make_task("j1", "dataio_0")
    await insert_job(engine, make_job("j1"), [taken])
    clashing = replace(make_task("j2", "dataio_0"), task_id=taken.task_id)

    # Execute
    with pytest.raises(FailedPrecondition, match="already exists"):
        await insert_job(engine, make_job("j2"), [clashing])

    # Assert
    assert await get_job(engine, "j2") is None


async def test_insert_job_refuses_tasks_of_another_job(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidArgument, match="job_id"):
        await insert_job(engine, make_job("j1"), [make_task("other", "dataio_0")])


async def test_list_jobs_filters_and_pages_newest_first(engine: AsyncEngine) -> None:
    # Prepare
    for n in range(5):
        status = STATUS_RUNNING if n % 2 else STATUS_SUCCESS
        await insert_job(engine, make_job(f"j{n}", status=status, created_at=100.0 + n))

    # Execute
    first_page = await list_jobs(engine, limit=2)
    second_page = await list_jobs(engine, limit=2, offset=2)
    running = await list_jobs(engine, statuses=STATUS_RUNNING)
    unfinished = await list_jobs(engine, statuses=UNFINISHED_STATUSES)
    by_name = await count_jobs(engine, name="credit-vlr")

    # Assert
    assert [j.job_id for j in first_page] == ["j4", "j3"]
    assert [j.job_id for j in second_page] == ["j2", "j1"]
    assert [j.job_id for j in running] == ["j3", "j1"]
    assert [j.job_id for j in unfinished] == ["j3", "j1"]
    assert by_name == 5
    with pytest.raises(InvalidArgument, match="limit"):
        await list_jobs(engine, limit=0)


async def test_job_status_moves_only_from_the_expected_status(engine: AsyncEngine) -> None:
    # Prepare
    await insert_job(engine, make_job("j1"))

    # Execute
    started = await update_job_status(engine, "j1", STATUS_RUNNING, expected_status=STATUS_WAITING)
    started_again = await update_job_status(
        engine, "j1", STATUS_RUNNING, expected_status=STATUS_WAITING
    )
    running = await get_job(engine, "j1")
    failed = await update_job_status(
        engine,
        "j1",
        STATUS_FAILED,
        expected_status={STATUS_WAITING, STATUS_RUNNING},
        message="boom",
    )
    await update_job_progress(engine, "j1", 0.5)
    ended = await get_job(engine, "j1")

    # Assert
    assert (started, started_again, failed) == (True, False, True)
    assert running is not None and running.started_at is not None and running.ended_at is None
    assert ended is not None
    assert (ended.status, ended.message, ended.progress) == (STATUS_FAILED, "boom", 0.5)
    assert ended.started_at == running.started_at
    assert ended.ended_at is not None and ended.ended_at >= ended.started_at
    assert await update_job_status(engine, "missing", STATUS_RUNNING) is False
    with pytest.raises(InvalidArgument, match="job status"):
        await update_job_status(engine, "j1", "exploded")


async def test_task_status_records_where_it_runs_and_retries(engine: AsyncEngine) -> None:
    # Prepare
    task = make_task("j1", "dataio_0")
    await insert_job(engine, make_job("j1"), [task])

    # Execute
    assert await update_task_status(
        engine,
        task.task_id,
        STATUS_RUNNING,
        expected_status=STATUS_WAITING,
        executor="127.0.0.1:7100",
        pid=4242,
    )
    assert await update_task_status(
        engine, task.task_id, STATUS_FAILED, expected_status=STATUS_RUNNING, error="out of memory"
    )
    failed = await get_task(engine, task.task_id)
    wrong_guard = await retry_task(engine, task.task_id, expected_status=STATUS_RUNNING)
    retried = await retry_task(engine, task.task_id, expected_status=STATUS_FAILED)
    waiting = await get_task(engine, task.task_id)

    # Assert
    assert failed is not None
    assert (failed.status, failed.executor, failed.pid, failed.error) == (
        STATUS_FAILED,
        "127.0.0.1:7100",
        4242,
        "out of memory",
    )
    assert (wrong_guard, retried) == (False, True)
    assert waiting is not None
    assert (waiting.status, waiting.attempt, waiting.executor, waiting.error, waiting.ended_at) == (
        STATUS_WAITING,
        1,
        None,
        None,
        None,
    )


async def test_list_tasks_filters_by_member_role_and_status(engine: AsyncEngine) -> None:
    # Prepare
    mine = make_task("j1", "dataio_0")
    theirs = make_task("j1", "dataio_0", PEER, "provider")
    await insert_job(engine, make_job("j1"), [mine])
    await insert_tasks(engine, [theirs])
    await update_task_status(engine, theirs.task_id, STATUS_SUCCESS)

    # Execute
    at_peer = await list_tasks(engine, job_id="j1", member_id=PEER)
    providers = await list_tasks(engine, role="provider")
    waiting = await list_tasks(engine, statuses=[STATUS_WAITING])

    # Assert
    assert [t.task_id for t in at_peer] == [theirs.task_id]
    assert [t.task_id for t in providers] == [theirs.task_id]
    assert [t.task_id for t in waiting] == [mine.task_id]


async def test_concurrent_guarded_transitions_let_exactly_one_win(engine: AsyncEngine) -> None:
    # Prepare
    await insert_job(engine, make_job("j1", status=STATUS_RUNNING))

    # Execute
    outcomes = await asyncio.gather(
        *(
            update_job_status(engine, "j1", status, expected_status=STATUS_RUNNING)
            for status in (STATUS_SUCCESS, STATUS_FAILED) * 4
        )
    )

    # Assert
    assert sum(outcomes) == 1


# Progress and results ---------------------------------------------------------------------


async def test_task_progress_keeps_the_latest_report(engine: AsyncEngine) -> None:
    # Execute
    await upsert_task_progress(engine, TaskProgressRecord("t1", "j1", 0.25, "iter 5/20", 10.0))
    await upsert_task_progress(engine, TaskProgressRecord("t1", "j1", 0.75, "iter 15/20", 11.0))
    await upsert_task_progress(engine, TaskProgressRecord("t2", "j1", 0.1, None, 12.0))

    # Assert
    assert await list_task_progress(engine, "j1") == [
        TaskProgressRecord("t1", "j1", 0.75, "iter 15/20", 11.0),
        TaskProgressRecord("t2", "j1", 0.1, None, 12.0),
    ]
    with pytest.raises(InvalidArgument, match="progress"):
        await upsert_task_progress(engine, TaskProgressRecord("t1", "j1", 1.5))


async def test_task_result_upsert_replaces_same_output_and_keeps_created_at(
    engine: AsyncEngine,
) -> None:
    # Prepare
    def result(kind: str, name: str, value: Any, at: float) -> TaskResultRecord:
        return TaskResultRecord("t1", "j1", "vert_lr_0", "promoter", ME, kind, name, value, at, at)

    # Execute
    await upsert_task_result(engine, result(RESULT_METRIC, "auc", {"value": 0.71}, 1.0))
    await upsert_task_result(engine, result(RESULT_MODEL, "model", {"uri": "file:///m/1"}, 2.0))
    await upsert_task_result(engine, result(RESULT_METRIC, "auc", {"value": 0.83}, 3.0))

    # Assert
    metrics = await list_task_results(engine, job_id="j1", kind=RESULT_METRIC)
    assert [(r.name, r.value, r.created_at, r.updated_at) for r in metrics] == [
        ("auc", {"value": 0.83}, 1.0, 3.0)
    ]
    assert len(await list_task_results(engine, task_id="t1")) == 2
    with pytest.raises(InvalidArgument, match="kind"):
        await upsert_task_result(engine, result("picture", "x", {}, 4.0))


# Data sets and members --------------------------------------------------------------------


async def test_data_set_upsert_get_list_delete(engine: AsyncEngine) -> None:
    # Prepare
    schema = [
        {"name": "id", "type": "string"},
        {"name": "y", "type": "int64"},
        {"name": "x0", "type": "float64"},
    ]
    first = DataSetRecord(
        "credit", "a", "file:///d/a.parquet", 1000, 3, schema, "id", "y", None, 1.0, 1.0
    )
    replaced = DataSetRecord(
        "credit", "a", "file:///d/a2.parquet", 2000, 3, schema, "id", "y", "v2", 5.0, 5.0
    )
    other = DataSetRecord("credit", "b", "file:///d/b.parquet", 10, 2, schema[:2], "id", None)

    # Execute
    await upsert_data_set(engine, first)
    await upsert_data_set(engine, replaced)
    await upsert_data_set(engine, other)

    # Assert
    stored = await get_data_set(engine, "credit", "a")
    assert stored is not None
    assert (stored.uri, stored.row_count, stored.description, stored.data_schema) == (
        "file:///d/a2.parquet",
        2000,
        "v2",
        schema,
    )
    assert (stored.created_at, stored.updated_at) == (1.0, 5.0)
    assert [d.name for d in await list_data_sets(engine, namespace="credit")] == ["a", "b"]
    assert [d.name for d in await list_data_sets(engine, limit=1, offset=1)] == ["b"]
    assert await delete_data_set(engine, "credit", "b") is True
    assert await get_data_set(engine, "credit", "b") is None
    assert await delete_data_set(engine, "credit", "b") is False


async def test_member_upsert_and_list(engine: AsyncEngine) -> None:
    # Execute
    await upsert_member(engine, MemberRecord(PEER, "127.0.0.1:7001", "bank-b", 1.0))
    await upsert_member(engine, MemberRecord(ME, "127.0.0.1:7000", "bank-a", 1.0))
    await upsert_member(engine, MemberRecord(PEER, "127.0.0.1:7011", "bank-b", 2.0))

    # Assert
    assert [(m.member_id, m.endpoint) for m in await list_members(engine)] == [
        (ME, "127.0.0.1:7000"),
        (PEER, "127.0.0.1:7011"),
    ]
    assert await get_member(engine, "c" * 32) is None
    with pytest.raises(InvalidArgument, match="endpoint"):
        await upsert_member(engine, MemberRecord(PEER, ""))
