"""Progress over a real Redis Cluster (three masters with a replica each, on this machine): the
relay SPUBLISHes each message to the shard that owns its channel, an api's hub subscribes each
channel on that shard over one connection per shard, and a master's death costs subscribers a
read of PostgreSQL, never a message."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from infrastructure.event_store import EventStore
from infrastructure.hub import Subscription, task_channel
from infrastructure.progress_bus import ShardedSubscriber
from infrastructure.relay import Relay
from infrastructure.settings import Settings
from tests.factories import progress, submitted
from tests.integration.test_pubsub_forgery import hub_of
from tests.integration.test_relay import running
from tests.redis_cluster import LocalCluster, local_cluster, need_redis_server
from tests.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    need_redis_server()
    with local_cluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


def on_cluster(settings: Settings, cluster: LocalCluster) -> Settings:
    fast = {"relay_lock_retry_s": 0.1, "relay_checkpoint_s": 0.0, "relay_backoff_max_s": 0.2}
    return settings.model_copy(update={"pubsub_url": cluster.url, **fast})


async def shard_channels(cluster: LocalCluster) -> dict[int, set[str]]:
    """The sharded channels each live master has subscribers on."""
    found = {}
    for port in cluster.master_ports():
        node = Redis(port=port)
        try:
            found[port] = {name.decode() for name in await node.pubsub_shardchannels()}
        finally:
            await node.aclose()
    return found


async def take(sub: Subscription, count: int) -> list[int]:
    """The seqs of the next `count` live messages (fails after 5 s without one)."""
    seqs: list[int] = []
    while len(seqs) < count:
        message = await sub.get(5)
        assert message is not None, f"after {seqs}: nothing more, or stale"
        seqs.append(message.seq)
    return seqs


def fresh_tasks(count: int) -> list[str]:
    return [f"cluster-{uuid.uuid4()}" for _ in range(count)]


async def test_a_hub_subscribes_each_channel_on_its_shard_with_one_connection_per_shard(
    app_settings: Settings, store: EventStore, cluster: LocalCluster
) -> None:
    settings = on_cluster(app_settings, cluster)
    tasks = fresh_tasks(30)  # 30 channels: every one of 3 shards gets some
    async with hub_of(settings, store) as hub:
        subs = [await hub.subscribe([task_channel(t)]) for t in tasks]
        assert all(hub.confirmed(sub) for sub in subs)
        pubsub = hub._pubsub
        assert isinstance(pubsub, ShardedSubscriber)
        assert len(pubsub._shards) == 3
        found = await shard_channels(cluster)
        client = RedisCluster.from_url(cluster.url)
        try:
            await client.initialize()
            for task in tasks:
                owner = client.get_node_from_key(task_channel(task))
                assert owner is not None
                assert task_channel(task) in found[owner.port], f"{task} not on its shard"
        finally:
            await client.aclose()
        assert sum(len(channels) for channels in found.values()) >= len(tasks)
        for sub in subs:
            hub.unsubscribe(sub)
        await eventually(
            lambda: _none_left(cluster, tasks), within=5, what="the hub's SUNSUBSCRIBEs"
        )


async def _none_left(cluster: LocalCluster, tasks: list[str]) -> bool:
    mine = {task_channel(t) for t in tasks}
    return not any(mine & channels for channels in (await shard_channels(cluster)).values())


async def test_the_relay_spublishes_to_the_shard_and_the_hub_delivers(
    app_settings: Settings, store: EventStore, redis: Redis, cluster: LocalCluster
) -> None:
    settings = on_cluster(app_settings, cluster)
    tasks = fresh_tasks(12)
    async with hub_of(settings, store) as hub, running(Relay(settings, store, redis)):
        subs = {t: await hub.subscribe([task_channel(t)]) for t in tasks}
        for sub in subs.values():
            sub.take_stale()  # nothing committed yet
        for task in tasks:
            await store.append(task, [submitted(), progress(1), progress(2)], 0)
        for task, sub in subs.items():
            assert await take(sub, 3) == [1, 2, 3], task
            # Live, not read from the log; and a hub that only SSUBSCRIBEs hears only SPUBLISH.
            assert not sub.stale


async def test_a_forged_spublish_is_dropped(
    app_settings: Settings, store: EventStore, cluster: LocalCluster
) -> None:
    settings = on_cluster(app_settings, cluster)
    task = fresh_tasks(1)[0]
    async with hub_of(settings, store) as hub:
        sub = await hub.subscribe([task_channel(task)])
        client = RedisCluster.from_url(cluster.url)
        try:
            forged = b'{"task_id": "%s", "seq": 1, "step": "completed"}' % task.encode()
            await client.execute_command("SPUBLISH", task_channel(task), forged)
        finally:
            await client.aclose()
        await eventually(lambda: hub.rejected >= 1, within=5, what="the forgery dropped")
        assert len(sub) == 0


async def test_a_master_killed_under_load_loses_nothing(
    app_settings: Settings, store: EventStore, redis: Redis, tmp_path: Path
) -> None:
    """A cluster of its own: a master is SIGKILLed while the relay publishes. Every subscriber is
    marked stale (it reads PostgreSQL for the gap), the hub subscribes again on the new master,
    and live delivery resumes there."""
    need_redis_server()
    with local_cluster(tmp_path / "failover") as own:
        settings = on_cluster(app_settings, own)
        tasks = fresh_tasks(30)
        for task in tasks:
            await store.append(task, [submitted()], 0)
        relay = Relay(settings, store, redis)
        async with hub_of(settings, store) as hub, running(relay):
            subs = {t: await hub.subscribe([task_channel(t)]) for t in tasks}
            seen: dict[str, set[int]] = {t: set() for t in tasks}
            stale: set[str] = set()

            async def collect(task: str, sub: Subscription) -> None:
                while True:
                    if sub.take_stale():
                        stale.add(task)
                        seen[task].update(e.version for e in await store.read_stream(task))
                    message = await sub.get(0.5)
                    if message is not None:
                        seen[task].add(message.seq)

            collectors = [asyncio.create_task(collect(t, s)) for t, s in subs.items()]
            victim = own.master_ports()[0]
            for round_ in range(1, 16):
                if round_ == 5:
                    own.kill(victim)
                for task in tasks:
                    await store.append(task, [progress(round_)], round_)
                await asyncio.sleep(0.1)
            await asyncio.to_thread(own.wait_healthy, 30)
            await eventually(lambda: not hub.degraded, within=20, what="the hub reconnected")
            # Live again on the new topology: one more round arrives without a read of the log.
            await eventually(
                lambda: not any(sub.stale for sub in subs.values()), within=10, what="caught up"
            )
            assert stale, "no subscriber read the log for what the failover held up"
            stale.clear()
            for task in tasks:
                await store.append(task, [progress(16)], 16)
            await eventually(
                lambda: all(17 in s for s in seen.values()), within=15, what="round 16"
            )
            assert not stale, f"{len(stale)} subscribers read the log for round 16"
            for collector in collectors:
                collector.cancel()
            await asyncio.gather(*collectors, return_exceptions=True)
            assert relay.published >= len(tasks) * 16
        assert all(seen[t] == set(range(1, 18)) for t in tasks), _missing(seen)
        assert victim not in own.master_ports()


def _missing(seen: dict[str, set[int]]) -> dict[str, Any]:
    return {t: sorted(set(range(1, 18)) - s) for t, s in seen.items() if s != set(range(1, 18))}
