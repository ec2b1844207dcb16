"""The long suites: 500 sockets on one task with 100 tasks streaming at once, and a relay killed
with SIGKILL in the middle of 10,000 events while a standby takes over."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import events as ev
from infrastructure.event_store import EventStore
from tests.e2e.progress_stack import (
    Recorded,
    append_steps,
    child_env,
    free_port,
    processes,
    record,
    seed_steps,
    start_api,
    start_relay,
    submit,
)
from tests.waiting import eventually, wait_for_log

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def env(migrated_database: str, redis_url: str) -> dict[str, str]:
    return child_env(
        database_url=migrated_database,
        redis_url=redis_url,
        ws_heartbeat_s=5,
        ws_idle_timeout_s=60,
        relay_lock_retry_s=0.2,
        log_level="WARNING",
    )


async def open_all(urls: list[str], within: float) -> list[asyncio.Task[Recorded]]:
    """Connect every client and return once each has its `connected` message."""
    tasks, events = [], []
    for url in urls:
        connected = asyncio.Event()
        tasks.append(asyncio.create_task(record(url, within=within, connected=connected)))
        events.append(connected)
    async with asyncio.timeout(60):
        await asyncio.gather(*(e.wait() for e in events))
    return tasks


async def test_500_clients_on_one_task_and_100_tasks_at_once(
    env: dict[str, str], engine: AsyncEngine, tmp_path: Path
) -> None:
    store, port, steps = EventStore(engine), free_port(), seed_steps()
    with processes() as started:
        started.append(start_relay(env, tmp_path / "relay.log"))
        started.append(start_api(env, port, tmp_path / "api.log"))
        hot, others = f"task-{uuid.uuid4()}", [f"task-{uuid.uuid4()}" for _ in range(100)]
        for task in [hot, *others]:
            await submit(store, task)
        urls = [f"ws://127.0.0.1:{port}/ws/agent-progress/{hot}"] * 500
        urls += [f"ws://127.0.0.1:{port}/ws/agent-progress/{t}" for t in others]
        clients = await open_all(urls, within=120)
        writers = asyncio.Semaphore(16)  # below the harness's pool, as in the test below

        async def write(task: str) -> None:
            async with writers:
                await append_steps(store, task, steps)

        async with asyncio.TaskGroup() as group:
            for task in [hot, *others]:
                group.create_task(write(task))
        results = await asyncio.wait_for(asyncio.gather(*clients), 120)
    expected = list(range(1, 2 + len(steps)))
    assert len(results) == 600
    for got in results:
        assert got.seqs == expected and got.close_code == 1000


async def test_relay_killed_mid_stream_loses_nothing(
    env: dict[str, str], engine: AsyncEngine, redis_url: str, tmp_path: Path
) -> None:
    store, port = EventStore(engine), free_port()
    prefix = f"kill-{uuid.uuid4().hex[:8]}-"
    tasks, per_task = [f"{prefix}{i}" for i in range(100)], 100
    redis = Redis.from_url(redis_url)
    pubsub = redis.pubsub()
    await pubsub.psubscribe(f"agent_progress:{prefix}*")
    seen_in_redis: set[tuple[str, int]] = set()

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "pmessage":
                body = json.loads(message["data"])
                seen_in_redis.add((body["task_id"], body["seq"]))

    listening = asyncio.create_task(listen())
    try:
        with processes() as started:
            started.append(first := start_relay(env, tmp_path / "relay-1.log"))
            await wait_for_log(first, "active", within=20)
            started.append(second := start_relay(env, tmp_path / "relay-2.log"))
            await wait_for_log(second, "standby", within=20)
            started.append(start_api(env, port, tmp_path / "api.log"))
            for task in tasks:
                await submit(store, task)
            clients = await open_all(
                [f"ws://127.0.0.1:{port}/ws/agent-progress/{t}" for t in tasks], within=180
            )
            appended, midway = 0, asyncio.Event()
            # Fewer appends at once than the harness's pool holds: on a loaded machine 100
            # writers queued on 40 connections can wait out the pool's timeout.
            writers = asyncio.Semaphore(16)

            async def stream(task: str) -> None:
                nonlocal appended
                body = [ev.ProgressReported(message=f"step {i}", percent=i) for i in range(98)]
                for i, event in enumerate([*body, ev.TaskCompleted()]):
                    async with writers:
                        await append_steps(store, task, [event], after=1 + i)
                    appended += 1
                    if appended == 3000:
                        midway.set()

            async def kill_midway() -> None:
                await midway.wait()
                first.kill()  # SIGKILL: no checkpoint save, no unlock; PostgreSQL drops the lock

            # A task group, not gather: if one writer fails, the others are cancelled with it
            # instead of appending on into the next test.
            async with asyncio.TaskGroup() as group:
                for task in tasks:
                    group.create_task(stream(task))
                group.create_task(kill_midway())
            assert not first.alive()
            await wait_for_log(second, "active", within=20)
            results = await asyncio.wait_for(asyncio.gather(*clients), 120)
        expected = list(range(1, per_task + 1))
        for got in results:
            assert got.seqs == expected and got.close_code == 1000
        await eventually(
            lambda: len(seen_in_redis) >= len(tasks) * per_task,
            within=10,
            what=f"{len(tasks) * per_task} messages seen in Redis",
        )
        assert seen_in_redis == {(t, s) for t in tasks for s in expected}
    finally:
        listening.cancel()
        await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
        await redis.aclose()
