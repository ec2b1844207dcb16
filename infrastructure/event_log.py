"""What callers may rely on from an event store, whichever backs it: `EventStore` (PostgreSQL)
and `InMemoryEventStore` both satisfy `EventLog`; tests/contract runs one suite against both.

`EventLog` leaves out what only PostgreSQL has: `EventStore.transaction()` and `append(conn=)`
(an append inside a caller's transaction, for projections), `EventStore.engine`, and
`read_partition` (the relay's read, partitioned by PostgreSQL's own string hash).

`TaskStreams` is what the worker's writer and the use cases need of `TaskLog`: appends that
keep the task projection current (read-your-writes), and the store behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.log import LOG_START, LogCursor, NewEvent, RecordedEvent
from domain.task import TaskState
from infrastructure.event_store import AppendResult


class EventLog(Protocol):
    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        """Append `events` as versions expected_version+1 ... atomically. `InvalidAppend` for a
        malformed append, `ConcurrencyConflict` if the stream is not at `expected_version`
        (0 = new stream), `DuplicateEventId` for a batch mixing stored and new event ids; a
        batch whose ids are all stored in this stream is a no-op (`stored` False)."""
        ...

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version; 0 if it does not exist."""
        ...

    async def read_stream(
        self, stream_id: str, after_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        """The stream's events with version > after_version, in version order."""
        ...

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        """Several whole streams, each in version order."""
        ...

    async def read_all(
        self, after: LogCursor = LOG_START, limit: int = 500, *, tolerant: bool = False
    ) -> list[RecordedEvent]:
        """The next events of the whole log after `after`, in log order, none ever skipped."""
        ...

    async def log_end(self) -> LogCursor:
        """The cursor from which `read_all` returns exactly what is appended from now on."""
        ...


class TaskStreams(Protocol):
    @property
    def store(self) -> EventLog: ...

    async def append(
        self,
        task_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
        *,
        state: TaskState | None = None,
    ) -> AppendResult:
        """Append and project atomically; `TaskNotFound` when a stream expected at a version
        > 0 does not exist. `state` is the caller's fold of the stream up to
        `expected_version`, when it has one (a store may use it to write the projection)."""
        ...

    async def task(self, task_id: str) -> TaskState | None:
        """The task's projected state, current with every append made so far."""
        ...
