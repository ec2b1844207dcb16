"""Small builders for tests: events with sensible metadata."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain import events as ev
from domain.log import EventMetadata, LogCursor, NewEvent, RecordedEvent

METADATA = EventMetadata(tenant="acme", actor="test")


def new(event: ev.DomainEvent, *, tenant: str = "acme") -> NewEvent:
    return NewEvent(event=event, metadata=EventMetadata(tenant=tenant, actor="test"))


def submitted(content: str = "URGENT: pay now", *, tenant: str = "acme") -> NewEvent:
    return new(ev.TaskSubmitted(content=content, kind="sms"), tenant=tenant)


def progress(percent: int = 50, message: str = "working") -> NewEvent:
    return new(ev.ProgressReported(message=message, percent=percent, step="scam_db"))


T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def recorded_stream(
    *events: ev.DomainEvent, stream_id: str = "t1", tenant: str = "acme", seconds_apart: int = 1
) -> list[RecordedEvent]:
    """A stream as the log would return it, built in memory for tests of pure functions: event
    i has version i and was recorded at T0 + i * seconds_apart."""
    return [
        RecordedEvent(
            stream_id=stream_id,
            version=i,
            position=i,
            cursor=LogCursor(i, i),
            event_id=uuid.uuid4(),
            recorded_at=T0 + timedelta(seconds=i * seconds_apart),
            metadata=EventMetadata(tenant=tenant, actor="worker"),
            event=event,
        )
        for i, event in enumerate(events, start=1)
    ]
