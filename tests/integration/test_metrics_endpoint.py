"""/metrics as an operator runs it: a scrape token when one is configured, and a bounded cost per
scrape however often it is scraped."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.settings import Settings

pytestmark = pytest.mark.integration

SCRAPE_TOKEN = "scraper-secret-0123456789"


@pytest.fixture
def app_settings(app_settings: Settings) -> Settings:
    return app_settings.model_copy(
        update={"metrics_token": SecretStr(SCRAPE_TOKEN), "metrics_refresh_s": 60.0}
    )


async def test_a_configured_scrape_token_is_required(api: httpx.AsyncClient) -> None:
    # The `api` client carries a user's JWT (every role): it is not the scrape token.
    refused = await api.get("/metrics")
    assert refused.status_code == 401
    assert "SCAMTRAIL_METRICS_TOKEN" in refused.json()["detail"]
    wrong = await api.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}x"})
    assert wrong.status_code == 401
    scraped = await api.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert scraped.status_code == 200
    assert "scamtrail_relay_lag_events" in scraped.text


async def published(api: httpx.AsyncClient) -> float:
    scraped = await api.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert scraped.status_code == 200
    (line,) = [x for x in scraped.text.splitlines() if x.startswith("scamtrail_relay_published")]
    return float(line.split()[-1])


async def test_scrapes_within_the_refresh_interval_reuse_one_reading(
    api: httpx.AsyncClient, app_settings: Settings, clean_database: AsyncEngine
) -> None:
    """The relay's checkpoint moves between scrapes; within `metrics_refresh_s` every scrape,
    a burst of 50 at once included, reports the first reading: PostgreSQL is asked once."""
    upsert = sa.text(
        "INSERT INTO relay_checkpoints (name, log_cursor, published_total) VALUES"
        " (:name, '0-0', :n) ON CONFLICT (name) DO UPDATE SET published_total = :n"
    )
    async with clean_database.begin() as conn:
        await conn.execute(upsert, {"name": app_settings.relay_name, "n": 7})
    burst = await asyncio.gather(*(published(api) for _ in range(50)))
    assert set(burst) == {7.0}
    async with clean_database.begin() as conn:
        await conn.execute(upsert, {"name": app_settings.relay_name, "n": 9})
    assert await published(api) == 7.0
