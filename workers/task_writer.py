"""The worker's writer for one task: appends in version order, keeps the stream it has seen, and
notices events appended by others (a cancellation from the api) when its append conflicts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from domain import events as ev
from domain.errors import ConcurrencyConflict
from domain.log import EventMetadata, NewEvent, RecordedEvent
from infrastructure.task_log import TaskLog


class TaskWasCancelled(Exception):
    """Someone appended TaskCancelled: stop before the next step."""


class TaskWriter:
    def __init__(
        self, log: TaskLog, stream: Sequence[RecordedEvent], *, actor: str = "worker"
    ) -> None:
        first = stream[0]
        self.task_id = first.stream_id
        self.stream = list(stream)
        self._log = log
        self._lock = asyncio.Lock()  # tool calls run concurrently; appends go one at a time
        correlation = first.metadata.correlation_id or first.event_id
        self._metadata = EventMetadata(
            tenant=first.metadata.tenant,
            actor=actor,
            correlation_id=correlation,
            causation_id=first.event_id,
        )

    @property
    def version(self) -> int:
        return self.stream[-1].version

    async def append(self, *events: ev.DomainEvent) -> list[RecordedEvent]:
        """Append after everything seen so far; on a conflict, read what others appended and
        try again — unless one of those events cancelled or finished the task."""
        batch = [NewEvent(e, self._metadata, uuid.uuid4()) for e in events]
        async with self._lock:
            while True:
                try:
                    result = await self._log.append(self.task_id, batch, self.version)
                except ConcurrencyConflict:
                    await self._catch_up()
                    continue
                self.stream.extend(result.recorded)
                return list(result.recorded)

    async def check_cancelled(self) -> None:
        """Read events appended by others; raise `TaskWasCancelled` if the task was cancelled."""
        async with self._lock:
            await self._catch_up()

    async def _catch_up(self) -> None:
        newer = await self._log.store.read_stream(self.task_id, after_version=self.version)
        self.stream.extend(newer)
        for recorded in newer:
            if isinstance(recorded.event, ev.TaskCancelled | ev.TaskCompleted | ev.TaskFailed):
                raise TaskWasCancelled(f"task {self.task_id} ended elsewhere: {recorded.type}")


class ProgressPublisher:
    """The seed's `ProgressPublisher.publish(message, percent, step, tool)`, recorded as a
    `ProgressReported` event instead of a fire-and-forget Redis PUBLISH."""

    def __init__(self, writer: TaskWriter) -> None:
        self._writer = writer

    async def publish(
        self, message: str, percent: int, step: str | None = None, tool: str | None = None
    ) -> None:
        await self._writer.append(
            ev.ProgressReported(message=message, percent=percent, step=step, tool=tool)
        )
