"""A task whose job was lost (Redis flushed, or the enqueue failed after the commit) is put back
on the queue by the sweep; a task whose job is queued or running is left alone."""

from __future__ import annotations

import uuid

import httpx
import pytest
import sqlalchemy as sa
from arq import ArqRedis
from arq.jobs import Job

from infrastructure.analysis_queue import ANALYZE, enqueue_analysis
from infrastructure.event_store import EventStore
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from workers.analysis import Agent
from workers.jobs import sweep_lost_tasks

pytestmark = pytest.mark.integration


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


async def test_an_analysis_is_enqueued_as_arq_enqueues_it_once(
    app_settings: Settings, jobs: ArqRedis
) -> None:
    """The one-round-trip enqueue stores what `ArqRedis.enqueue_job` stores: the job arq's
    worker reads (function, arguments, try, enqueue time), the same expiry, the same score;
    and it refuses an id that is queued, or whose result is kept."""
    ours, theirs = f"ours-{uuid.uuid4()}", f"theirs-{uuid.uuid4()}"
    queue = app_settings.queue
    assert await enqueue_analysis(jobs, ours, queue)
    await jobs.enqueue_job(ANALYZE, theirs, _job_id=theirs, _queue_name=queue)

    mine, arqs = (
        await Job(ours, jobs, _queue_name=queue).info(),
        await Job(theirs, jobs, _queue_name=queue).info(),
    )
    assert mine is not None and arqs is not None
    assert (mine.function, mine.args, mine.kwargs) == (ANALYZE, (ours,), {})
    assert (arqs.function, arqs.kwargs, arqs.job_try) == (mine.function, {}, mine.job_try)
    assert mine.score is not None and arqs.score is not None
    assert abs(mine.score - arqs.score) < 5_000
    ttl_ours, ttl_theirs = await jobs.pttl(f"arq:job:{ours}"), await jobs.pttl(f"arq:job:{theirs}")
    assert abs(ttl_ours - ttl_theirs) < 5_000

    assert not await enqueue_analysis(jobs, ours, queue), "queued: not enqueued twice"
    await jobs.zrem(queue, ours)
    await jobs.delete(f"arq:job:{ours}")
    await jobs.set(f"arq:result:{ours}", b"kept")
    assert not await enqueue_analysis(jobs, ours, queue), "its result is kept"
    assert await jobs.zrange(queue, 0, -1) == [theirs.encode()]
