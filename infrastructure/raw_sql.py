"""Statements run through asyncpg itself, on a connection of the engine's pool: for the hot
paths (reads of the log, the worker's appends, the tools' lookups), on which SQLAlchemy's
execution layer costs more CPU than the statement, and `engine.connect()` adds a BEGIN and a
ROLLBACK round trip around a single read. Everything else stays on SQLAlchemy."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

log = logging.getLogger(__name__)

# What a lost connection raises through asyncpg (but asyncpg.DataError, a value it cannot
# encode, is an InterfaceError too, and the caller's fault).
_DISCONNECTS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    OSError,
)


class LostConnection(ConnectionError):
    """The connection was lost under a statement; whether a transaction committed is unknown.
    An OSError, as a lost connection is everywhere else (infrastructure/outage.POSTGRES_ERRORS)."""


class RawStatement:
    """A SQLAlchemy text statement as asyncpg runs it: the same SQL, its named parameters
    turned into positional ones (a name used twice is one position)."""

    def __init__(self, statement: sa.TextClause) -> None:
        compiled = statement.compile(dialect=postgresql_asyncpg.dialect())  # type: ignore[no-untyped-call]
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())

    def args(self, params: dict[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]


@asynccontextmanager
async def pooled(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """The asyncpg connection of one of the engine's pooled connections, given back at the
    end. One cancelled mid-statement (a client went away) is not reused: its state is unknown.
    One that turns out dead (PostgreSQL restarted, backend terminated) is dropped with the rest
    of the pool, and the block ends with `LostConnection`.

    Returning or invalidating the connection goes through `greenlet_spawn`: the pool may close
    it (an overflow connection, a dead one), and closing an asyncpg connection is async —
    called bare, it fails with MissingGreenlet and the connection is leaked."""
    connection = await engine.raw_connection()
    driver: asyncpg.Connection = connection.driver_connection
    try:
        yield driver
    except asyncio.CancelledError:
        await greenlet_spawn(connection.invalidate)
        raise
    except BaseException as error:
        if not _is_disconnect(error, driver):
            await greenlet_spawn(connection.close)
            raise
        await greenlet_spawn(connection.invalidate)
        await engine.dispose(close=False)  # every pooled connection is suspect
        raise LostConnection(f"lost the database connection: {error!r}") from error
    await greenlet_spawn(connection.close)  # back to the pool


async def fetch(engine: AsyncEngine, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Run one statement on a pooled connection (no BEGIN/COMMIT: one statement is atomic by
    itself). If the connection turns out dead, try once more on a new one."""
    for attempt in (1, 2):
        try:
            async with pooled(engine) as driver:
                rows: list[asyncpg.Record] = await driver.fetch(sql, *args)
                return rows
        except LostConnection as error:
            if attempt == 2:
                raise
            log.warning("%s; retrying once", error)
    raise AssertionError("unreachable")


def _is_disconnect(error: BaseException, driver: asyncpg.Connection) -> bool:
    if isinstance(error, asyncpg.DataError):
        return False
    return isinstance(error, _DISCONNECTS) or driver.is_closed()
