"""The worker's writer for one task: appends in version order, keeps the stream it has seen, and
notices events appended by others (a cancellation from the api) when its append conflicts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from domain import events as ev
from domain.errors import ConcurrencyConflict, TaskNotFound
from domain.log import EventMetadata, NewEvent, RecordedEvent
from infrastructure.task_log import TaskLog

# A conflict that reading the stream does not explain (nothing new, and the stream still there)
# should not happen; if it does, retry a few times with backoff, then raise the conflict (the
# job's retry path) rather than spin until arq's timeout.
_UNEXPLAINED_CONFLICTS = 5
_CONFLICT_BACKOFF_S = 0.05


class TaskWasCancelled(Exception):
    """Someone appended TaskCancelled: stop before the next step."""


class TaskGone(TaskWasCancelled):
    """The task's stream is gone or shorter than this writer saw it (pruned after it was
    cancelled or finished): stop, there is nothing left to append to."""


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
            unexplained = 0
            while True:
                try:
                    result = await self._log.append(self.task_id, batch, self.version)
                except TaskNotFound:
                    raise TaskGone(f"task {self.task_id} is gone (pruned)") from None
                except ConcurrencyConflict as conflict:
                    if await self._catch_up():
                        continue
                    unexplained += 1
                    await self._check_still_there(conflict, unexplained)
                    await asyncio.sleep(_CONFLICT_BACKOFF_S * 2 ** (unexplained - 1))
                    continue
                self.stream.extend(result.recorded)
                return list(result.recorded)

    async def check_cancelled(self) -> None:
        """Read events appended by others; raise `TaskWasCancelled` if the task was cancelled."""
        async with self._lock:
            await self._catch_up()

    async def _catch_up(self) -> bool:
        """Read what others appended; False when there was nothing."""
        newer = await self._log.store.read_stream(self.task_id, after_version=self.version)
        self.stream.extend(newer)
        for recorded in newer:
            if isinstance(recorded.event, ev.TaskCancelled | ev.TaskCompleted | ev.TaskFailed):
                raise TaskWasCancelled(f"task {self.task_id} ended elsewhere: {recorded.type}")
        return bool(newer)

    async def _check_still_there(self, conflict: ConcurrencyConflict, unexplained: int) -> None:
        """After a conflict that catching up did not explain: `TaskGone` if the stream is gone or
        shorter than seen (retrying could never succeed), the conflict itself past a few tries."""
        if await self._log.store.stream_version(self.task_id) < self.version:
            raise TaskGone(f"task {self.task_id} is gone (pruned, or its stream was cut short)")
        if unexplained >= _UNEXPLAINED_CONFLICTS:
            raise conflict


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
