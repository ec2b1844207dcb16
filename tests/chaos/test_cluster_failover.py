"""Chaos for sharded Pub/Sub: a real api and relay (separate processes) carry progress over a
local Redis Cluster of three masters with a replica each; one master is SIGKILLed while events
flow, and its replica takes over. Every WebSocket client (one per task) sees every event of its
task exactly once, in order: what the dead shard held up is read from PostgreSQL, and live
delivery resumes on the new master."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from domain import events as ev
from infrastructure.event_store import EventStore
from infrastructure.settings import Settings
from tests.chaos.test_partitioned_relay import follow
from tests.e2e.progress_stack import child_env, free_port, processes, start_api, start_relay
from tests.factories import new, progress, submitted
from tests.redis_cluster import local_cluster, need_redis_server
from tests.waiting import wait_for_log

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

TASKS = 40
ROUNDS = 25
ROUND_S = 0.2
KILL_AT_ROUND = 8


async def test_a_master_failover_loses_and_repeats_nothing(
    app_settings: Settings, store: EventStore, tmp_path: Path
) -> None:
    need_redis_server()
    with local_cluster(tmp_path / "cluster") as cluster:
        env = child_env(
            database_url=app_settings.database_url, redis_url=app_settings.redis_url,
            pubsub_url=cluster.url, relay_lock_retry_s=0.2, log_level="INFO",
        )  # fmt: skip
        tasks = [f"chaos-cluster-{i}" for i in range(TASKS)]
        for task in tasks:
            await store.append(task, [submitted()], 0)
        with processes() as started:
            started.append(relay := start_relay(env, tmp_path / "relay.log"))
            await wait_for_log(relay, "active", within=30)
            port = free_port()
            started.append(api := start_api(env, port, tmp_path / "api.log"))
            followers = [asyncio.create_task(follow(f"ws://127.0.0.1:{port}", t)) for t in tasks]
            await asyncio.sleep(1)  # the sockets open and read their history
            for round_ in range(ROUNDS):
                if round_ == KILL_AT_ROUND:
                    victim = cluster.master_ports()[0]
                    cluster.kill(victim)
                for task in tasks:
                    await store.append(task, [progress(round_ + 1)], round_ + 1)
                await asyncio.sleep(ROUND_S)
            for task in tasks:
                await store.append(task, [new(ev.TaskCompleted())], ROUNDS + 1)
            async with asyncio.timeout(60):
                seen = await asyncio.gather(*followers)
            assert victim not in cluster.master_ports(), "the replica took over"
            await wait_for_log(api, "progress hub: Redis is back", within=10)
    expected = list(range(1, ROUNDS + 3))
    wrong = {t: s for t, s in zip(tasks, seen, strict=True) if s != expected}
    assert not wrong, f"lost, repeated or out of order: {wrong}"
