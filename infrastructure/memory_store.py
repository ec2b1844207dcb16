"""The event log in memory, for tests at unit speed: the same contract as the PostgreSQL
`EventStore` (`infrastructure.event_log.EventLog`, checked by tests/contract), in one process.

What a caller can observe is the same: versions from 1 without holes, optimistic concurrency on
the expected version, idempotent re-appends by event id, `DuplicateEventId` for a batch that
mixes stored and new ids, the same `InvalidAppend` messages, events read back as decoded from
their stored JSON (not the caller's objects), and a whole-log order in which each append's
events follow the previous append's, with cursors that only grow. Text that PostgreSQL's jsonb
refuses (NUL, lone surrogates) is refused with its whole batch, as `UnstorableEvent` where
PostgreSQL's driver raises its `DataError`. Every append here commits at once, so `read_all`
has no late commit to wait for. Each operation yields to the event loop once, as a database
round trip would: a caller that retries in a loop still lets others run.

`InMemoryTaskLog` is `TaskLog` over it: the task projection kept by folding each append.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime

from domain.errors import ConcurrencyConflict, DuplicateEventId, TaskNotFound
from domain.events import event_class
from domain.log import LOG_START, EventMetadata, LogCursor, NewEvent, RecordedEvent
from domain.task import TaskState, fold
from infrastructure.event_store import MAX_VERSION, AppendResult, validate_append

# What PostgreSQL refuses in jsonb text: the NUL character, and UTF-16 surrogates (in a Python
# str each one is a lone surrogate: a valid pair decodes to one character).
_REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


class UnstorableEvent(ValueError):
    """An event whose data or metadata PostgreSQL's jsonb would refuse."""


class InMemoryEventStore:
    def __init__(self) -> None:
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._by_id: dict[uuid.UUID, RecordedEvent] = {}
        self._log: list[RecordedEvent] = []  # in cursor order
        self._transactions = 0  # one per append, as each PostgreSQL append is one transaction

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        validate_append(stream_id, events, expected_version)
        stored = [_stored_form(new) for new in events]  # refused before anything is stored
        await asyncio.sleep(0)
        if self._takes(stream_id, events, expected_version):
            recorded = self._insert(stream_id, events, stored, expected_version)
            return AppendResult(
                stream_id,
                versions=tuple(r.version for r in recorded),
                positions=tuple(r.position for r in recorded),
                stored=True,
                recorded=tuple(_as_given(r, new) for r, new in zip(recorded, events, strict=True)),
            )
        return self._already_stored(stream_id, events, expected_version)

    def _takes(self, stream_id: str, events: Sequence[NewEvent], expected_version: int) -> bool:
        """Whether the batch goes in as asked: the stream is at `expected_version` and none of
        its event ids is stored anywhere."""
        if self._version(stream_id) != expected_version:
            return False
        return not any(new.event_id in self._by_id for new in events)

    def _insert(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        stored: list[tuple[str, EventMetadata]],
        expected_version: int,
    ) -> list[RecordedEvent]:
        self._transactions += 1
        now, stream = datetime.now(UTC), self._streams.setdefault(stream_id, [])
        recorded = []
        for offset, (new, (data, metadata)) in enumerate(zip(events, stored, strict=True), 1):
            position = len(self._log) + 1
            event = RecordedEvent(
                stream_id=stream_id,
                version=expected_version + offset,
                position=position,
                cursor=LogCursor(self._transactions, position),
                event_id=new.event_id,
                recorded_at=now,
                metadata=metadata,
                event=event_class(new.type).model_validate_json(data),
            )
            stream.append(event)
            self._by_id[new.event_id] = event
            self._log.append(event)
            recorded.append(event)
        return recorded

    def _already_stored(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        """Nothing inserted: a retry of events stored already, or a real conflict."""
        found = sorted(
            (self._by_id[e.event_id] for e in events if e.event_id in self._by_id),
            key=lambda r: r.version,
        )
        if not found:
            actual = self._version(stream_id)
            raise ConcurrencyConflict(stream_id, expected_version, actual or None)
        if len(found) == len(events) and all(r.stream_id == stream_id for r in found):
            return AppendResult(
                stream_id,
                versions=tuple(r.version for r in found),
                positions=tuple(r.position for r in found),
                stored=False,
            )
        raise DuplicateEventId(stream_id, [str(r.event_id) for r in found])

    def _version(self, stream_id: str) -> int:
        stream = self._streams.get(stream_id)
        return stream[-1].version if stream else 0

    async def stream_version(self, stream_id: str) -> int:
        await asyncio.sleep(0)
        return self._version(stream_id)

    async def read_stream(
        self, stream_id: str, after_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        if not 0 <= after_version <= MAX_VERSION:
            raise ValueError(f"after_version must be between 0 and {MAX_VERSION}")
        if limit is not None and limit < 1:
            raise ValueError("limit must be >= 1")
        await asyncio.sleep(0)
        # Versions run 1, 2, ... without holes: version v is at index v - 1.
        rest = self._streams.get(stream_id, [])[after_version:]
        return rest if limit is None else rest[:limit]

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        await asyncio.sleep(0)
        return {sid: list(self._streams.get(sid, [])) for sid in stream_ids}

    async def read_all(
        self, after: LogCursor = LOG_START, limit: int = 500, *, tolerant: bool = False
    ) -> list[RecordedEvent]:
        """`tolerant` is accepted for the contract's sake: nothing unreadable gets in here."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        await asyncio.sleep(0)
        start = bisect_right(self._log, after, key=lambda r: r.cursor)
        return self._log[start : start + limit]

    async def log_end(self) -> LogCursor:
        await asyncio.sleep(0)
        return self._log[-1].cursor if self._log else LOG_START


class InMemoryTaskLog:
    """`TaskLog` over the in-memory store: each append folded into the task's state, which
    `task` returns (what `TaskLog` keeps in the task_projection table)."""

    def __init__(self, store: InMemoryEventStore) -> None:
        self._store = store
        self._tasks: dict[str, TaskState] = {}

    @property
    def store(self) -> InMemoryEventStore:
        return self._store

    async def append(
        self,
        task_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
        *,
        state: TaskState | None = None,  # TaskLog's shortcut; here the fold is kept anyway
    ) -> AppendResult:
        try:
            result = await self._store.append(task_id, events, expected_version)
        except ConcurrencyConflict as conflict:
            if expected_version > 0 and conflict.actual_version is None:
                raise TaskNotFound(task_id) from conflict
            raise
        if result.recorded:  # not an idempotent retry, which the projection saw already
            state = fold(result.recorded, self._tasks.get(task_id))
            assert state is not None
            self._tasks[task_id] = state
        return result

    async def task(self, task_id: str) -> TaskState | None:
        await asyncio.sleep(0)
        return self._tasks.get(task_id)


def _stored_form(new: NewEvent) -> tuple[str, EventMetadata]:
    """The event's data as the JSON the log stores, and its metadata as read back; raises
    `UnstorableEvent` for what PostgreSQL would refuse."""
    metadata = new.metadata.model_dump_json()  # raises as EventStore.append's own call does
    data = new.data()
    if _refuses(data) or _refuses(new.metadata.model_dump(mode="json")):
        raise UnstorableEvent(f"{new.type}: NUL or a lone surrogate in its text")
    try:
        text = json.dumps(data, allow_nan=False)
    except ValueError as error:  # NaN or an infinite number: JSON has no spelling for them
        raise UnstorableEvent(f"{new.type}: {error}") from None
    return text, EventMetadata.model_validate_json(metadata)


def _refuses(value: object) -> bool:
    """Whether a JSON value holds text that jsonb refuses, in a key or a value."""
    if isinstance(value, str):
        return bool(_REFUSED_CHARACTERS.search(value))
    if isinstance(value, dict):
        return any(_refuses(k) or _refuses(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_refuses(item) for item in value)
    return False


def _as_given(recorded: RecordedEvent, new: NewEvent) -> RecordedEvent:
    """What `append` returns, as `EventStore.append` does: the caller's event and metadata."""
    return RecordedEvent(
        stream_id=recorded.stream_id,
        version=recorded.version,
        position=recorded.position,
        cursor=recorded.cursor,
        event_id=recorded.event_id,
        recorded_at=recorded.recorded_at,
        metadata=new.metadata,
        event=new.event,
    )
