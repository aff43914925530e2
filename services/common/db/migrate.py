"""Bring a database to the newest schema with the Alembic revisions shipped in this package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db.engine import create_engine

_SCRIPT_LOCATION = Path(__file__).resolve().parent / "alembic"


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic config pointing at the packaged revisions (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        # ConfigParser treats % as interpolation; escape it in passwords and options.
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision shipped in this package."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revisions found under {_SCRIPT_LOCATION}")
    return head


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def migrate_engine(engine: AsyncEngine) -> None:
    """Upgrade the database behind `engine` to the head revision (a no-op when already there)."""
    async with engine.connect() as conn:
        await conn.run_sync(_upgrade)
        await conn.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def migrate(url: str) -> None:
    """Upgrade the database at `url` (mysql+aiomysql:// or sqlite+aiosqlite://) to head."""
    engine = create_engine(url)
    try:
        await migrate_engine(engine)
    finally:
        await engine.dispose()
