"""Appends to a task's stream and keeps its projection current in the same transaction, so a
read right after a write sees it; then rings the log's doorbell, so an idle relay publishes the
event at once (infrastructure/doorbell.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from domain.errors import ConcurrencyConflict, TaskNotFound
from domain.log import NewEvent
from domain.task import TaskState, fold
from infrastructure import projections
from infrastructure.doorbell import Doorbell
from infrastructure.event_store import AppendResult, EventStore, NothingAppended
from infrastructure.raw_sql import LostConnection

log = logging.getLogger(__name__)


class TaskLog:
    def __init__(self, store: EventStore, doorbell: Doorbell | None = None) -> None:
        self.store = store
        self._doorbell = doorbell

    async def append(
        self, task_id: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        """Append and project atomically. Raises what `EventStore.append` raises, and
        `TaskNotFound` when a stream expected at a version > 0 does not exist (never did, or
        was pruned meanwhile)."""
        result = await self._append(task_id, events, expected_version)
        if result.recorded and self._doorbell is not None:
            self._doorbell.ring()  # committed: the relay may publish it now
        return result

    async def _append(
        self, task_id: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        """One transaction on a plain asyncpg connection: lock the task's row, insert the
        events, write the row. Four round trips and no savepoint: when nothing is inserted (a
        conflict, or a retry of stored events) the transaction is abandoned and the store says
        which, outside it. A connection lost on the way is dropped and the whole transaction
        tried once more: the event ids make a second try of a committed append a no-op."""
        for attempt in (1, 2):
            try:
                return await self._append_once(task_id, events, expected_version)
            except NothingAppended:
                try:
                    return await self.store.unappended(task_id, events, expected_version)
                except ConcurrencyConflict as conflict:
                    if expected_version > 0 and conflict.actual_version is None:
                        raise TaskNotFound(task_id) from conflict
                    raise
            except LostConnection as error:
                if attempt == 2:
                    raise
                log.warning("appending to %s: lost the database connection (%r); retrying once",
                            task_id, error)  # fmt: skip
        raise AssertionError("unreachable")

    async def _append_once(
        self, task_id: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        async with self.store.raw_transaction() as conn:
            # Lock the row before appending: a rebuild or a prune holding it finishes first, and
            # a locking read returns the row as they committed it, not as this transaction's
            # snapshot saw it. After a rebuild, the new event is folded on the corrected row (a
            # plain read folded it on the stale one and overwrote the correction); after a
            # prune, the append's version guard finds the stream gone and inserts nothing. Both
            # lock rows before touching events too: one lock order, no deadlock. A new stream
            # has no row to lock.
            state = None
            if expected_version > 0:
                state = await projections.load_task_raw(conn, task_id)
            result = await self.store.append_on(conn, task_id, events, expected_version)
            from_row = state is not None and state.version == expected_version
            if not from_row and expected_version > 0:
                # The row is missing or behind (e.g. the table was emptied for a rebuild): fold
                # the stream up to where this append started, then carry on.
                state = fold(await self.store.read_stream(task_id, limit=expected_version))
            state = fold(result.recorded, state)
            assert state is not None
            # A state folded from the stream rather than evolved from the row writes every
            # column: the row may be wrong in any.
            await projections.save_task_raw(conn, state, every_column=not from_row)
        return result

    async def task(self, task_id: str) -> TaskState | None:
        """The task's projected state (read-your-writes after `append`)."""
        async with self.store.transaction() as conn:
            return await projections.load_task(conn, task_id)
