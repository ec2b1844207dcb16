"""Envelopes of the log: what goes in (`NewEvent`), what comes out (`RecordedEvent`), and where a
reader of the whole log stands (`LogCursor`). The storage itself lives in infrastructure/."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.events import DomainEvent


class EventMetadata(BaseModel):
    """Who did it, for whom, and as part of what: stored with every event."""

    model_config = ConfigDict(frozen=True, extra="allow")

    tenant: str = Field(min_length=1, max_length=200)
    actor: str = Field(min_length=1, max_length=200)
    correlation_id: uuid.UUID | None = None
    causation_id: uuid.UUID | None = None


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended. `event_id` is the idempotency key: give a deterministic one
    when the same logical event may be appended twice (a retried job, a retried request)."""

    event: DomainEvent
    metadata: EventMetadata
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def type(self) -> str:
        return self.event.type_name

    def data(self) -> dict[str, Any]:
        return self.event.model_dump(mode="json")


@dataclass(frozen=True, order=True)
class LogCursor:
    """A point in the whole log, ordered by (writing transaction id, global position).

    Why not the global position alone: see `infrastructure.event_store.read_all`. The string
    form `"<transaction_id>-<position>"` is what a checkpoint stores.
    """

    transaction_id: int = 0
    position: int = 0

    def __str__(self) -> str:
        return f"{self.transaction_id}-{self.position}"

    @classmethod
    def parse(cls, text: str) -> LogCursor:
        try:
            tx, pos = text.split("-")
            cursor = cls(int(tx), int(pos))
        except ValueError:
            raise ValueError(f"malformed log cursor {text!r}; expected '<tx>-<position>'") from None
        if cursor.transaction_id < 0 or cursor.position < 0:
            raise ValueError(f"malformed log cursor {text!r}; parts must be non-negative")
        return cursor


LOG_START = LogCursor()


@dataclass(frozen=True)
class RecordedEvent:
    """An event as the log holds it. `version` is the per-stream `seq` clients see."""

    stream_id: str
    version: int
    position: int
    cursor: LogCursor
    event_id: uuid.UUID
    recorded_at: datetime
    metadata: EventMetadata
    event: DomainEvent

    @property
    def type(self) -> str:
        return self.event.type_name
