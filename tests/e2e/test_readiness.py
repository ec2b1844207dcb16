"""/readyz says why the api is not ready: Redis gone, or a schema behind the code."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa

from api.app import create_app
from infrastructure.embedded_redis import free_port
from infrastructure.event_store import EventStore
from infrastructure.settings import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture
async def no_redis_api(app_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app pointed at a Redis port where nothing listens."""
    settings = app_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scamtrail") as client:
            yield client


async def test_not_ready_without_redis_says_so(no_redis_api: httpx.AsyncClient) -> None:
    ready = await no_redis_api.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["reasons"] == ["Redis unreachable: ConnectionError"]
    assert (await no_redis_api.get("/healthz")).status_code == 200


async def readyz_at_schema(
    api: httpx.AsyncClient, store: EventStore, version: str
) -> httpx.Response:
    """/readyz while the database claims to be at schema `version`; the real one is put back."""
    set_version = sa.text("UPDATE alembic_version SET version_num = :v")
    async with store.transaction() as conn:
        head = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        await conn.execute(set_version, {"v": version})
    try:
        return await api.get("/readyz")
    finally:
        async with store.transaction() as conn:
            await conn.execute(set_version, {"v": head})


async def test_not_ready_when_the_schema_is_behind(
    api: httpx.AsyncClient, store: EventStore
) -> None:
    ready = await readyz_at_schema(api, store, "0001")
    assert ready.status_code == 503
    assert "run `scamtrail migrate`" in ready.json()["reasons"][0]


async def test_ready_with_a_warning_when_the_schema_is_ahead(
    api: httpx.AsyncClient, store: EventStore
) -> None:
    """A rolling deploy: the new release migrated; old replicas must stay in the pool."""
    ready = await readyz_at_schema(api, store, "9999_from_a_newer_release")
    assert ready.status_code == 200, ready.text
    assert ready.json()["reasons"] == []
    assert "newer than this code" in ready.json()["warnings"][0]


async def test_a_database_never_migrated_says_run_migrate(
    api: httpx.AsyncClient, store: EventStore
) -> None:
    async with store.transaction() as conn:
        await conn.execute(sa.text("ALTER TABLE alembic_version RENAME TO alembic_version_away"))
    try:
        ready = await api.get("/readyz")
    finally:
        async with store.transaction() as conn:
            await conn.execute(
                sa.text("ALTER TABLE alembic_version_away RENAME TO alembic_version")
            )
    assert ready.status_code == 503
    assert ready.json()["reasons"] == ["database not migrated: run `scamtrail migrate`"]
