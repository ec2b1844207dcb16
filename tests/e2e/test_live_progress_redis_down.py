"""Redis goes down mid-stream and comes back: sockets keep delivering from PostgreSQL (degraded,
counted in /metrics), the relay retries from its checkpoint, and nothing is lost or repeated.
The test runs its own redis-server on a free port, so stopping it disturbs nobody else."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

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
    start_redis,
    start_relay,
    submit,
)
from tests.waiting import eventually, wait_for_log

pytestmark = pytest.mark.e2e


async def metric(http: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=http, timeout=5) as client:
        for line in (await client.get("/metrics")).text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


async def degraded_sockets(http: str) -> float:
    return await metric(http, "scamtrail_progress_sockets_degraded")


async def test_redis_outage_loses_nothing(
    migrated_database: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    store, redis_port, api_port = EventStore(engine), free_port(), free_port()
    env = child_env(
        database_url=migrated_database,
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        ws_heartbeat_s=1,
        ws_idle_timeout_s=30,
        ws_poll_s=0.1,
        relay_backoff_max_s=0.5,
    )
    http, ws = f"http://127.0.0.1:{api_port}", f"ws://127.0.0.1:{api_port}"
    steps = seed_steps()
    with processes() as started:
        started.append(redis := start_redis(redis_port, tmp_path / "redis.log"))
        started.append(relay := start_relay(env, tmp_path / "relay.log"))
        started.append(start_api(env, api_port, tmp_path / "api.log"))
        task = f"task-{uuid.uuid4()}"
        await submit(store, task)
        seen_early = Recorded()
        early = asyncio.create_task(
            record(f"{ws}/ws/agent-progress/{task}", within=40, into=seen_early)
        )
        await append_steps(store, task, steps[:3])  # versions 2-4, live through Redis
        await eventually(
            lambda: 4 in seen_early.seqs, within=10, what="versions 2-4 at the early client"
        )

        redis.stop()
        await append_steps(store, task, steps[3:6], after=4)  # versions 5-7, Redis is down

        async def degraded() -> bool:
            return await degraded_sockets(http) == 1

        await eventually(degraded, within=10, what="the socket degraded")
        # A client that connects during the outage still gets history and live events.
        connected = asyncio.Event()
        during = asyncio.create_task(
            record(f"{ws}/ws/agent-progress/{task}", within=40, connected=connected)
        )
        await eventually(connected.is_set, within=10, what="connected during the outage")
        # The relay meets the outage once it reads versions 5-7; on a busy PostgreSQL server
        # other transactions can hold that read back for a while (event_store.read_all).
        await wait_for_log(relay, "Redis unreachable", within=30)

        started.append(start_redis(redis_port, tmp_path / "redis2.log"))
        await append_steps(store, task, steps[6:], after=7, pause=0.05)

        expected = list(range(1, 2 + len(steps)))
        for client in (early, during):
            got = await asyncio.wait_for(client, 40)
            assert got.seqs == expected and got.close_code == 1000

        async def recovered() -> bool:
            return await degraded_sockets(http) == 0

        await eventually(recovered, within=10, what="no socket degraded")
        # The outage was served by the api's own reading of the log, for all its sockets.
        assert await metric(http, "scamtrail_progress_hub_log_reads_total") > 0
    relay_log = relay.output()
    # Logged once per outage, not once per retry.
    assert relay_log.count("Redis unreachable") == 1, relay_log[-3000:]
    assert relay_log.count("Redis is back") == 1
