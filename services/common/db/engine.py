"""Async engines for MySQL/MariaDB and SQLite, write transactions and the database clock."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from kernel.errors import InvalidArgument
from kernel.retry import Backoff, retry_async
from services.common.db.constants import (
    MYSQL_TRANSIENT_CODES,
    SQLITE_BUSY_TIMEOUT_MS,
    TRANSIENT_BACKOFF_BASE_S,
    TRANSIENT_BACKOFF_MAX_S,
    TRANSIENT_RETRIES,
)

T = TypeVar("T")

_SUPPORTED_DRIVERS = ("mysql+aiomysql", "sqlite+aiosqlite")
# Execution option that makes a SQLite transaction start with BEGIN IMMEDIATE.
_IMMEDIATE = "weft_begin_immediate"
# One in-process writer per SQLite engine: waiting on an asyncio lock is cheaper than
# SQLite's sleep-and-retry busy handler.
_sqlite_write_locks: weakref.WeakKeyDictionary[sa.Engine, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


class db_now(FunctionElement[float]):
    """The database server's clock in epoch seconds (leases use one clock for all replicas)."""

    type = sa.Double()
    inherit_cache = True


@compiles(db_now, "mysql")
@compiles(db_now, "mariadb")
def _db_now_mysql(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    # Sessions run with time_zone '+00:00' (see create_engine), so no DST fold applies.
    return "UNIX_TIMESTAMP(NOW(6))"


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


def parse_database_url(url: str | URL) -> URL:
    """Parse `url` and check it names a driver Weft supports."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise InvalidArgument(f"database url {str(url)!r} is not a valid URL: {err}") from err
    if parsed.drivername not in _SUPPORTED_DRIVERS:
        raise InvalidArgument(
            f"database url uses driver {parsed.drivername!r}; "
            f"use one of {', '.join(d + '://' for d in _SUPPORTED_DRIVERS)}"
        )
    return parsed


def is_sqlite(engine: AsyncEngine | AsyncConnection) -> bool:
    """Whether `engine` talks to SQLite (otherwise MySQL/MariaDB)."""
    return engine.dialect.name == "sqlite"


def create_engine(url: str | URL, **engine_kwargs: Any) -> AsyncEngine:
    """An async engine for `mysql+aiomysql://` or `sqlite+aiosqlite://` set up for the queue.

    MySQL/MariaDB sessions use READ COMMITTED (no gap locks, so enqueues never wait on a
    claim) and UTC. SQLite runs in WAL mode with a busy timeout; `write_transaction` starts
    its transactions with BEGIN IMMEDIATE so a writer never has to upgrade a read lock.
    """
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(parsed, engine_kwargs)
    query = dict(parsed.query)
    query.setdefault("charset", "utf8mb4")
    connect_args = dict(engine_kwargs.pop("connect_args", {}))
    connect_args.setdefault("init_command", "SET time_zone = '+00:00'")
    engine_kwargs.setdefault("pool_pre_ping", True)
    # Every use goes through a SQLAlchemy Connection, which rolls back a transaction still
    # open when it is closed (and then skips the pool's reset). The pool's own reset would
    # only add a ROLLBACK round trip after each committed write transaction.
    engine_kwargs.setdefault("pool_reset_on_return", None)
    engine_kwargs.setdefault("pool_recycle", 3600)
    engine_kwargs.setdefault("isolation_level", "READ COMMITTED")
    return create_async_engine(parsed.set(query=query), connect_args=connect_args, **engine_kwargs)


def _create_sqlite_engine(url: URL, engine_kwargs: dict[str, Any]) -> AsyncEngine:
    engine = create_async_engine(url, **engine_kwargs)
    file_backed = url.database not in (None, "", ":memory:")

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if file_backed:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction meant to write: committed on exit, rolled back on error.

    On SQLite it holds the database's write lock from its first statement (BEGIN
    IMMEDIATE), and writers of one engine queue on an asyncio lock first; reads made in it
    therefore see the state the writes apply to. On MySQL it is a plain transaction; use
    SELECT ... FOR UPDATE to lock what is read.
    """
    if not is_sqlite(engine):
        async with engine.begin() as conn:
            yield conn
        return
    lock = _sqlite_write_locks.setdefault(engine.sync_engine, asyncio.Lock())
    async with lock, engine.connect() as conn:
        conn = await conn.execution_options(**{_IMMEDIATE: True})
        async with conn.begin():
            yield conn


def is_transient(err: BaseException) -> bool:
    """Whether `err` is a deadlock, a lock-wait timeout or a busy SQLite: worth a retry."""
    if not isinstance(err, DBAPIError) or err.connection_invalidated:
        return False
    orig = err.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in MYSQL_TRANSIENT_CODES
    text = str(orig).lower()
    return "database is locked" in text or "database is busy" in text


TRANSIENT_BACKOFF: Final = Backoff(
    attempts=TRANSIENT_RETRIES, base_delay=TRANSIENT_BACKOFF_BASE_S, max_delay=TRANSIENT_BACKOFF_MAX_S
)


async def retry_transient(operation: Callable[[], Awaitable[T]]) -> T:
    """Run `operation`, retrying transient database errors with exponential backoff and jitter."""
    return await retry_async(operation, is_transient, TRANSIENT_BACKOFF)
