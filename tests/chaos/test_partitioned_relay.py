"""Chaos for the partitioned relay: two `scamtrail relay` processes share four partitions of the
log; one is SIGKILLed while events flow. The other takes its partitions over; every event is
published to Redis (a listener there sees each seq of each task at least once: a gap at a
socket would be filled from PostgreSQL and hide a loss), and every WebSocket client (one per
task, through a real api) sees every event of its task exactly once, in order."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import websockets
from redis.asyncio import Redis

from domain import events as ev
from infrastructure.event_store import EventStore
from infrastructure.settings import Settings
from tests.e2e.progress_stack import (
    acme_token,
    child_env,
    free_port,
    processes,
    start_api,
    start_relay,
)
from tests.factories import new, progress, submitted
from tests.integration.test_relay import Listener
from tests.waiting import wait_for_log

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

TASKS = 40
ROUNDS = 25  # progress events per task, one round every ROUND_S
ROUND_S = 0.2
KILL_AT_ROUND = 8


async def follow(base: str, task_id: str) -> list[int]:
    """Every seq the task's socket delivers until its terminal event, over as many sockets as it
    takes (each resuming with `after`)."""
    seqs: list[int] = []
    while True:
        url = f"{base}/ws/agent-progress/{task_id}?token={acme_token()}&after={len(seqs)}"
        async with websockets.connect(url, open_timeout=20) as ws:
            async for raw in ws:
                message = json.loads(raw)
                if "seq" in message:
                    seqs.append(message["seq"])
                    if message["step"] in ("completed", "failed", "cancelled"):
                        return seqs


async def test_killing_one_of_two_partitioned_relays_loses_and_repeats_nothing(
    app_settings: Settings, store: EventStore, redis: Redis, tmp_path: Path
) -> None:
    env = child_env(
        database_url=app_settings.database_url, redis_url=app_settings.redis_url,
        relay_partitions=4, relay_lock_retry_s=0.2, log_level="INFO",
    )  # fmt: skip
    listener = Listener(redis, "chaos-part-")
    await listener.start()
    tasks = [f"chaos-part-{i}" for i in range(TASKS)]
    for task in tasks:
        await store.append(task, [submitted()], 0)
    with processes() as started:
        started.append(relay_a := start_relay(env, tmp_path / "relay-a.log"))
        await wait_for_log(relay_a, "active", within=30)
        started.append(relay_b := start_relay(env, tmp_path / "relay-b.log"))
        await wait_for_log(relay_b, "active", within=30)  # its share, handed over by relay a
        port = free_port()
        started.append(start_api(env, port, tmp_path / "api.log"))
        followers = [asyncio.create_task(follow(f"ws://127.0.0.1:{port}", t)) for t in tasks]
        await asyncio.sleep(1)  # the sockets open and read their history
        takeover: asyncio.Task[float] | None = None
        for round_ in range(ROUNDS):
            if round_ == KILL_AT_ROUND:
                mark = len(relay_b.output())
                relay_a.kill()  # the takeover is timed from here
                takeover = asyncio.create_task(
                    wait_for_log(relay_b, "active", within=10, after=mark)
                )
            for task in tasks:
                await store.append(task, [progress(round_ + 1)], round_ + 1)
            await asyncio.sleep(ROUND_S)
        for task in tasks:
            await store.append(task, [new(ev.TaskCompleted())], ROUNDS + 1)
        assert takeover is not None
        took = await takeover
        async with asyncio.timeout(60):
            seen = await asyncio.gather(*followers)
    await listener.stop()
    expected = list(range(1, ROUNDS + 3))
    published: dict[str, set[int]] = {}
    for message in listener.messages:
        published.setdefault(message["task_id"], set()).add(message["seq"])
    unpublished = {t: set(expected) - published.get(t, set()) for t in tasks}
    assert not any(unpublished.values()), f"never published: {unpublished}"
    wrong = {t: s for t, s in zip(tasks, seen, strict=True) if s != expected}
    assert not wrong, f"lost, repeated or out of order: {wrong}"
    assert took < 3, f"relay b took relay a's partitions over after {took:.1f} s"
