"""The worker's writer for one task: appends in version order, keeps the stream it has seen and
its fold, and notices events appended by others (a cancellation from the api) when its append
conflicts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from domain import events as ev
from domain.errors import ConcurrencyConflict, TaskNotFound
from domain.log import EventMetadata, NewEvent, RecordedEvent
from domain.task import TERMINAL_EVENTS, TaskState, evolve, fold
from infrastructure.event_log import TaskStreams

# A conflict that reading the stream does not explain (nothing new, and the stream still there)
# should not happen; if it does, retry a few times with backoff, then raise the conflict (the
# job's retry path) rather than spin until arq's timeout.
_UNEXPLAINED_CONFLICTS = 5
_CONFLICT_BACKOFF_S = 0.05


class TaskWasCancelled(Exception):
    """Someone else ended the task (TaskCancelled, or a completion or failure recorded by
    another worker): stop before the next step."""


class TaskGone(Exception):
    """The task's stream is gone or shorter than this writer saw it (pruned after it was
    cancelled or finished): stop, there is nothing left to append to."""


class TaskWriter:
    def __init__(
        self,
        log: TaskStreams,
        stream: Sequence[RecordedEvent],
        *,
        actor: str = "worker",
        state: TaskState | None = None,
    ) -> None:
        first = stream[0]
        self.task_id = first.stream_id
        self.stream = list(stream)
        # The fold of `stream` (the caller's, when it has one), kept current with every event.
        folded = state or fold(stream)
        assert folded is not None
        self.state = folded
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
                self._seen(result.recorded)
                return list(result.recorded)

    async def check_cancelled(self) -> bool:
        """Read events appended by others; raise `TaskWasCancelled` if one of them ended the
        task. Whether there was anything new."""
        async with self._lock:
            return await self._catch_up()

    async def _catch_up(self) -> bool:
        """Read what others appended; False when there was nothing."""
        newer = await self._log.store.read_stream(self.task_id, after_version=self.version)
        self._seen(newer)
        for recorded in newer:
            if isinstance(recorded.event, TERMINAL_EVENTS):
                raise TaskWasCancelled(f"task {self.task_id} ended elsewhere: {recorded.type}")
        return bool(newer)

    def _seen(self, recorded: Sequence[RecordedEvent]) -> None:
        self.stream.extend(recorded)
        for event in recorded:
            self.state = evolve(self.state, event)

    async def _check_still_there(self, conflict: ConcurrencyConflict, unexplained: int) -> None:
        """After a conflict that catching up did not explain: `TaskGone` if the stream is gone or
        shorter than seen (retrying could never succeed), the conflict itself past a few tries."""
        if await self._log.store.stream_version(self.task_id) < self.version:
            raise TaskGone(f"task {self.task_id} is gone (pruned, or its stream was cut short)")
        if unexplained >= _UNEXPLAINED_CONFLICTS:
            raise conflict
