"""A task whose job was lost (Redis flushed, or the enqueue failed after the commit) is put back
on the queue by the sweep; a task whose job is queued or running is left alone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from arq import ArqRedis
from redis.asyncio import ConnectionPool

from infrastructure.event_store import EventStore
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from workers.analysis import Agent
from workers.jobs import sweep_lost_tasks

pytestmark = pytest.mark.integration


@pytest.fixture
async def jobs(app_settings: Settings) -> AsyncIterator[ArqRedis]:
    redis = ArqRedis(ConnectionPool.from_url(app_settings.redis_url))
    yield redis
    await redis.aclose()


async def test_the_sweep_requeues_a_lost_job_once(
    api: httpx.AsyncClient, store: EventStore, app_settings: Settings, jobs: ArqRedis
) -> None:
    lost = (await api.post("/tasks", json={"content": "pay now", "kind": "sms"})).json()["task_id"]
    queued = (await api.post("/tasks", json={"content": "hello", "kind": "sms"})).json()["task_id"]
    # The job of `lost` vanishes (as after a Redis flush); both tasks went quiet a while ago.
    await jobs.zrem(app_settings.queue, lost)
    await jobs.delete(f"arq:job:{lost}")
    async with store.transaction() as conn:
        await conn.execute(
            sa.text("UPDATE task_projection SET updated_at = now() - interval '1 hour'")
        )
    ctx = {"agent": Agent(TaskLog(store), {}, app_settings), "redis": jobs}

    assert await sweep_lost_tasks(ctx) == 1
    assert sorted(await jobs.zrange(app_settings.queue, 0, -1)) == sorted(
        [lost.encode(), queued.encode()]
    )
    assert await sweep_lost_tasks(ctx) == 0, "a queued job is never enqueued twice"


async def test_the_sweep_leaves_recent_and_finished_tasks_alone(
    api: httpx.AsyncClient, store: EventStore, app_settings: Settings, jobs: ArqRedis
) -> None:
    recent = (await api.post("/tasks", json={"content": "pay now", "kind": "sms"})).json()[
        "task_id"
    ]
    done = (await api.post("/tasks", json={"content": "hello", "kind": "sms"})).json()["task_id"]
    await api.post(f"/tasks/{done}/cancel")
    await jobs.delete(app_settings.queue)
    async with store.transaction() as conn:
        await conn.execute(
            sa.text("UPDATE task_projection SET updated_at = now() - interval '1 hour'"
                    " WHERE task_id = :t"), {"t": done}
        )  # fmt: skip
    ctx = {"agent": Agent(TaskLog(store), {}, app_settings), "redis": jobs}

    assert await sweep_lost_tasks(ctx) == 0
    assert await jobs.zrange(app_settings.queue, 0, -1) == [], f"{recent} is not quiet yet"
