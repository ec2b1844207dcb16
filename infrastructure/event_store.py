"""The event store: the only source of truth, on PostgreSQL (SQLAlchemy Core over asyncpg).

Rows are written by `append` and read by `read_stream` (one task, by version) and `read_all`
(the whole log, for the relay and projectors). The mapping between `NewEvent`/`RecordedEvent` and
rows is `_to_row` / `_from_row`; the table layout is in migrations/versions/0001_event_log.py.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.errors import ConcurrencyConflict, DuplicateEventId, InvalidAppend, UnknownEventType
from domain.events import DomainEvent, UnreadableEvent, event_class
from domain.log import LOG_START, EventMetadata, LogCursor, NewEvent, RecordedEvent
from infrastructure import raw_sql
from infrastructure.relay_partitions import PARTITION_OF_ROW, Partition

log = logging.getLogger(__name__)

MAX_BATCH = 1000
MAX_VERSION = 2**31 - 1  # versions are PostgreSQL integers


def insert_events_sql(guard: str) -> str:
    """An INSERT of one stream's events (`append_args`: $1 the stream, $2 the expected version,
    $3..$7 the rows) that inserts nothing unless `guard` holds, returning what `appended`
    takes."""
    return f"""
    INSERT INTO events (stream_id, version, event_id, type, data, metadata)
    SELECT $1, e.version, e.event_id, e.type, e.data::jsonb, e.metadata::jsonb
    FROM unnest($3::integer[], $4::uuid[], $5::text[], $6::text[], $7::text[])
           AS e(version, event_id, type, data, metadata)
    WHERE {guard}
    RETURNING global_position, version, recorded_at, transaction_id::text AS transaction_id"""


# The whole append is this one statement, atomic on its own. Concurrency control is the unique
# key (stream_id, version): a writer with a stale expected version collides with the row that
# took its version and gets a unique violation. The EXISTS guard refuses an expected version from
# the future (expected 5 on a stream at 3 would otherwise leave a hole at 4 and 5): it inserts
# nothing unless the row at the expected version is there.
_APPEND = insert_events_sql(
    "$2::integer = 0"
    " OR EXISTS (SELECT 1 FROM events WHERE stream_id = $1 AND version = $2::integer)"
)
_VERSION_TAKEN = "events_stream_version_key"
_EVENT_ID_TAKEN = "events_event_id_key"
# The unique violations that mean "not appended": a conflict, or events stored already.
NOT_APPENDED = (_VERSION_TAKEN, _EVENT_ID_TAKEN)

# jsonb columns come back as text, parsed by pydantic's own JSON parser in one pass.
_COLUMNS = (
    "stream_id, version, global_position, transaction_id::text AS transaction_id, event_id,"
    " type, data::text AS data, metadata::text AS metadata, recorded_at"
)


# The next $3 events past the cursor ($1, $2) that no running transaction can still precede
# (read_all says why). The ORDER BY is qualified: a bare `transaction_id` names the *output*
# column, the text form _COLUMNS selects, and text order puts '100000' before '99999': the
# log-order index went unused (a sort of every row past the cursor, 100 ms at 100,000) and a
# batch straddling a change in digit count skipped events for good.
_NEXT_IN_LOG_ORDER = (
    "WHERE (transaction_id, global_position) > ($1::text::xid8, $2)"
    " AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    " ORDER BY events.transaction_id, events.global_position LIMIT $3"
)


@dataclass(frozen=True)
class _Stored:
    """What the append statement returns for each row it inserted."""

    position: int
    version: int
    recorded_at: datetime
    transaction_id: str

    def recorded(self, stream_id: str, new: NewEvent) -> RecordedEvent:
        return RecordedEvent(
            stream_id=stream_id,
            version=self.version,
            position=self.position,
            cursor=LogCursor(int(self.transaction_id), self.position),
            event_id=new.event_id,
            recorded_at=self.recorded_at,
            metadata=new.metadata,
            event=new.event,
        )


@dataclass(frozen=True)
class AppendResult:
    stream_id: str
    versions: tuple[int, ...]
    positions: tuple[int, ...]
    stored: bool  # False when every event id was already stored: an idempotent no-op
    # The events as the log now holds them; empty for a no-op (they were recorded before).
    recorded: tuple[RecordedEvent, ...] = ()

    @property
    def last_version(self) -> int:
        return self.versions[-1]


def appended(
    stream_id: str, rows: Sequence[asyncpg.Record], events: Sequence[NewEvent]
) -> AppendResult:
    """The result of an append whose INSERT (`insert_events_sql`) returned `rows`."""
    return _appended(stream_id, [_Stored(*row.values()) for row in rows], events)


def _appended(stream_id: str, rows: Sequence[_Stored], events: Sequence[NewEvent]) -> AppendResult:
    return AppendResult(
        stream_id,
        versions=tuple(row.version for row in rows),
        positions=tuple(row.position for row in rows),
        stored=True,
        recorded=tuple(row.recorded(stream_id, e) for row, e in zip(rows, events, strict=True)),
    )


class NothingAppended(Exception):
    """`append_on` inserted nothing: a retry of events stored already, or a conflict. Raised
    inside the caller's transaction, which it aborts; `unappended` then says which."""


class EventStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

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
        validate_append(stream_id, events, expected_version)
        args = append_args(stream_id, events, expected_version)
        try:
            if conn is None:
                rows = await self._append_autocommit(args)
            else:
                async with conn.begin_nested():  # a conflict must not abort the caller's work
                    result = await conn.exec_driver_sql(_APPEND, args)
                    rows = [
                        _Stored(
                            row.global_position, row.version, row.recorded_at, row.transaction_id
                        )
                        for row in result
                    ]
        except IntegrityError as error:
            if _VERSION_TAKEN not in str(error.orig) and _EVENT_ID_TAKEN not in str(error.orig):
                raise
            rows = []
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name not in NOT_APPENDED:
                raise
            rows = []
        if rows:
            return _appended(stream_id, rows, events)
        # Nothing inserted: a retry of events stored already, or a real conflict.
        return await self._already_stored(conn, stream_id, events, expected_version)

    @asynccontextmanager
    async def raw_transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction on a pooled connection, through asyncpg itself: for a hot path of a
        few statements (the worker's appends, infrastructure/task_log.py), on which
        SQLAlchemy's execution layer costs more CPU than the statements. A connection that
        turns out dead ends the block with `LostConnection` (infrastructure/raw_sql.py): the
        caller decides whether to try again."""
        async with raw_sql.pooled(self._engine) as driver, driver.transaction():
            yield driver

    async def append_on(
        self,
        conn: asyncpg.Connection,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
    ) -> AppendResult:
        """`append` inside a `raw_transaction`, with no savepoint: when it inserts nothing it
        raises `NothingAppended`, which aborts the transaction, and the caller asks
        `unappended` outside it whether that was a retry or a conflict."""
        validate_append(stream_id, events, expected_version)
        try:
            rows = await conn.fetch(_APPEND, *append_args(stream_id, events, expected_version))
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name not in NOT_APPENDED:
                raise
            raise NothingAppended(stream_id) from None
        if not rows:
            raise NothingAppended(stream_id)
        return appended(stream_id, rows, events)

    async def unappended(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        """After `NothingAppended`: the no-op result if every event is stored already (a
        retry); else raises `ConcurrencyConflict` or `DuplicateEventId` as `append` would."""
        return await self._already_stored(None, stream_id, events, expected_version)

    async def _append_autocommit(self, args: tuple[Any, ...]) -> list[_Stored]:
        # The hot path talks to asyncpg directly, on a connection from the SQLAlchemy pool: the
        # statement is atomic by itself, so it needs no BEGIN/COMMIT, and SQLAlchemy's execution
        # layer cost more CPU than the statement itself (benchmarks/append.py: about 0.45x the
        # plain-insert rate at 8 writers through SQLAlchemy, about 0.9x here). Retrying after a
        # lost connection is safe: an append that did commit is recognised by its event ids.
        rows = await self._fetch(_APPEND, *args)
        return [_Stored(*row.values()) for row in rows]

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """One statement through asyncpg (reads decode ~20 µs less per row than through
        SQLAlchemy's result layer: a 1,000-event page in 5 ms, not 22)."""
        return await raw_sql.fetch(self._engine, sql, *args)

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
        rows = await self._fetch("SELECT max(version) FROM events WHERE stream_id = $1", stream_id)
        return int(rows[0][0] or 0)

    async def read_stream(
        self, stream_id: str, after_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        """The stream's events with version > after_version, in version order."""
        if not 0 <= after_version <= MAX_VERSION:
            raise ValueError(f"after_version must be between 0 and {MAX_VERSION}")
        if limit is not None and limit < 1:
            raise ValueError("limit must be >= 1")
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND version > $2"
            " ORDER BY version LIMIT $3",
            stream_id,
            after_version,
            limit,
        )
        return [_from_row(row) for row in rows]

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        """Several whole streams in one query, each in version order (rebuilds, audits)."""
        query = (
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = ANY($1) ORDER BY stream_id, version"
        )
        streams: dict[str, list[RecordedEvent]] = {sid: [] for sid in stream_ids}
        for row in await self._fetch(query, list(stream_ids)):
            streams[row["stream_id"]].append(_from_row(row))
        return streams

    async def read_all(
        self, after: LogCursor = LOG_START, limit: int = 500, *, tolerant: bool = False
    ) -> list[RecordedEvent]:
        """The next events of the whole log after `after`, never skipping one that commits late.
        With `tolerant`, an event this code cannot decode comes back as an `UnreadableEvent` (and
        an error is logged) instead of raising: the relay must not stop at it forever.

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
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM events {_NEXT_IN_LOG_ORDER}",
            str(after.transaction_id),
            after.position,
            limit,
        )
        return [_from_row(row, tolerant=tolerant) for row in rows]

    async def read_partition(
        self, after: LogCursor, partition: Partition, limit: int = 500, *, tolerant: bool = False
    ) -> tuple[list[RecordedEvent], LogCursor, bool]:
        """`read_all`'s next `limit` events, of which those of `partition`'s streams; the
        cursor of the last event read, of any partition (`after` when there was none); and
        whether the read was full (`limit` events of any partition: more may follow at once).
        Reading on from that cursor moves past the other partitions' events even when none of
        this one's come for a while, so neither this read nor the relay's probe rescans
        them."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        mine = PARTITION_OF_ROW
        rows = await self._fetch(
            "SELECT stream_id, version, global_position, transaction_id::text AS transaction_id,"
            f" event_id, type, {mine} AS mine,"
            f" CASE WHEN {mine} THEN data::text END AS data,"
            f" CASE WHEN {mine} THEN metadata::text END AS metadata, recorded_at FROM events"
            f" {_NEXT_IN_LOG_ORDER}",
            str(after.transaction_id),
            after.position,
            limit,
            partition.count,
            partition.index,
        )
        if not rows:
            return [], after, False
        last = LogCursor(int(rows[-1]["transaction_id"]), rows[-1]["global_position"])
        events = [_from_row(row, tolerant=tolerant) for row in rows if row["mine"]]
        return events, last, len(rows) == limit

    async def log_end(self) -> LogCursor:
        """The cursor of the last event `read_all` can return now: reading on from it returns
        exactly what commits from here on (and what is still in flight), nothing older."""
        rows = await self._fetch(
            "SELECT transaction_id::text AS transaction_id, global_position FROM events"
            " WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
            # qualified, as in read_all: the bare name would sort by the text alias
            " ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1"
        )
        if not rows:
            return LOG_START
        return LogCursor(int(rows[0]["transaction_id"]), rows[0]["global_position"])


def validate_append(stream_id: str, events: Sequence[NewEvent], expected_version: int) -> None:
    """`InvalidAppend` for an append that can never succeed as asked (shared by every store)."""
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


def append_args(
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


def _from_row(row: asyncpg.Record, *, tolerant: bool = False) -> RecordedEvent:
    stream_id, version = row["stream_id"], row["version"]
    event: DomainEvent
    try:
        event = event_class(row["type"]).model_validate_json(row["data"])
    except (UnknownEventType, ValidationError) as error:
        if not tolerant:
            if isinstance(error, UnknownEventType):
                raise UnknownEventType(row["type"], stream_id=stream_id, version=version) from None
            raise
        log.error("cannot decode %s at %r version %d: %s", row["type"], stream_id, version, error)
        event = UnreadableEvent(original_type=row["type"], error=str(error)[:500])
    try:
        metadata = _metadata(row["metadata"])
    except ValidationError as error:
        if not tolerant:
            raise
        # Passed on all the same, or the relay would stop at this row for good. Its tenant is
        # unknown: the empty one, whose channel no caller can follow (tokens name a tenant).
        log.error("cannot decode the metadata at %r version %d: %s", stream_id, version, error)
        metadata = EventMetadata.model_construct(tenant="", actor="")
        event = UnreadableEvent(original_type=row["type"], error=str(error)[:500])
    return RecordedEvent(
        stream_id=row["stream_id"],
        version=row["version"],
        position=row["global_position"],
        cursor=LogCursor(int(row["transaction_id"]), row["global_position"]),
        event_id=row["event_id"],
        recorded_at=row["recorded_at"],
        metadata=metadata,
        event=event,
    )


@functools.lru_cache(maxsize=4096)
def _metadata(text: str) -> EventMetadata:
    """Parsed once per distinct metadata: the events of a task mostly share theirs (frozen, so
    sharing the object is safe)."""
    return EventMetadata.model_validate_json(text)
