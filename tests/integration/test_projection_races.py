"""The task projection against the admin actions that rewrite it: a rebuild repairs every column,
and neither a rebuild nor a prune racing with a live append leaves a row or a stream wrong.

The races are made deterministic with a row lock the test holds on a second task: the admin
action stops there, its transaction open, while the live append runs; the test waits until
PostgreSQL reports the sessions blocked rather than sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import events as ev
from domain.errors import TaskNotFound
from domain.log import EventMetadata, NewEvent
from domain.task import fold
from infrastructure.event_store import AppendResult, EventStore
from infrastructure.projection_rebuild import prune_finished_tasks, rebuild_projections
from infrastructure.projections import row_from_state
from infrastructure.task_log import TaskLog
from tests.waiting import eventually

pytestmark = pytest.mark.integration

ACME = EventMetadata(tenant="acme", actor="user:submitter")
ANALYST = EventMetadata(tenant="acme", actor="user:analyst")


def new(*events: ev.DomainEvent, metadata: EventMetadata = ACME) -> list[NewEvent]:
    return [NewEvent(e, metadata) for e in events]


def completed() -> list[ev.DomainEvent]:
    return [
        ev.VerdictReached(verdict="scam", score=0.9, confidence=0.9),
        ev.TaskCompleted(verdict="scam"),
    ]


# The worker's writer appends in one statement, handing its state over; the api's cancellations
# and reviews append in a transaction. Each race is run both ways.
WAYS = pytest.mark.parametrize("one_statement", [True, False], ids=["statement", "transaction"])


async def live_append(
    log: TaskLog, task_id: str, events: list[NewEvent], expected: int, one_statement: bool
) -> asyncio.Task[AppendResult]:
    """The append under test, started; with `one_statement`, given the caller's fold of the
    stream up to `expected`."""
    state = None
    if one_statement:
        state = fold(await log.store.read_stream(task_id, limit=expected))
    return asyncio.create_task(log.append(task_id, events, expected, state=state))


async def submit(log: TaskLog, task_id: str, *events: ev.DomainEvent) -> None:
    submitted = ev.TaskSubmitted(content=f"parcel held for {task_id}", kind="sms")
    await log.append(task_id, new(submitted, *events), 0)


async def snapshot(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every projection row, `search` included (as text), without the write time."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT *, search::text AS search FROM task_projection ORDER BY task_id")
        )
        return [{k: v for k, v in r._mapping.items() if k != "updated_at"} for r in rows]


async def sessions_waiting_on_locks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(await conn.scalar(sa.text(query)) or 0)


async def until_blocked(engine: AsyncEngine, sessions: int, *done: asyncio.Future[Any]) -> None:
    """Return once `sessions` sessions wait on a lock, or one of `done` has finished."""

    async def blocked() -> bool:
        return any(d.done() for d in done) or await sessions_waiting_on_locks(engine) >= sessions

    await eventually(blocked, within=10, what=f"{sessions} sessions waiting on a lock")


@asynccontextmanager
async def row_held(engine: AsyncEngine, task_id: str) -> AsyncIterator[None]:
    """The task's projection row locked by another transaction until the block ends."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        query = "SELECT 1 FROM task_projection WHERE task_id = :t FOR UPDATE"
        await conn.execute(sa.text(query), {"t": task_id})
        try:
            yield
        finally:
            await transaction.rollback()


async def test_a_rebuild_repairs_every_column_the_fold_gives(store: EventStore) -> None:
    """The upsert left tenant, kind, content_preview and submitted_at (and `search`) as they
    were: a rebuild counted the row as changed and left it wrong, every time. A wrong tenant
    shows the task to another tenant."""
    log, engine = TaskLog(store), store.engine
    await submit(log, "t1", ev.EntitiesExtracted())
    await submit(log, "t2", *completed())
    live = await snapshot(engine)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE task_projection SET tenant = 'other', kind = 'url',"
                " content_preview = 'WRONG', submitted_at = now() - interval '1 day',"
                " submitted_by = 'user:nobody'"
            )
        )
    assert (await rebuild_projections(engine)).changed == 2
    assert await snapshot(engine) == live
    assert (await rebuild_projections(engine)).changed == 0


@WAYS
async def test_an_append_on_a_missing_row_writes_every_column(
    store: EventStore, one_statement: bool
) -> None:
    """A row found behind its stream is folded from the stream again: all of it, not only the
    columns later events change."""
    log, engine = TaskLog(store), store.engine
    await submit(log, "t1")
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE task_projection SET version = 0, tenant = 'other', kind = 'url'")
        )
    await (await live_append(log, "t1", new(ev.EntitiesExtracted()), 1, one_statement))
    row, truth = await log.task("t1"), fold(await store.read_stream("t1"))
    assert row is not None and truth is not None
    assert row_from_state(row) == row_from_state(truth)


@WAYS
async def test_a_live_append_during_a_rebuild_folds_on_the_rebuilt_row(
    store: EventStore, one_statement: bool
) -> None:
    """The append read the stale row, waited for the rebuild's lock, then wrote version n+1
    folded on the stale row; the rebuild's row (version n) lost to it for good."""
    log, engine = TaskLog(store), store.engine
    await submit(log, "a-task", ev.EntitiesExtracted())
    await submit(log, "z-held")
    async with engine.begin() as conn:  # rows an older `evolve` wrote: both need the rebuild
        await conn.execute(sa.text("UPDATE task_projection SET percent = 3, current_step = 'x'"))

    async with row_held(engine, "z-held"):
        # The rebuild writes a-task's row, then waits for z-held's, its batch still open.
        rebuild = asyncio.ensure_future(rebuild_projections(engine))
        await until_blocked(engine, 1, rebuild)
        progress = ev.ProgressReported(message="checking", percent=0)
        live = await live_append(log, "a-task", new(progress), 2, one_statement)
        await until_blocked(engine, 2, live)
    assert (await rebuild).changed == 2
    await live

    row = await log.task("a-task")
    truth = fold(await store.read_stream("a-task"))
    assert row is not None and truth is not None
    assert (row.version, row.percent, row.current_step) == (3, 10, "entity_extraction")
    assert row_from_state(row) == row_from_state(truth)
    assert (await rebuild_projections(engine)).changed == 0


@WAYS
async def test_a_review_racing_a_prune_fails_and_leaves_nothing_behind(
    store: EventStore, one_statement: bool
) -> None:
    """A review appended while a prune is open must not see the versions the prune is deleting:
    its event would survive the prune (a stream without TaskSubmitted) and its upsert would bring
    the row back, which no rebuild could repair. The review waits for the prune and finds the
    task gone."""
    log, engine = TaskLog(store), store.engine
    await submit(log, "a-task", *completed())
    await submit(log, "z-held", *completed())

    async with row_held(engine, "z-held"):
        # The prune takes a-task first, then waits for z-held, its transaction open.
        prune = asyncio.ensure_future(prune_finished_tasks(engine, timedelta(0)))
        await until_blocked(engine, 1, prune)
        review = ev.VerdictReviewed(decision="override", verdict="safe", note="our own bank")
        live = await live_append(log, "a-task", new(review, metadata=ANALYST), 3, one_statement)
        await until_blocked(engine, 2, live)
    assert await prune == 2
    (outcome,) = await asyncio.gather(live, return_exceptions=True)

    assert [(e.version, e.type) for e in await store.read_stream("a-task")] == []
    assert await snapshot(engine) == []
    assert isinstance(outcome, TaskNotFound)  # the api answers 404
    report = await rebuild_projections(engine)
    assert (report.tasks, report.changed, report.removed) == (0, 0, 0)


@WAYS
async def test_a_review_that_wins_over_a_prune_is_pruned_with_its_stream(
    store: EventStore, one_statement: bool
) -> None:
    """The other order: the review holds the row first (its insert is held up here by another
    writer's uncommitted version 4); the prune waits for it, then deletes the whole stream, the
    review's event included, instead of deleting the row under the review."""
    log, engine = TaskLog(store), store.engine
    await submit(log, "a-task", *completed())
    review = ev.VerdictReviewed(decision="confirm", verdict="scam", note="seen before")
    async with engine.connect() as other_writer:
        transaction = await other_writer.begin()
        progress = ev.ProgressReported(message="late", percent=0)
        await store.append("a-task", new(progress), 3, conn=other_writer)
        live = await live_append(log, "a-task", new(review, metadata=ANALYST), 3, one_statement)
        await until_blocked(engine, 1, live)
        prune = asyncio.ensure_future(prune_finished_tasks(engine, timedelta(0)))
        await until_blocked(engine, 2, prune)
        await transaction.rollback()
    await live
    assert await prune == 1
    assert await store.read_stream("a-task") == []
    assert await snapshot(engine) == []


@pytest.mark.parametrize("pruned", ["before the streams are read", "after the streams are read"])
async def test_a_prune_during_a_rebuild_is_neither_fatal_nor_undone(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, pruned: str
) -> None:
    """A stream pruned after the rebuild listed it came back empty: the rebuild failed on an
    assertion. One pruned after the rebuild read it had its row written back, a task shown
    again until the rebuild's very end (for good if the rebuild stopped before)."""
    log, engine = TaskLog(store), store.engine
    await submit(log, "a-task", *completed())
    await submit(log, "b-task", ev.EntitiesExtracted())
    async with engine.begin() as conn:  # both rows need the rebuild
        await conn.execute(sa.text("UPDATE task_projection SET percent = 3"))
    read_streams = EventStore.read_streams

    async def prune_meanwhile(self: EventStore, ids: Any) -> Any:
        if pruned.startswith("before"):
            assert await prune_finished_tasks(engine, timedelta(0)) == 1
            return await read_streams(self, ids)
        streams = await read_streams(self, ids)
        assert await prune_finished_tasks(engine, timedelta(0)) == 1
        return streams

    monkeypatch.setattr(EventStore, "read_streams", prune_meanwhile)
    report = await rebuild_projections(engine)
    monkeypatch.undo()

    # Only b-task was rebuilt; a-task's row was never written back, so nothing was left for the
    # rebuild's closing sweep of rows without a stream to remove.
    assert (report.changed, report.removed) == (1, 0)
    assert await store.read_stream("a-task") == []
    rows = await snapshot(engine)
    assert [(row["task_id"], row["percent"]) for row in rows] == [("b-task", 10)]
