"""The timeline projection on real PostgreSQL and Redis: the relay stores every task event's
entry, a whole page is served from it, anything less is rendered from the log, and entries
go with their events."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import events as ev
from domain.log import EventMetadata, NewEvent
from domain.timeline import TIMELINE_FORMAT
from infrastructure import raw_sql
from infrastructure.event_store import EventStore
from infrastructure.projection_rebuild import prune_finished_tasks, rebuild_projections
from infrastructure.relay import Relay
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from infrastructure.timeline import save_rendered
from tests.integration.test_relay import relay_settings, running
from tests.waiting import eventually

pytestmark = pytest.mark.integration

PUBLIC = EventMetadata(tenant="public", actor="worker")


def new(*events: ev.DomainEvent) -> list[NewEvent]:
    return [NewEvent(e, PUBLIC) for e in events]


def analysis(steps: int) -> list[ev.DomainEvent]:
    """A submission, `steps` progress reports, one tool call, a verdict: steps + 5 events."""
    return [
        ev.TaskSubmitted(content="parcel held, pay the fee", kind="sms"),
        *(ev.ProgressReported(message=f"step {i}", percent=10 + i) for i in range(steps)),
        ev.ToolCallStarted(call_id="db", tool="scam_database", step="scam_db", input={}),
        ev.ToolCallCompleted(
            call_id="db", tool="scam_database", step="scam_db", output={}, duration_ms=3.5
        ),
        ev.VerdictReached(verdict="scam", score=0.9, confidence=0.8),
        ev.TaskCompleted(verdict="scam"),
    ]


async def stored(engine: AsyncEngine, task_id: str) -> dict[int, tuple[int, str]]:
    """The task's stored entries: version -> (format, entry)."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT version, format, entry FROM timeline_entries WHERE stream_id = :id"),
            {"id": task_id},
        )
        return {r.version: (r.format, r.entry) for r in rows}


async def execute(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(sql), params)


async def timeline(api: httpx.AsyncClient, task_id: str, **params: int) -> dict[str, Any]:
    response = await api.get(f"/tasks/{task_id}/timeline", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def project(store: EventStore, redis: Redis, settings: Settings, task_id: str,
                  events: int) -> None:  # fmt: skip
    """Run a relay until `task_id`'s `events` entries are stored."""
    async with running(Relay(relay_settings(settings), store, redis)):
        await eventually(
            lambda: _count(store.engine, task_id, events),
            within=10,
            what=f"{events} timeline entries of {task_id}",
        )


async def _count(engine: AsyncEngine, task_id: str, events: int) -> bool:
    return len(await stored(engine, task_id)) >= events


@pytest.fixture
def task_log(store: EventStore) -> TaskLog:
    return TaskLog(store)


async def test_the_relay_stores_each_entry_and_a_read_serves_the_stored_page(
    api: httpx.AsyncClient, task_log: TaskLog, redis: Redis, settings: Settings
) -> None:
    await task_log.append("t", new(*analysis(5)), 0)  # versions 1..10
    rendered = await timeline(api, "t")  # nothing stored yet: rendered from the log
    assert [e["seq"] for e in rendered["events"]] == list(range(1, 11))

    await project(task_log.store, redis, settings, "t", 10)
    entries = await stored(task_log.store.engine, "t")
    assert sorted(entries) == list(range(1, 11))
    assert {fmt for fmt, _ in entries.values()} == {TIMELINE_FORMAT}
    assert await timeline(api, "t") == rendered, "the stored page is the rendered page"

    # Served from the projection: a stored entry changed by hand is what the read returns.
    await execute(
        task_log.store.engine,
        "UPDATE timeline_entries SET entry = replace(entry, 'step 3', 'STORED')"
        " WHERE stream_id = 't'",
    )
    page = await timeline(api, "t")
    assert [e["message"] for e in page["events"] if "STORED" in e["message"]]
    # Pages of it, with next_after as before, each from the projection too.
    await execute(
        task_log.store.engine,
        "UPDATE timeline_entries"
        ' SET entry = replace(entry, \'"message":"\', \'"message":"STORED \')',
    )
    first = await timeline(api, "t", limit=4)
    assert [e["seq"] for e in first["events"]] == [1, 2, 3, 4] and first["next_after"] == 4
    middle = await timeline(api, "t", after=4, limit=4)
    assert [e["seq"] for e in middle["events"]] == [5, 6, 7, 8] and middle["next_after"] == 8
    last = await timeline(api, "t", after=8, limit=4)
    assert [e["seq"] for e in last["events"]] == [9, 10] and last["next_after"] is None
    for stored_page in (first, middle, last):
        assert all(e["message"].startswith("STORED") for e in stored_page["events"]), stored_page
    assert (await timeline(api, "t", after=10))["events"] == []


@pytest.mark.parametrize(
    "damage",
    [
        "DELETE FROM timeline_entries WHERE stream_id = 't' AND version = 3",  # a hole
        "DELETE FROM timeline_entries WHERE stream_id = 't' AND version > 7",  # relay behind
        "DELETE FROM timeline_entries WHERE stream_id = 't' AND version = 1",  # no start
        "UPDATE timeline_entries SET format = format + 1 WHERE version = 5",  # other code's
    ],
)
async def test_a_page_the_projection_does_not_hold_whole_is_rendered_from_the_log(
    api: httpx.AsyncClient,
    task_log: TaskLog,
    redis: Redis,
    settings: Settings,
    damage: str,
) -> None:
    await task_log.append("t", new(*analysis(5)), 0)
    await project(task_log.store, redis, settings, "t", 10)
    await execute(
        task_log.store.engine,
        "UPDATE timeline_entries SET entry = replace(entry, '\"step ', '\"STORED ')",
    )
    await execute(task_log.store.engine, damage)
    page = await timeline(api, "t")
    assert [e["seq"] for e in page["events"]] == list(range(1, 11))
    assert not [e for e in page["events"] if "STORED" in e["message"]], "read from the log"


async def test_events_appended_past_the_projection_are_read_from_the_log(
    api: httpx.AsyncClient, task_log: TaskLog, redis: Redis, settings: Settings
) -> None:
    """The log is ahead of both the projection and the task's row (an append straight to the
    store): the page still ends at the log's last event."""
    await task_log.append("t", new(*analysis(1)), 0)
    await project(task_log.store, redis, settings, "t", 6)
    await task_log.store.append("t", new(ev.ProgressReported(message="late", percent=99)), 6)
    page = await timeline(api, "t")
    assert [e["seq"] for e in page["events"]] == list(range(1, 8))


async def test_entries_go_with_their_events_and_a_rebuild_renders_them_again(
    api: httpx.AsyncClient, task_log: TaskLog, redis: Redis, settings: Settings
) -> None:
    engine = task_log.store.engine
    await task_log.append("old", new(*analysis(0)), 0)
    await task_log.append("new", new(*analysis(0)), 0)
    await project(task_log.store, redis, settings, "new", 5)
    assert len(await stored(engine, "old")) == 5

    # A rebuild writes what is missing or rendered by other code, and nothing else.
    await execute(engine, "DELETE FROM timeline_entries WHERE stream_id = 'new'")
    await execute(engine, "UPDATE timeline_entries SET format = 0, entry = '{}' WHERE version = 2")
    report = await rebuild_projections(engine)
    assert report.entries == 5 + 1
    assert {fmt for fmt, _ in (await stored(engine, "old")).values()} == {TIMELINE_FORMAT}
    assert (await rebuild_projections(engine)).entries == 0

    # A prune deletes the entries with the events; the stream id may then name a new task.
    await execute(engine, "UPDATE task_projection SET finished_at = now() - interval '2 days'")
    assert await prune_finished_tasks(engine, timedelta(days=1)) == 2
    assert await stored(engine, "old") == {} and await stored(engine, "new") == {}
    await task_log.append("old", new(ev.TaskSubmitted(content="again", kind="sms")), 0)
    page = await timeline(api, "old")
    assert [e["data"].get("content") for e in page["events"]] == ["again"]


async def test_an_entry_whose_event_is_gone_is_not_written(store: EventStore) -> None:
    await store.append("t", new(*analysis(0)), 0)
    events = await store.read_stream("t")
    await execute(store.engine, "DELETE FROM events WHERE stream_id = 't'")
    async with store.transaction() as conn:
        raw = await conn.get_raw_connection()
        assert await save_rendered(raw.driver_connection, events) == 0


async def test_an_entry_rendered_before_its_stream_id_was_used_again_is_not_written(
    store: EventStore,
) -> None:
    """An entry rendered for a stream's event, held while the task is pruned and its id used
    again (its entry reaches the log after the new task's first event): it is not stored beside
    the new event, which has the same stream and version but another id."""
    await store.append("t", new(*analysis(0)), 0)
    old = await store.read_stream("t")
    await execute(store.engine, "DELETE FROM events WHERE stream_id = 't'")
    await store.append("t", new(ev.TaskSubmitted(content="again", kind="sms")), 0)
    async with store.transaction() as conn:
        raw = await conn.get_raw_connection()
        assert await save_rendered(raw.driver_connection, old) == 0
    assert await stored(store.engine, "t") == {}


async def test_a_checkpoint_waits_for_entries_another_transaction_holds(
    task_log: TaskLog, redis: Redis, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A rebuild's batch holds the entries it rewrites until it commits; a relay storing the
    same entries then waits for it (past the probe's short statement timeout), and neither
    fails nor publishes everything again."""
    engine = task_log.store.engine
    await task_log.append("t", new(*analysis(3)), 0)
    await project(task_log.store, redis, settings, "t", 8)
    await execute(engine, "DELETE FROM relay_checkpoints")  # the next relay stores them again
    async with raw_sql.pooled(engine) as holder:
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT 1 FROM timeline_entries WHERE stream_id = 't' FOR UPDATE")
        relay = Relay(relay_settings(settings, relay_probe_timeout_s=0.05), task_log.store, redis)
        async with running(relay):
            waiting = "the relay's checkpoint waiting for the held entries"
            await eventually(lambda: relay_waits_for_a_lock(engine), within=10, what=waiting)
            await asyncio.sleep(0.3)  # six times the probe's timeout, still waiting
            assert await relay_waits_for_a_lock(engine), "cancelled, not waiting"
            await held.commit()
            await eventually(lambda: checkpoint_saved(engine), within=10, what="the checkpoint")
    assert "unreachable" not in caplog.text


async def relay_waits_for_a_lock(engine: AsyncEngine) -> bool:
    (row,) = await raw_sql.fetch(
        engine,
        "SELECT count(*) AS n FROM pg_stat_activity"
        " WHERE application_name = 'scamtrail-relay-lock' AND wait_event_type = 'Lock'",
    )
    return bool(row["n"])


async def checkpoint_saved(engine: AsyncEngine) -> bool:
    (row,) = await raw_sql.fetch(engine, "SELECT count(*) AS n FROM relay_checkpoints")
    return bool(row["n"])


# Fails the statement that stores entries while the sequence counts below 3: a sequence, not a
# table, since the failure rolls back whatever else the statement did.
_FAIL_TWICE = """
CREATE SEQUENCE entry_failures;
CREATE FUNCTION fail_twice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('entry_failures') <= 2 THEN
    RAISE EXCEPTION 'timeline entries refused (test)';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER fail_twice BEFORE INSERT ON timeline_entries
  FOR EACH STATEMENT EXECUTE FUNCTION fail_twice();
"""
_HEAL = """
DROP TRIGGER IF EXISTS fail_twice ON timeline_entries;
DROP FUNCTION IF EXISTS fail_twice();
DROP SEQUENCE IF EXISTS entry_failures;
"""


async def test_a_checkpoint_that_fails_to_store_entries_publishes_again_and_loses_none(
    task_log: TaskLog, redis: Redis, settings: Settings
) -> None:
    """The entries are stored by the statement that moves the checkpoint: when it fails (here
    refused twice by PostgreSQL), the relay goes back to its last checkpoint, publishes again,
    and stores every entry."""
    await task_log.append("t", new(*analysis(3)), 0)
    engine = task_log.store.engine
    async with raw_sql.pooled(engine) as conn:
        await conn.execute(_FAIL_TWICE)
    try:
        quick = settings.model_copy(update={"relay_backoff_max_s": 0.05})
        await project(task_log.store, redis, quick, "t", 8)
        (row,) = await raw_sql.fetch(engine, "SELECT last_value FROM entry_failures")
        assert row["last_value"] == 3, "refused twice, stored on the third try"
    finally:
        async with raw_sql.pooled(engine) as conn:
            await conn.execute(_HEAL)
    assert sorted(await stored(engine, "t")) == list(range(1, 9))
