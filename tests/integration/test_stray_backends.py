"""The harness itself: a backend a test leaves connected fails the next test that needs the
database, naming what was left, instead of a TRUNCATE timing out somewhere else."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.settings import Settings
from tests.backends import StrayBackends, assert_no_stray_backends

pytestmark = pytest.mark.integration


async def test_a_backend_left_connected_is_named(settings: Settings, engine: AsyncEngine) -> None:
    url = sa.engine.make_url(settings.database_url).set(drivername="postgresql")
    leaked = await asyncpg.connect(
        url.render_as_string(hide_password=False),
        server_settings={"application_name": "left-behind-relay"},
    )
    try:
        async with engine.connect() as conn:
            with pytest.raises(StrayBackends, match="left-behind-relay"):
                await assert_no_stray_backends(conn, grace_s=0.3)
    finally:
        await leaked.close()
    async with engine.connect() as conn:
        await assert_no_stray_backends(conn)  # gone once closed: the next test may run


async def test_a_harness_connection_left_in_a_transaction_is_named(engine: AsyncEngine) -> None:
    async with engine.connect() as held:
        await held.execute(sa.text("SELECT 1"))  # autobegin: the transaction stays open
        async with engine.connect() as conn:
            with pytest.raises(StrayBackends, match="idle in transaction"):
                await assert_no_stray_backends(conn, grace_s=0.3)
        await held.rollback()
    async with engine.connect() as conn:
        await assert_no_stray_backends(conn)
