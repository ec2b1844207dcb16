"""The filtered task list and a one-tenant rebuild read an index range, not the table.

Each test runs the real function (`list_tasks`, `rebuild_projections`) against a scratch schema
holding copies of the tables with their indexes (`LIKE ... INCLUDING ALL`) and 50,000 analysed
rows, records the SQL it sent, and EXPLAINs that statement as PostgreSQL may run it: a prepared
statement planned for its values (its first executions) and the generic plan it may switch to."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from infrastructure.projection_rebuild import rebuild_projections
from infrastructure.settings import Settings
from infrastructure.task_queries import TaskFilter, list_tasks

pytestmark = pytest.mark.integration

ROWS = 50_000
# Half the tasks are `public`'s; 2% of them failed; a fifth of the verdicts are `suspicious`.
_TASKS = f"""
INSERT INTO task_projection (task_id, tenant, kind, status, percent, verdict, reviewed_verdict,
    content_preview, submitted_at, version, calls, submitted_by)
SELECT 'task-' || lpad(i::text, 6, '0'), (ARRAY['public', 'acme'])[1 + i % 2], 'sms',
       CASE WHEN i / 2 % 50 = 0 THEN 'failed' WHEN i / 2 % 50 = 1 THEN 'running'
            ELSE 'completed' END,
       100,
       CASE WHEN i / 2 % 50 > 1
            THEN (ARRAY['scam', 'safe', 'suspicious', 'safe', 'scam'])[1 + i % 5] END,
       CASE WHEN i % 23 = 0 THEN 'safe' END,
       'parcel held, pay the fee ' || i, now() - make_interval(mins => i), 10,
       '{{"completed": {{}}, "started": [], "failed_attempts": 0}}',
       'user-' || i % 40
FROM generate_series(1, {ROWS}) AS i
"""
# 5,000 streams of 10 events; a fifth of them `globex`'s, spread over the whole log.
_EVENTS = f"""
INSERT INTO events (stream_id, version, event_id, type, data, metadata)
SELECT 'task-' || lpad((i / 10)::text, 6, '0'), 1 + i % 10, gen_random_uuid(), 'ProgressReported',
       '{{}}', jsonb_build_object('tenant', (ARRAY['public', 'acme', 'acme', 'public', 'globex'])
                                            [1 + i / 10 % 5])
FROM generate_series(0, {ROWS} - 1) AS i
"""


@pytest.fixture(scope="module")
async def scratch(engine: AsyncEngine, settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine whose connections see the scratch schema's tables instead of public's."""
    schema = f"plans_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        await conn.execute(sa.text(f"SET LOCAL search_path TO {schema}"))
        for table in ("task_projection", "events"):
            await conn.execute(sa.text(f"CREATE TABLE {table} (LIKE public.{table} INCLUDING ALL)"))
        await conn.execute(sa.text(_TASKS))
        await conn.execute(sa.text(_EVENTS))
        await conn.execute(sa.text("ANALYZE task_projection"))
        await conn.execute(sa.text("ANALYZE events"))
    scoped = create_async_engine(
        settings.database_url,
        poolclass=NullPool,
        connect_args={"server_settings": {"search_path": schema}},
    )
    try:
        yield scoped
    finally:
        await scoped.dispose()
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@contextmanager
def statements_sent(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every (SQL, parameters) the engine sends while the block runs, as the driver gets them."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", record)


def _literal(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


async def plans(engine: AsyncEngine, statement: str, parameters: Any) -> list[dict[str, Any]]:
    """The custom and the generic plan of the prepared statement, run with `parameters`."""
    found = []
    async with engine.connect() as conn:
        await conn.exec_driver_sql(f"PREPARE under_test AS {statement}")
        arguments = ", ".join(_literal(value) for value in parameters)
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.exec_driver_sql(f"SET plan_cache_mode = {mode}")
            explain = f"EXPLAIN (FORMAT JSON) EXECUTE under_test ({arguments})"
            (plan,) = (await conn.exec_driver_sql(explain)).scalar_one()
            found.append(plan["Plan"])
    return found


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


_SHOWN = ("Node Type", "Index Name", "Index Cond", "Filter", "Sort Key")


def assert_one_index_range(plan: dict[str, Any], *conditions: str) -> None:
    """One index answers every `conditions` and gives the order: no table scan, no row read
    and dropped, no sort of every match; the work is the page, not the table."""
    shown = "\n".join(
        json.dumps({k: v for k, v in node.items() if k in _SHOWN}) for node in nodes(plan)
    )
    assert all(node["Node Type"] not in ("Seq Scan", "Sort") for node in nodes(plan)), shown
    assert all("Filter" not in node for node in nodes(plan)), shown
    assert any(
        all(condition in node.get("Index Cond", "") for condition in conditions)
        for node in nodes(plan)
    ), shown


@pytest.mark.parametrize(
    ("where", "condition"),
    [
        (TaskFilter(status="failed"), "status = "),
        (TaskFilter(verdict="suspicious"), "COALESCE(reviewed_verdict, verdict) = "),
    ],
    ids=["status", "verdict"],
)
async def test_a_filtered_task_list_reads_one_index_range(
    scratch: AsyncEngine, where: TaskFilter, condition: str
) -> None:
    """`GET /tasks?status=` and `?verdict=` sorted a sequential scan of the whole table, or read
    the tenant's tasks newest first and dropped the others (5.7 ms at 20,000 tasks, growing with
    the tenant). The first page and the next (keyset cursor) must each be one index range."""
    with statements_sent(scratch) as sent:
        first, cursor = await list_tasks(scratch, "public", where, cursor=None, limit=50)
        second, _ = await list_tasks(scratch, "public", where, cursor=cursor, limit=50)
    assert len(first) == len(second) == 50
    assert [t.submitted_at for t in first + second] == sorted(
        (t.submitted_at for t in first + second), reverse=True
    )
    assert len(sent) == 2
    for statement, parameters in sent:
        for plan in await plans(scratch, statement, parameters):
            assert_one_index_range(plan, condition)


async def test_a_one_tenant_rebuild_pages_through_that_tenant_s_streams_only(
    scratch: AsyncEngine,
) -> None:
    """An admin's rebuild of its tenant read the whole log for each batch of 500 streams (39 ms a
    batch at 200,000 events); with an index but no statistics of the tenant, it sorted all of a
    big tenant's streams for each batch (71 ms at 1,000,000 events). A batch must be one range of
    the tenant's first events, whichever plan PostgreSQL uses. The tenant holds 20 batches."""
    with statements_sent(scratch) as sent:
        report = await rebuild_projections(scratch, tenant="nobody-here", batch=50)
    assert report.tasks == 0
    (statement, parameters) = next((s, p) for s, p in sent if "FROM events" in s)
    assert "nobody-here" in parameters  # the batch query, explained below for a real tenant
    globex = ["globex" if value == "nobody-here" else value for value in parameters]
    for plan in await plans(scratch, statement, globex):
        assert_one_index_range(plan, "(metadata ->> 'tenant'::text) = ", "stream_id > ")
