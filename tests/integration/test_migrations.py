"""Migrations run forward on an empty database and on one that already holds data."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from domain.events import IndicatorsLoaded, TaskSubmitted
from domain.indicators import GLOBAL_STREAM
from infrastructure.database import alembic_config, create_engine, ensure_database, migrate_sync
from infrastructure.event_store import EventStore
from infrastructure.indicator_projection import rebuild_indicators
from infrastructure.indicators import IndicatorRepository
from infrastructure.settings import load_settings
from tests.factories import progress

pytestmark = pytest.mark.integration


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
async def scratch_url(database_url: str) -> AsyncIterator[str]:
    url = make_url(database_url)
    scratch = url.set(database=f"{url.database}_mig_{uuid.uuid4().hex[:8]}")
    text = scratch.render_as_string(hide_password=False)
    assert await ensure_database(text) is True
    yield text
    admin = await asyncpg.connect(_plain(url.set(database="postgres").render_as_string(False)))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)')
    finally:
        await admin.close()


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(_plain(url))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await conn.close()


async def test_upgrade_an_empty_database_then_again_is_a_no_op(scratch_url: str) -> None:
    await asyncio.to_thread(migrate_sync, scratch_url)
    assert {"events", "alembic_version"} <= await _tables(scratch_url)
    await asyncio.to_thread(migrate_sync, scratch_url)  # already at head: nothing to do, no error


# Rows written with the schema as it was right after each revision, in that revision's own SQL.
# A new revision that changes the log adds its sample here; the test reads them all back at head.
SAMPLES_AFTER_REVISION = {
    "0001": [
        "INSERT INTO events (stream_id, version, event_id, type, data, metadata) VALUES"
        " ('written-at-0001', 1, gen_random_uuid(), 'TaskSubmitted',"
        ' \'{"content": "written at 0001", "kind": "sms"}\','
        ' \'{"tenant": "acme", "actor": "test"}\')',
    ],
}


async def test_upgrade_keeps_the_data_written_at_every_earlier_revision(scratch_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(scratch_url))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert set(SAMPLES_AFTER_REVISION) <= set(revisions)
    for revision in revisions:
        await asyncio.to_thread(migrate_sync, scratch_url, revision)
        conn = await asyncpg.connect(_plain(scratch_url))
        try:
            for statement in SAMPLES_AFTER_REVISION.get(revision, []):
                await conn.execute(statement)
        finally:
            await conn.close()

    engine = create_engine(load_settings(database_url=scratch_url), pool_size=2)
    try:
        store = EventStore(engine)
        for revision in SAMPLES_AFTER_REVISION:
            (recorded,) = await store.read_stream(f"written-at-{revision}")
            assert recorded.event == TaskSubmitted(content=f"written at {revision}", kind="sms")
            # and the log still takes appends after it
            await store.append(f"written-at-{revision}", [progress()], 1)
    finally:
        await engine.dispose()


async def _schema(url: str) -> set[tuple[str, ...]]:
    """Columns, indexes and extended statistics of the public schema."""
    conn = await asyncpg.connect(_plain(url))
    try:
        rows = await conn.fetch(
            """
            SELECT 'column', table_name, column_name || ' ' || data_type
            FROM information_schema.columns WHERE table_schema = 'public'
            UNION ALL SELECT 'index', tablename, indexdef FROM pg_indexes
            WHERE schemaname = 'public'
            UNION ALL SELECT 'statistics', stxrelid::regclass::text, stxname
            FROM pg_statistic_ext WHERE stxnamespace = 'public'::regnamespace
            """
        )
        return {tuple(row) for row in rows}
    finally:
        await conn.close()


async def test_downgrading_the_newest_revision_restores_the_schema_before_it(
    scratch_url: str,
) -> None:
    config = alembic_config(scratch_url)
    script = ScriptDirectory.from_config(config)
    previous = script.get_revision("head").down_revision
    assert isinstance(previous, str)
    await asyncio.to_thread(migrate_sync, scratch_url, previous)
    before = await _schema(scratch_url)

    await asyncio.to_thread(migrate_sync, scratch_url)
    await asyncio.to_thread(command.downgrade, config, previous)
    assert await _schema(scratch_url) == before
    await asyncio.to_thread(migrate_sync, scratch_url)  # and forward again


async def test_indicators_written_before_0009_become_global_events(scratch_url: str) -> None:
    await asyncio.to_thread(migrate_sync, scratch_url, "0008")
    conn = await asyncpg.connect(_plain(scratch_url))
    try:
        await conn.execute(
            "INSERT INTO scam_indicators (kind, value, category, report_count, source)"
            " VALUES ('domain', 'old.top', 'phishing', 4, 'analyst'),"
            "        ('phone', '+18005550199', 'tech_support', 1, 'seed')"
        )
    finally:
        await conn.close()
    await asyncio.to_thread(migrate_sync, scratch_url)

    engine = create_engine(load_settings(database_url=scratch_url), pool_size=2)
    try:
        repo, store = IndicatorRepository(engine), EventStore(engine)
        (old,) = await repo.lookup("domain", "login.old.top", tenant="anyone")
        assert (old["scope"], old["source"], old["report_count"]) == ("global", "analyst", 4)
        assert (old["asserted"]["stream_id"], old["asserted"]["seq"]) == (GLOBAL_STREAM, 1)
        (loaded,) = await store.read_stream(GLOBAL_STREAM)
        assert isinstance(loaded.event, IndicatorsLoaded)
        assert {(i.value, i.source) for i in loaded.event.indicators} == {
            ("old.top", "analyst"),
            ("+18005550199", "seed"),
        }
        report = await rebuild_indicators(engine)  # the log alone gives the rows back
        assert report.rows == 2
        (again,) = await repo.lookup("domain", "old.top", tenant=None)
        assert {k: again[k] for k in ("category", "report_count", "source", "first_seen")} == {
            k: old[k] for k in ("category", "report_count", "source", "first_seen")
        }
    finally:
        await engine.dispose()
