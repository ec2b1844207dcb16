"""The event store: the only source of truth, on PostgreSQL (SQLAlchemy Core over asyncpg).

Rows are written by `append` and read by `read_stream` (one task, by version) and `read_all`
(the whole log, for the relay and projectors). The mapping between `NewEvent`/`RecordedEvent` and
rows is `_to_row` / `_from_row`; the table layout is in migrations/versions/0001_event_log.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.errors import ConcurrencyConflict, DuplicateEventId, InvalidAppend, UnknownEventType
from domain.events import decode_event
from domain.log import LOG_START, EventMetadata, LogCursor, NewEvent, RecordedEvent

log = logging.getLogger(__name__)

MAX_BATCH = 1000

# The whole append is this one statement, atomic on its own. Concurrency control is the unique
# key (stream_id, version): a writer with a stale expected version collides with the row that
# took its version and gets a unique violation. The EXISTS guard refuses an expected version from
# the future (expected 5 on a stream at 3 would otherwise leave a hole at 4 and 5): it inserts
# nothing unless the row at the expected version is there.
_APPEND = """
    INSERT INTO events (stream_id, version, event_id, type, data, metadata)
    SELECT $1, e.version, e.event_id, e.type, e.data::jsonb, e.metadata::jsonb
    FROM unnest($3::integer[], $4::uuid[], $5::text[], $6::text[], $7::text[])
           AS e(version, event_id, type, data, metadata)
    WHERE $2::integer = 0
       OR EXISTS (SELECT 1 FROM events WHERE stream_id = $1 AND version = $2::integer)
    RETURNING global_position, version
"""
_VERSION_TAKEN = "events_stream_version_key"
_EVENT_ID_TAKEN = "events_event_id_key"

_COLUMNS = (
    "stream_id, version, global_position, transaction_id::text AS transaction_id, event_id,"
    " type, data, metadata, recorded_at"
)


@dataclass(frozen=True)
class AppendResult:
    stream_id: str
    versions: tuple[int, ...]
    positions: tuple[int, ...]
    stored: bool  # False when every event id was already stored: an idempotent no-op

    @property
    def last_version(self) -> int:
        return self.versions[-1]


class EventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction callers can share with `append(conn=...)`, e.g. to write a projection
        or hold a commit open in a test."""
        async with self._engine.begin() as conn:
            yield conn

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
        *,
        conn: AsyncConnection | None = None,
    ) -> AppendResult:
        """Append `events` as versions expected_version+1 ... atomically.

        Raises `ConcurrencyConflict` if the stream is not at `expected_version` (0 = new stream).
        Appending a batch whose event ids are all stored already is a no-op that returns where
        they are; a batch that mixes stored and new ids raises `DuplicateEventId`.
        """
        _validate_append(stream_id, events, expected_version)
        args = _append_args(stream_id, events, expected_version)
        try:
            if conn is None:
                rows = await self._append_autocommit(args)
            else:
                async with conn.begin_nested():  # a conflict must not abort the caller's work
                    result = await conn.exec_driver_sql(_APPEND, args)
                    rows = [(row.global_position, row.version) for row in result]
        except IntegrityError as error:
            if _VERSION_TAKEN not in str(error.orig) and _EVENT_ID_TAKEN not in str(error.orig):
                raise
            rows = []
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name not in (_VERSION_TAKEN, _EVENT_ID_TAKEN):
                raise
            rows = []
        if rows:
            return AppendResult(
                stream_id,
                versions=tuple(version for _, version in rows),
                positions=tuple(position for position, _ in rows),
                stored=True,
            )
        # Nothing inserted: a retry of events stored already, or a real conflict.
        return await self._already_stored(conn, stream_id, events, expected_version)

    async def _append_autocommit(self, args: tuple[Any, ...]) -> list[tuple[int, int]]:
        # The hot path talks to asyncpg directly, on a connection from the SQLAlchemy pool: the
        # statement is atomic by itself, so it needs no BEGIN/COMMIT, and SQLAlchemy's execution
        # layer cost more CPU than the statement itself (benchmarks/append.py: about 0.45x the
        # plain-insert rate at 8 writers through SQLAlchemy, about 0.9x here).
        for attempt in (1, 2):
            pooled = await self._engine.raw_connection()
            driver: asyncpg.Connection = pooled.driver_connection
            try:
                rows = await driver.fetch(_APPEND, *args)
            except BaseException as error:
                if not _is_disconnect(error, driver):
                    pooled.close()
                    raise
                # PostgreSQL restarted or our backend was terminated: every pooled connection
                # is probably dead. Drop them all and try once more; retrying is safe because
                # an append that did commit is recognised by its event ids.
                pooled.invalidate()
                await self._engine.dispose(close=False)
                if attempt == 2 or isinstance(error, asyncio.CancelledError):
                    raise
                log.warning("append: lost the database connection (%s); retrying once", error)
                continue
            pooled.close()  # back to the pool
            return [(row["global_position"], row["version"]) for row in rows]
        raise AssertionError("unreachable")

    async def _already_stored(
        self,
        conn: AsyncConnection | None,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
    ) -> AppendResult:
        ids = [e.event_id for e in events]
        query = sa.text(
            "SELECT event_id, stream_id, version, global_position FROM events"
            " WHERE event_id = ANY(:ids) ORDER BY version"
        )
        async with _connection(self._engine, conn) as c:
            stored = (await c.execute(query, {"ids": ids})).all()
            actual = await _version(c, stream_id)
        if not stored:
            raise ConcurrencyConflict(stream_id, expected_version, actual or None)
        if len(stored) == len(ids) and all(row.stream_id == stream_id for row in stored):
            return AppendResult(
                stream_id,
                versions=tuple(row.version for row in stored),
                positions=tuple(row.global_position for row in stored),
                stored=False,
            )
        raise DuplicateEventId(stream_id, [str(row.event_id) for row in stored])

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version; 0 if it does not exist."""
        query = sa.text("SELECT max(version) FROM events WHERE stream_id = :s")
        (row,) = await self._fetch(query, {"s": stream_id})
        return int(row[0] or 0)

    async def read_stream(
        self, stream_id: str, after_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        """The stream's events with version > after_version, in version order."""
        if after_version < 0:
            raise ValueError("after_version must be >= 0")
        if limit is not None and limit < 1:
            raise ValueError("limit must be >= 1")
        query = sa.text(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = :s AND version > :after"
            " ORDER BY version LIMIT :limit"
        )
        rows = await self._fetch(query, {"s": stream_id, "after": after_version, "limit": limit})
        return [_from_row(row) for row in rows]

    async def read_all(self, after: LogCursor = LOG_START, limit: int = 500) -> list[RecordedEvent]:
        """The next events of the whole log after `after`, never skipping one that commits late.

        Ordering technique: a plain `WHERE global_position > :last` reader is wrong under
        concurrent writers. The identity value is taken at INSERT, the row becomes visible at
        COMMIT, and the two orders differ: a transaction holding position 101 can commit after
        one holding 102; a reader that already moved its cursor past 102 never sees 101.

        Each row records the id of the transaction that wrote it (`xid8`, pg_current_xact_id()).
        We only return rows whose transaction id is below the xmin of the current snapshot, the
        oldest transaction still running anywhere in the cluster. Every transaction below that
        line has finished, and every transaction that will ever write gets a larger id, so the set
        of rows below the line is final: ordering by (transaction_id, global_position) and keeping
        that pair as the cursor can never skip a row.

        We chose this over a lock that serializes writers (simple, but only one commit at a
        time): here writers never wait for each other. The cost is that a long-running
        transaction anywhere in the cluster holds back readers until it ends; the relay's lag
        metric shows it. Keep transactions that write events short.
        """
        if limit < 1:
            raise ValueError("limit must be >= 1")
        query = sa.text(
            f"SELECT {_COLUMNS} FROM events"
            " WHERE (transaction_id, global_position) > (CAST(:tx AS xid8), :pos)"
            "   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
            " ORDER BY transaction_id, global_position LIMIT :limit"
        )
        params = {"tx": after.transaction_id, "pos": after.position, "limit": limit}
        return [_from_row(row) for row in await self._fetch(query, params)]

    async def _fetch(self, query: sa.TextClause, params: dict[str, Any]) -> Sequence[sa.Row[Any]]:
        """Run a read; once more if the connection turned out dead (a PostgreSQL restart, a
        terminated backend). SQLAlchemy has then invalidated the pool, so the retry reconnects."""
        for attempt in (1, 2):
            try:
                async with self._engine.connect() as conn:
                    return (await conn.execute(query, params)).all()
            except DBAPIError as error:
                if attempt == 2 or not error.connection_invalidated:
                    raise
                log.warning("read: lost the database connection (%s); retrying once", error.orig)
        raise AssertionError("unreachable")


def _validate_append(stream_id: str, events: Sequence[NewEvent], expected_version: int) -> None:
    if not stream_id or len(stream_id) > 200:
        raise InvalidAppend("stream_id must be 1 to 200 characters")
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise InvalidAppend(f"expected_version must be an int, not {expected_version!r}")
    if expected_version < 0:
        raise InvalidAppend(f"expected_version must be >= 0, got {expected_version}")
    if not events:
        raise InvalidAppend(f"stream {stream_id!r}: cannot append an empty batch")
    if len(events) > MAX_BATCH:
        raise InvalidAppend(f"a batch holds at most {MAX_BATCH} events, got {len(events)}")
    if len({e.event_id for e in events}) != len(events):
        raise InvalidAppend(f"stream {stream_id!r}: the batch repeats an event id")


def _is_disconnect(error: BaseException, driver: asyncpg.Connection) -> bool:
    if isinstance(error, asyncio.CancelledError):
        return True  # cancelled mid-statement: the connection's state is unknown
    disconnects = (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.AdminShutdownError,
        asyncpg.CannotConnectNowError,
        OSError,
    )
    return isinstance(error, disconnects) or driver.is_closed()


def _append_args(
    stream_id: str, events: Sequence[NewEvent], expected_version: int
) -> tuple[Any, ...]:
    return (
        stream_id,
        expected_version,
        list(range(expected_version + 1, expected_version + len(events) + 1)),
        [e.event_id for e in events],
        [e.type for e in events],
        [json.dumps(e.data()) for e in events],
        [e.metadata.model_dump_json() for e in events],
    )


async def _version(conn: AsyncConnection, stream_id: str) -> int:
    query = sa.text("SELECT max(version) FROM events WHERE stream_id = :s")
    return int(await conn.scalar(query, {"s": stream_id}) or 0)


@asynccontextmanager
async def _connection(
    engine: AsyncEngine, conn: AsyncConnection | None
) -> AsyncIterator[AsyncConnection]:
    if conn is not None:
        yield conn
    else:
        async with engine.connect() as own:
            yield own


def _from_row(row: sa.Row[Any]) -> RecordedEvent:
    try:
        event = decode_event(row.type, row.data)
    except UnknownEventType:
        raise UnknownEventType(row.type, stream_id=row.stream_id, version=row.version) from None
    return RecordedEvent(
        stream_id=row.stream_id,
        version=row.version,
        position=row.global_position,
        cursor=LogCursor(int(row.transaction_id), row.global_position),
        event_id=row.event_id if isinstance(row.event_id, uuid.UUID) else uuid.UUID(row.event_id),
        recorded_at=row.recorded_at,
        metadata=EventMetadata.model_validate(row.metadata),
        event=event,
    )
