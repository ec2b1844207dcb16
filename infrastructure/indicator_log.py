"""Writes to the indicator streams: each append and its projection in one transaction, so a
lookup right after a write (the api's answer, the next analysis) sees it.

Writers of one stream take turns on a transaction-level advisory lock named after the stream,
then append at the stream's current version: no version conflicts to retry, and the rows are
projected in the order of the stream.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from domain import events as ev
from domain.log import EventMetadata, NewEvent, RecordedEvent
from infrastructure import indicator_projection
from infrastructure.event_store import MAX_BATCH, EventStore
from infrastructure.indicators import (
    MAX_REPORT_COUNT,
    Indicator,
    indicator_from_row,
    normalise_indicator,
)


class IndicatorNotAsserted(LookupError):
    """The stream holds no assertion of that indicator (never made, or retracted)."""

    def __init__(self, stream_id: str, kind: str, value: str) -> None:
        super().__init__(f"no {kind} indicator {value!r} in {stream_id}")
        self.stream_id, self.kind, self.value = stream_id, kind, value


@dataclass
class Recorded:
    """What a write did: the events as the log holds them (none when every one was stored
    before: an idempotent retry) and the rows they added, refreshed and removed."""

    events: list[RecordedEvent] = field(default_factory=list)
    added: int = 0
    refreshed: int = 0
    removed: int = 0


_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:stream, 0))")
_VERSION = sa.text("SELECT max(version) FROM events WHERE stream_id = :stream")
_ASSERTED = sa.text(
    "SELECT 1 FROM scam_indicators WHERE kind = :kind AND value = :value AND stream_id = :stream"
)


class IndicatorLog:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def record(
        self, stream_id: str, events: Sequence[NewEvent], *, one_by_one: bool = False
    ) -> Recorded:
        """Append `events` to the stream and project them, all in one transaction. With
        `one_by_one`, each event is its own append, so events stored before (a deterministic
        event id) are skipped alone rather than failing the batch."""
        async with self.store.transaction() as conn:
            return await self.record_in(conn, stream_id, events, one_by_one=one_by_one)

    async def record_in(
        self,
        conn: AsyncConnection,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        one_by_one: bool = False,
    ) -> Recorded:
        """`record`, in the caller's transaction."""
        await conn.execute(_LOCK, {"stream": stream_id})
        version = int(await conn.scalar(_VERSION, {"stream": stream_id}) or 0)
        done = Recorded()
        size = 1 if one_by_one else MAX_BATCH
        for start in range(0, len(events), size):
            result = await self.store.append(
                stream_id, events[start : start + size], version, conn=conn
            )
            for recorded in result.recorded:
                applied = await indicator_projection.apply(conn, recorded)
                done.added += applied.added
                done.refreshed += applied.refreshed
                done.removed += applied.removed
                done.events.append(recorded)
                version = recorded.version
        return done

    async def assert_indicator(
        self,
        stream_id: str,
        kind: str,
        value: str,
        category: str,
        *,
        metadata: EventMetadata,
        report_count: int = 1,
        source: str = "analyst",
        seen_at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Indicator:
        """Record `report_count` more reports of an indicator in the stream; the row as it now
        stands. ValueError if `value` is not a `kind`."""
        if not 0 <= report_count <= MAX_REPORT_COUNT:
            raise ValueError(f"report_count must be from 0 to {MAX_REPORT_COUNT}")
        event = ev.IndicatorAsserted.model_validate(
            {
                "kind": kind,
                "value": normalise_indicator(kind, value),
                "category": category,
                "report_count": report_count,
                "source": source,
                "seen_at": seen_at,
            }
        )
        new = NewEvent(event, metadata, event_id or uuid.uuid4())
        async with self.store.transaction() as conn:
            await self.record_in(conn, stream_id, [new])
            row = await _row(conn, stream_id, event.kind, event.value)
        return row

    async def retract(
        self,
        stream_id: str,
        kind: str,
        value: str,
        *,
        metadata: EventMetadata,
        reason: str = "",
    ) -> RecordedEvent:
        """Withdraw the stream's assertion of an indicator: the retraction event as recorded.
        IndicatorNotAsserted if the stream holds none; ValueError if `value` is not a `kind`."""
        normal = normalise_indicator(kind, value)
        event = ev.IndicatorRetracted.model_validate(
            {"kind": kind, "value": normal, "reason": reason}
        )
        async with self.store.transaction() as conn:
            await conn.execute(_LOCK, {"stream": stream_id})  # the check and the append as one
            params = {"kind": kind, "value": normal, "stream": stream_id}
            if await conn.scalar(_ASSERTED, params) is None:
                raise IndicatorNotAsserted(stream_id, kind, normal)
            done = await self.record_in(conn, stream_id, [NewEvent(event, metadata)])
        return done.events[0]


_ROW = sa.text(
    f"SELECT {indicator_projection.COLUMNS} FROM scam_indicators"
    " WHERE kind = :kind AND value = :value AND stream_id = :stream"
)


async def _row(conn: AsyncConnection, stream_id: str, kind: str, value: str) -> Indicator:
    params = {"kind": kind, "value": value, "stream": stream_id}
    return indicator_from_row((await conn.execute(_ROW, params)).one())
