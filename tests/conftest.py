"""Shared fixtures. Services are started lazily: unit tests never touch them.

A run leaves nothing behind, and fails if it did: `clean_database` checks for backends an
earlier test left connected, `migrated_database` checks again when the session ends, and
`nothing_left_running` checks for child processes still alive after every fixture is torn down.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import sqlalchemy as sa
from arq import ArqRedis
from redis.asyncio import ConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from infrastructure.database import create_engine, ensure_database, migrate_sync
from infrastructure.event_store import EventStore
from infrastructure.settings import Settings, async_database_url, load_settings
from tests import children, services
from tests.auth import TEST_SECRET, bearer
from tests.backends import HARNESS, assert_no_stray_backends
from tests.waiting import NotInTime, eventually_sync


@pytest.fixture(scope="session", autouse=True)
def nothing_left_running() -> Iterator[None]:
    """Fail the run if a process a test started is still alive once every fixture is torn down
    (session fixtures that depend on nothing are torn down last, and this one is set up first).
    A process being stopped gets 5 s to exit; what is left is named, then killed."""
    mark = children.mark_children()
    yield
    try:
        eventually_sync(
            lambda: not children.stray_children(mark), within=5, what="child processes exit"
        )
        return
    except NotInTime:
        left = children.stray_children(mark)
    if left:
        found = children.describe(left)
        children.kill(left)
        pytest.fail(
            "processes started by the tests are still running at the end of the session (a"
            f" fixture or test that did not stop what it started); killed now:\n  {found}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    try:
        with services.postgres_url() as url:
            yield async_database_url(url)
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    try:
        with services.redis_url() as url:
            yield url
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the test Redis (publish, inspect channels)."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def jobs(redis_url: str) -> AsyncIterator[ArqRedis]:
    """arq's client of the test Redis (its queues and job keys)."""
    client = ArqRedis(ConnectionPool.from_url(redis_url))
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def migrated_database(database_url: str) -> AsyncIterator[str]:
    """The test database, migrated. At the end of the session, after every fixture that used
    it is torn down, no backend but the harness's idle ones may remain connected to it."""
    await ensure_database(database_url)
    # alembic's env runs its own event loop, so it cannot run on this one.
    await asyncio.to_thread(migrate_sync, database_url)
    yield database_url
    config = load_settings(database_url=database_url, jwt_secret=TEST_SECRET)
    checking = create_engine(config, pool_size=1, application_name=HARNESS)
    try:
        async with checking.connect() as conn:
            await assert_no_stray_backends(conn)
    finally:
        await checking.dispose()


@pytest.fixture(scope="session")
def settings(migrated_database: str) -> Settings:
    return load_settings(database_url=migrated_database, jwt_secret=TEST_SECRET)


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings, pool_size=20, application_name=HARNESS)
    yield engine
    await engine.dispose()


@pytest.fixture
async def clean_database(engine: AsyncEngine) -> AsyncEngine:
    """Every table emptied before the test (faster than a database per test), after checking
    that no earlier test left a backend connected (tests/backends.py says why)."""
    async with engine.connect() as conn:
        await assert_no_stray_backends(conn)
    async with engine.begin() as conn:
        tables = (
            (
                await conn.execute(
                    sa.text(
                        "SELECT quote_ident(tablename) FROM pg_tables"
                        " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                )
            )
            .scalars()
            .all()
        )
        if tables:
            await conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture
def store(clean_database: AsyncEngine) -> EventStore:
    return EventStore(clean_database)


@pytest.fixture
def app_settings(migrated_database: str, redis_url: str, clean_database: AsyncEngine) -> Settings:
    """Settings for an api or worker under test: the test database (emptied) and Redis, with a
    queue of its own so runs never pick up each other's jobs."""
    return load_settings(
        database_url=migrated_database,
        redis_url=redis_url,
        queue=f"scamtrail:test:{uuid.uuid4().hex[:12]}",
        database_pool_size=5,
        jwt_secret=TEST_SECRET,
    )


@pytest.fixture
async def api(app_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process, its lifespan running, with a token of the
    `public` tenant holding every role."""
    app = create_app(app_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://scamtrail", headers=bearer()
        ) as client:
            yield client
