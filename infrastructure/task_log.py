"""Appends to a task's stream and keeps its projection current in the same transaction, so a
read right after a write sees it."""

from __future__ import annotations

from collections.abc import Sequence

from domain.log import NewEvent
from domain.task import TaskState, fold
from infrastructure import projections
from infrastructure.event_store import AppendResult, EventStore


class TaskLog:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def append(
        self, task_id: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        """Append and project atomically. Raises what `EventStore.append` raises."""
        async with self.store.transaction() as conn:
            result = await self.store.append(task_id, events, expected_version, conn=conn)
            if not result.recorded:
                return result  # an idempotent retry: the projection saw these already
            state = await projections.load_task(conn, task_id)
            if (state.version if state else 0) != expected_version:
                # The row is missing or behind (e.g. the table was emptied for a rebuild): fold
                # the stream up to where this append started, then carry on.
                earlier = await self.store.read_stream(task_id, limit=expected_version or None)
                state = fold(earlier[:expected_version])
            state = fold(result.recorded, state)
            assert state is not None
            await projections.save_task(conn, state)
        return result

    async def task(self, task_id: str) -> TaskState | None:
        """The task's projected state (read-your-writes after `append`)."""
        async with self.store.transaction() as conn:
            return await projections.load_task(conn, task_id)
