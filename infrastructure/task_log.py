"""Appends to a task's stream and keeps its projection current in the same transaction, so a
read right after a write sees it; then rings the log's doorbell, so an idle relay publishes the
event at once (infrastructure/doorbell.py).

An append whose caller holds the task's state (the worker's writer) or that starts a task is one
statement: the events and the row they fold into, written together (`_IN_ONE`), one round trip
where the transaction below takes five. Anything that statement does not write (a conflict, a
retry of stored events, a row missing or behind the log) goes the transaction's way, which says
which it was and repairs the row."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import asyncpg

from domain.errors import ConcurrencyConflict, TaskNotFound
from domain.log import LOG_START, NewEvent, RecordedEvent
from domain.task import TaskState, fold
from infrastructure import projections, raw_sql
from infrastructure.doorbell import Doorbell
from infrastructure.event_store import (
    NOT_APPENDED,
    AppendResult,
    EventStore,
    NothingAppended,
    append_args,
    appended,
    insert_events_sql,
    validate_append,
)
from infrastructure.raw_sql import LostConnection

log = logging.getLogger(__name__)

_APPENDED_ROWS = "SELECT * FROM appended ORDER BY version"
# A new task: its events, and its row inserted whole.
_IN_ONE_NEW = f"""
    WITH appended AS ({insert_events_sql("$2::integer = 0")}),
    projected AS ({projections.write_beside_sql(8, new_task=True, appended="appended")})
    {_APPENDED_ROWS}
"""
# An existing task: the row is locked first, as in the transaction (see _append_once), and the
# events are inserted only if it is at the expected version; a row at another version, or gone
# (pruned), or a stream that is not at that version, inserts nothing. A locking read returns the
# row as a rebuild or a prune that held it committed it, although the statement's snapshot is
# older; so the guard reads the row through the lock, not through the snapshot. The UPDATE then
# writes the caller's fold, which is the log's, into the row it holds.
_AT_EXPECTED_VERSION = (
    "(SELECT version FROM task_row) = $2::integer"
    " AND EXISTS (SELECT 1 FROM events WHERE stream_id = $1 AND version = $2::integer)"
)
_IN_ONE = f"""
    WITH task_row AS (SELECT version FROM task_projection WHERE task_id = $1 FOR UPDATE),
    appended AS ({insert_events_sql(_AT_EXPECTED_VERSION)}),
    projected AS ({projections.write_beside_sql(8, new_task=False, appended="appended")})
    {_APPENDED_ROWS}
"""


class TaskLog:
    def __init__(self, store: EventStore, doorbell: Doorbell | None = None) -> None:
        self.store = store
        self._doorbell = doorbell

    async def append(
        self,
        task_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
        *,
        state: TaskState | None = None,
    ) -> AppendResult:
        """Append and project atomically. Raises what `EventStore.append` raises, and
        `TaskNotFound` when a stream expected at a version > 0 does not exist (never did, or
        was pruned meanwhile). `state`, the task folded from its stream up to
        `expected_version`, lets the append be one statement."""
        result = None
        if expected_version == 0 or (
            state is not None and state.task_id == task_id and state.version == expected_version
        ):
            result = await self._append_in_one(task_id, events, expected_version, state)
        if result is None:
            result = await self._append(task_id, events, expected_version)
        if result.recorded and self._doorbell is not None:
            self._doorbell.ring()  # committed: the relay may publish it now
        return result

    async def _append_in_one(
        self,
        task_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
        state: TaskState | None,
    ) -> AppendResult | None:
        """The append as one statement (`_IN_ONE`), the row written from `state` and the
        events folded on it; None when it wrote nothing (the transaction then finds out why)."""
        validate_append(task_id, events, expected_version)
        unrecorded = [
            RecordedEvent(
                task_id, version, 0, LOG_START, new.event_id, projections.UNRECORDED,
                new.metadata, new.event,
            )
            for version, new in enumerate(events, expected_version + 1)
        ]  # fmt: skip
        try:
            after = fold(unrecorded, state)
        except ValueError:
            return None  # not a stream the fold accepts: the transaction raises it as before
        assert after is not None
        sql = _IN_ONE_NEW if expected_version == 0 else _IN_ONE
        args = (
            *append_args(task_id, events, expected_version),
            *projections.beside_args(after, new_task=expected_version == 0),
        )
        try:
            rows = await raw_sql.fetch(self.store.engine, sql, *args)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name not in NOT_APPENDED:
                raise
            return None
        return appended(task_id, rows, events) if rows else None

    async def _append(
        self, task_id: str, events: Sequence[NewEvent], expected_version: int
    ) -> AppendResult:
        """One transaction on a plain asyncpg connection: lock the task's row, insert the
        events, write the row. Five round trips (BEGIN and COMMIT included) and no savepoint:
        when nothing is inserted (a conflict, or a retry of stored events) the transaction is
        abandoned and the store says which, outside it. A connection lost on the way is dropped
        and the whole transaction tried once more: the event ids make a second try of a
        committed append a no-op."""
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
