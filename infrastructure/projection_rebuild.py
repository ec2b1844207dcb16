"""Rebuild the task projection from the log, and prune old finished tasks.

Rebuild folds every stream again with `domain.task.evolve` (the same code the live path runs),
streams by batches of tasks so memory stays flat, and writes only rows that differ, every column
of them. It renders every event's timeline entry again too (infrastructure/timeline.py), and
writes those that are missing or differ. A live append racing with the rebuild is safe: a row
is only replaced by a rebuilt state at least as new, and an append waiting for the rebuild's
lock folds on the rebuilt row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.indicators import is_task_stream
from domain.task import TaskState, fold
from infrastructure.event_store import EventStore
from infrastructure.indicator_projection import IndicatorRebuild, rebuild_indicators
from infrastructure.projections import replace_task, row_from_state, state_from_row
from infrastructure.timeline import save_rendered

log = logging.getLogger(__name__)

# A batch of streams, by their first event; the tenant of a task is the tenant of that event.
# The log also holds indicator streams (domain.indicators): a batch leaves them out in Python,
# since a filter on the event type here turns the one-tenant read's index range into a bitmap
# scan and a sort (tests/integration/test_query_plans.py). Their projection has its own rebuild
# (infrastructure/indicator_projection.py).
# Two statements, chosen in Python: the generic plan of one statement with
# `CAST(:tenant AS text) IS NULL OR ...` cannot use the tenant's index (it read the whole log for
# every batch).
_STREAMS = sa.text(
    "SELECT stream_id FROM events WHERE version = 1 AND stream_id > :after"
    " ORDER BY stream_id LIMIT :limit"
)
_STREAMS_OF_TENANT = sa.text(  # events_first_by_tenant_idx (migration 0006)
    "SELECT stream_id FROM events WHERE version = 1 AND metadata->>'tenant' = :tenant"
    " AND stream_id > :after ORDER BY stream_id LIMIT :limit"
)
_ROWS = sa.text("SELECT * FROM task_projection WHERE task_id = ANY(:ids)")
# Before writing the rows that differ: lock them (in task_id order, as a prune does), then keep
# the streams still there. A prune that committed after the streams were read would otherwise get
# its rows written back; one that starts now waits for this batch and deletes what it wrote.
_LOCK = sa.text(
    "SELECT task_id FROM task_projection WHERE task_id = ANY(:ids) ORDER BY task_id FOR UPDATE"
)
_STILL_LOGGED = sa.text("SELECT stream_id FROM events WHERE version = 1 AND stream_id = ANY(:ids)")
_ORPHANS = sa.text(
    "DELETE FROM task_projection p WHERE (CAST(:tenant AS text) IS NULL OR p.tenant = :tenant)"
    " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = p.task_id)"
)


@dataclass
class RebuildReport:
    tasks: int = 0
    events: int = 0
    changed: int = 0
    removed: int = 0
    entries: int = 0  # timeline entries written (new, or rendered differently)


async def rebuild_projections(
    engine: AsyncEngine,
    *,
    tenant: str | None = None,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
) -> RebuildReport:
    """Recompute every task row (of one tenant, if given) from its stream; report how many
    rows changed."""
    store, report, after = EventStore(engine), RebuildReport(), ""
    while True:
        async with engine.begin() as conn:
            if tenant is None:
                page = await conn.scalars(_STREAMS, {"after": after, "limit": batch})
            else:
                params = {"after": after, "limit": batch, "tenant": tenant}
                page = await conn.scalars(_STREAMS_OF_TENANT, params)
            ids = list(page.all())
            if not ids:
                break
            tasks = [stream_id for stream_id in ids if is_task_stream(stream_id)]
            if tasks:
                await _rebuild_batch(conn, store, tasks, report)
            after = ids[-1]
        if progress:
            progress(len(ids))
    async with engine.begin() as conn:
        report.removed = (await conn.execute(_ORPHANS, {"tenant": tenant})).rowcount
    return report


async def _rebuild_batch(
    conn: AsyncConnection, store: EventStore, ids: list[str], report: RebuildReport
) -> None:
    streams = await store.read_streams(ids)
    raw = await conn.get_raw_connection()
    report.entries += await save_rendered(
        raw.driver_connection, (recorded for task_id in ids for recorded in streams[task_id])
    )
    current = {row["task_id"]: row for row in (await conn.execute(_ROWS, {"ids": ids})).mappings()}
    differ: dict[str, TaskState] = {}
    for task_id in ids:
        state = fold(streams[task_id])
        if state is None:
            continue  # pruned since this page was listed
        report.tasks += 1
        report.events += len(streams[task_id])
        row = current.get(task_id)
        if row is None or row_from_state(state_from_row(row)) != row_from_state(state):
            differ[task_id] = state
    if not differ:
        return
    await conn.execute(_LOCK, {"ids": list(differ)})
    logged = set((await conn.scalars(_STILL_LOGGED, {"ids": list(differ)})).all())
    for task_id in sorted(differ.keys() & logged):
        report.changed += 1
        await replace_task(conn, differ[task_id], only_if_newer=True)


# Locks the rows before deleting anything, in task_id order like a rebuild's batch (two prunes,
# or a prune and a rebuild, never wait on each other in a cycle). An append locks its task's row
# before writing its event (infrastructure/task_log.py), so either the append commits first and
# the prune, re-reading the row once it is free, deletes the whole stream with the new event, or
# the prune commits first and the append finds the stream gone and fails with TaskNotFound: never
# a stream without its TaskSubmitted, nor a row brought back.
_PRUNABLE = sa.text(
    "SELECT task_id FROM task_projection WHERE status IN ('completed', 'failed', 'cancelled')"
    " AND finished_at < now() - make_interval(secs => :secs)"
    " AND (CAST(:tenant AS text) IS NULL OR tenant = :tenant)"
    " ORDER BY task_id FOR UPDATE"
)


async def prune_finished_tasks(
    engine: AsyncEngine, older_than: timedelta, *, tenant: str | None = None
) -> int:
    """Delete whole streams (and their rows) of tasks that finished before now - older_than;
    only `tenant`'s when given (an admin over HTTP prunes its own tenant)."""
    async with engine.begin() as conn:
        params = {"secs": older_than.total_seconds(), "tenant": tenant}
        ids = list((await conn.scalars(_PRUNABLE, params)).all())
        await conn.execute(sa.text("DELETE FROM events WHERE stream_id = ANY(:ids)"), {"ids": ids})
        await conn.execute(
            sa.text("DELETE FROM task_projection WHERE task_id = ANY(:ids)"), {"ids": ids}
        )
    log.info(
        "pruned %d finished tasks older than %s (admin action, no event)", len(ids), older_than
    )
    return len(ids)


class Projections:
    """Rebuild and prune over one engine, for the use cases (api/application)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def rebuild_tasks(
        self,
        *,
        tenant: str | None = None,
        batch: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> RebuildReport:
        """`rebuild_projections`: every task row, or one tenant's, recomputed from the log."""
        return await rebuild_projections(
            self._engine, tenant=tenant, batch=batch, progress=progress
        )

    async def rebuild_indicators(self) -> IndicatorRebuild:
        """The known indicators replayed from their streams (every tenant's and the global)."""
        return await rebuild_indicators(self._engine)

    async def prune(self, older_than: timedelta, *, tenant: str | None = None) -> int:
        """`prune_finished_tasks`: how many finished tasks were deleted."""
        return await prune_finished_tasks(self._engine, older_than, tenant=tenant)
