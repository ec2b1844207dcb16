"""Engines, database creation and migrations. Nothing here runs at import time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infrastructure.settings import Settings, async_database_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def create_engine(
    settings: Settings, *, pool_size: int | None = None, application_name: str = "scamtrail"
) -> AsyncEngine:
    """An engine whose connections name themselves in pg_stat_activity (`application_name`), so
    an operator, or the test harness, can tell whose backend is whose."""
    size = pool_size or settings.database_pool_size
    return create_async_engine(
        settings.database_url,
        pool_size=size,
        max_overflow=size,
        # No pool_pre_ping: it costs a round trip per checkout (a quarter of a one-event append).
        # A connection killed by a PostgreSQL restart fails its next statement instead; SQLAlchemy
        # then invalidates the whole pool, and callers retry (appends are idempotent by event id).
        connect_args={
            "timeout": 10,  # to connect
            "command_timeout": settings.database_statement_timeout_s,
            "server_settings": {**SERVER_KEEPALIVES, "application_name": application_name},
        },
    )


# Ask the server to probe idle client connections: one whose client vanished without a word
# (a killed VM, a dropped NAT entry) is closed within about 30 s, and with it whatever it held
# (the relay's advisory lock, so that a standby can take over).
SERVER_KEEPALIVES = {
    "tcp_keepalives_idle": "15",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}


async def ensure_database(database_url: str) -> bool:
    """Create the database named in the URL if it does not exist yet. True if it was created."""
    url = make_url(async_database_url(database_url))
    name = url.database
    if not name:
        raise ValueError("the database URL names no database")
    admin = url.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        # CREATE DATABASE takes no parameters; quote the identifier ourselves.
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False  # created by a concurrent caller in the meantime
        return True
    finally:
        await conn.close()


async def database_answers(database_url: str, within_s: float = 3.0) -> str | None:
    """None if PostgreSQL at the URL answers a query within `within_s`, else why not (the
    error's type only: its text may quote the URL)."""
    url = make_url(async_database_url(database_url)).set(drivername="postgresql")
    try:
        async with asyncio.timeout(within_s):
            conn = await asyncpg.connect(url.render_as_string(hide_password=False))
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close()
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        return type(error).__name__
    return None


def alembic_config(database_url: str) -> Config:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = async_database_url(database_url)
    return config


def migrate_sync(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`. Blocking: alembic's env runs its own event loop."""
    command.upgrade(alembic_config(database_url), revision)


async def migrate(database_url: str, revision: str = "head") -> None:
    """Create the database if needed, then apply migrations (in a thread: alembic is sync).
    For scripts that run in an event loop (the benchmarks)."""
    await ensure_database(database_url)
    await asyncio.to_thread(migrate_sync, database_url, revision)
