"""Small builders for tests: events with sensible metadata."""

from __future__ import annotations

from domain import events as ev
from domain.log import EventMetadata, NewEvent

METADATA = EventMetadata(tenant="acme", actor="test")


def new(event: ev.DomainEvent, *, tenant: str = "acme") -> NewEvent:
    return NewEvent(event=event, metadata=EventMetadata(tenant=tenant, actor="test"))


def submitted(content: str = "URGENT: pay now", **kw: object) -> NewEvent:
    return new(ev.TaskSubmitted(content=content, kind="sms"), **kw)  # type: ignore[arg-type]


def progress(percent: int = 50, message: str = "working") -> NewEvent:
    return new(ev.ProgressReported(message=message, percent=percent, step="scam_db"))
