"""The worker's writer for one task: appends in version order, keeps the stream it has seen and
its fold, and notices events appended by others (a cancellation from the api) when its append
conflicts."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domain import events as ev
from domain.errors import ConcurrencyConflict, TaskNotFound
from domain.log import LOG_START, EventMetadata, NewEvent, RecordedEvent
from domain.task import TERMINAL_EVENTS, TaskState, evolve, fold
from infrastructure.event_log import TaskStreams

log = logging.getLogger(__name__)

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


@dataclass
class _Pending:
    """One caller's events in a shared append, and what became of them."""

    events: list[NewEvent]
    recorded: list[RecordedEvent] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False

    def failed(self, error: BaseException) -> None:
        self.error, self.done = error, True


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
        self._pending: list[_Pending] = []  # appends waiting for the lock: written together
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

    def as_next(self, event: ev.DomainEvent) -> RecordedEvent:
        """`event` as it would be recorded next, for deciding ahead (`decided_after`): the
        version it would take; no position or time yet."""
        return RecordedEvent(
            self.task_id, self.version + 1, 0, LOG_START, uuid.uuid4(),
            datetime.now(UTC), self._metadata, event,
        )  # fmt: skip

    async def append(self, *events: ev.DomainEvent) -> list[RecordedEvent]:
        """Append after everything seen so far; on a conflict, read what others appended and
        try again — unless one of those events cancelled or finished the task.

        Appends that arrive while another is being written (a task's tool calls starting or
        ending together) wait for it, then go to the log together, in arrival order, in one
        transaction: one round of the append's statements instead of one per call. Each caller
        gets back its own events. If such a shared append fails for another reason than the
        task ending, each caller's events are tried again alone, so that one call's outcome the
        log refuses does not take the others' down with it."""
        mine = _Pending([NewEvent(e, self._metadata, uuid.uuid4()) for e in events])
        self._pending.append(mine)
        try:
            async with self._lock:
                if not mine.done:
                    await asyncio.sleep(0)  # let calls that are ready now add theirs
                    together, self._pending = self._pending, []
                    try:
                        await self._write_together(together)
                    except BaseException:  # cancelled mid-write: the next holder writes theirs
                        self._pending[:0] = [p for p in together if not p.done and p is not mine]
                        raise
        except BaseException:
            if mine in self._pending:
                self._pending.remove(mine)  # cancelled before it was written: never written
            raise
        if mine.error is not None:
            raise mine.error
        return mine.recorded

    async def _write_together(self, together: list[_Pending]) -> None:
        if len(together) > 1:
            try:
                recorded = await self._write([e for p in together for e in p.events])
            except (TaskWasCancelled, TaskGone) as ended:
                for pending in together:
                    pending.failed(ended)
                return
            except Exception as error:
                # Each alone, below: only the one the log refuses fails (and says why).
                log.info("task %s: a shared append failed (%r); writing each caller's alone",
                         self.task_id, error)  # fmt: skip
            else:
                for pending in together:
                    pending.recorded, recorded = (
                        recorded[: len(pending.events)],
                        recorded[len(pending.events) :],
                    )
                    pending.done = True
                return
        for pending in together:
            try:
                pending.recorded = await self._write(pending.events)
                pending.done = True
            except Exception as error:
                pending.failed(error)

    async def _write(self, batch: list[NewEvent]) -> list[RecordedEvent]:
        unexplained = 0
        while True:
            try:
                result = await self._log.append(self.task_id, batch, self.version, state=self.state)
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

    async def append_unless_overtaken(self, *events: ev.DomainEvent) -> bool:
        """Append `events` only if nothing was appended since this writer's version: True when
        they were. Otherwise read what others appended (raising `TaskWasCancelled` if it ended
        the task) and return False, so the caller decides again on what they wrote. It costs
        nothing when no one else wrote, where reading the stream first would cost a round
        trip on every step; the conflict of the append itself says that someone did.

        For a step taken alone (not beside tool calls, whose appends are written together)."""
        batch = [NewEvent(e, self._metadata, uuid.uuid4()) for e in events]
        async with self._lock:
            try:
                result = await self._log.append(self.task_id, batch, self.version, state=self.state)
            except TaskNotFound:
                raise TaskGone(f"task {self.task_id} is gone (pruned)") from None
            except ConcurrencyConflict:
                if await self._catch_up():
                    return False
                await self._write(batch)  # nothing new to read: the usual retries
                return True
            self._seen(result.recorded)
            return True

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
