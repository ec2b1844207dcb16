"""workers/queue_worker.py against a real Redis: a job this worker runs is not looked at again
by its polls, a job is claimed in one round trip, and workers sharing a queue (ours, and arq's
own beside it) still run each job exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from arq import ArqRedis
from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix
from arq.worker import Worker, func
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.waiting import eventually, stays_quiet
from workers.queue_worker import AnalysisWorker

pytestmark = pytest.mark.integration


@pytest.fixture
def queue() -> str:
    return f"test:queue:{uuid.uuid4().hex[:8]}"  # job ids start with it too: arq's keys are global


async def command_calls(redis: Redis, *commands: str) -> Counter[str]:
    """How many times the server has run each command (INFO commandstats)."""
    stats = await redis.info("commandstats")
    return Counter({c: stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in commands})


@asynccontextmanager
async def serving(worker: Worker) -> AsyncIterator[None]:
    """The worker polling its queue in the background, until the block ends."""
    running = asyncio.create_task(worker.async_run())
    try:
        yield
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await worker.close()


def a_worker(
    kind: type[Worker], redis_url: str, queue: str, job: Any, *, burst: bool = False
) -> Worker:
    return kind(
        functions=[func(job, name="job")],
        redis_settings=RedisSettings.from_dsn(redis_url),
        queue_name=queue,
        poll_delay=0.01,
        max_jobs=4,
        burst=burst,
        handle_signals=False,
        keep_result=0,
    )


async def test_a_running_job_costs_its_worker_no_round_trip_per_poll(
    redis_url: str, jobs: ArqRedis, queue: str
) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[str] = []

    async def job(ctx: dict[str, Any], name: str) -> None:
        runs.append(name)
        started.set()
        await asyncio.wait_for(release.wait(), 10)  # also when the test fails first

    async with serving(a_worker(AnalysisWorker, redis_url, queue, job)):
        await jobs.enqueue_job("job", "slow", _job_id=f"{queue}:slow", _queue_name=queue)
        await asyncio.wait_for(started.wait(), 10)
        claims = ("evalsha", "eval", "watch", "exists", "zscore")
        before = await command_calls(jobs, *claims, "zrangebyscore")

        async def claims_since() -> list[str]:
            spent = await command_calls(jobs, *claims) - before
            return [c for c in claims if spent[c]]

        # 0.3 s: about thirty polls at 10 ms, each finding the running job's id in the queue.
        await stays_quiet(claims_since, for_s=0.3, what="the running job was claimed again")
        polls = (await command_calls(jobs, "zrangebyscore") - before)["zrangebyscore"]
        assert polls >= 5, f"the worker kept polling: {polls} polls"
        release.set()
        await eventually(
            lambda: jobs.zcard(queue), until=lambda n: n == 0, within=10, what="the job done"
        )
        assert runs == ["slow"]


async def test_a_job_held_by_another_worker_is_left_to_it(
    redis_url: str, jobs: ArqRedis, queue: str
) -> None:
    ran: list[str] = []

    async def job(ctx: dict[str, Any], name: str) -> None:
        ran.append(name)

    # Another worker holds the job (its in-progress key), as it does while it runs it.
    held = f"{queue}:held"
    await jobs.set(in_progress_key_prefix + held, b"1", px=60_000)
    await jobs.enqueue_job("job", "held", _job_id=held, _queue_name=queue)
    async with serving(a_worker(AnalysisWorker, redis_url, queue, job)):
        # 0.3 s: about thirty polls at 10 ms, each finding the held job due.
        await stays_quiet(lambda: ran, for_s=0.3, what="a held job was started twice")
        await jobs.delete(in_progress_key_prefix + held)  # the holder died; arq's key expired
        await eventually(lambda: ran, within=10, what="the job, once no one holds it")
        assert ran == ["held"]


async def test_workers_sharing_a_queue_run_every_job_once(
    redis_url: str, jobs: ArqRedis, queue: str
) -> None:
    ran: Counter[str] = Counter()

    async def job(ctx: dict[str, Any], name: str) -> None:
        ran[name] += 1
        await asyncio.sleep(0.02)

    names = [f"job-{n}" for n in range(40)]
    for name in names:
        await jobs.enqueue_job("job", name, _job_id=f"{queue}:{name}", _queue_name=queue)
    # Two of ours and one of arq's own, claiming the same ids at once.
    workers = [
        a_worker(AnalysisWorker, redis_url, queue, job, burst=True),
        a_worker(AnalysisWorker, redis_url, queue, job, burst=True),
        a_worker(Worker, redis_url, queue, job, burst=True),
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(w.async_run() for w in workers)), 60)
    finally:
        for worker in workers:
            await worker.close()
    assert ran == Counter(names), "every job ran, and none twice"
    assert sum(w.jobs_complete for w in workers) == len(names)
    assert sum(w.jobs_complete for w in workers[:2]) > 0, "our workers took their share"


async def test_a_claim_redis_does_not_answer_gives_the_slot_back(
    jobs: ArqRedis, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def job(ctx: dict[str, Any]) -> None: ...

    worker = AnalysisWorker(
        functions=[func(job, name="job")],
        redis_pool=jobs,
        queue_name=queue,
        max_jobs=2,
        handle_signals=False,
    )

    async def unanswered(**_: Any) -> None:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(jobs, "register_script", lambda _: unanswered)
    free = worker.sem._value
    with pytest.raises(RedisConnectionError):
        await worker.start_jobs([b"a-job"])
    assert worker.job_counter == 0
    assert worker.sem._value == free, "the slot taken for the claim is free again"
