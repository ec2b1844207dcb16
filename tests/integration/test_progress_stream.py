"""The delivery loop with a real hub (Redis) and store (PostgreSQL), no relay: the test publishes
wire messages itself, so it can publish them late, out of order, twice, or far too many."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from api.metrics import StreamMetrics
from api.streaming import Close, Follow, Outgoing, progress_stream
from domain import events as ev
from domain.log import RecordedEvent
from domain.progress import progress_message
from infrastructure.event_store import EventStore
from infrastructure.hub import ProgressHub, task_channel
from infrastructure.settings import Settings
from tests.factories import new, progress, submitted

pytestmark = pytest.mark.integration


@pytest.fixture
async def hub(settings: Settings, redis_url: str, store: EventStore) -> AsyncIterator[ProgressHub]:
    small = settings.model_copy(
        update={"redis_url": redis_url, "ws_queue_size": 4, "ws_idle_timeout_s": 5.0}
    )
    found = ProgressHub(small, store)
    await found.start()
    assert await found.wait_connected(5)
    yield found
    await found.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def publish(redis: Redis, store: EventStore, task: str, seqs: list[int]) -> None:
    by_seq = {r.version: r for r in await store.read_stream(task)}
    for seq in seqs:
        await redis.publish(task_channel(task), json.dumps(progress_message(by_seq[seq])))


async def collect(stream: AsyncIterator[Outgoing | Close], within: float = 10) -> list[int]:
    seqs: list[int] = []
    async with asyncio.timeout(within):
        async for item in stream:
            if isinstance(item, Close):
                assert item.code == 1000
                return seqs
            if item.seq is not None:
                seqs.append(item.seq)
    return seqs


async def test_gaps_duplicates_and_overflow_are_repaired_from_postgresql(
    store: EventStore, hub: ProgressHub, redis: Redis
) -> None:
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted()], 0)
    metrics = StreamMetrics()
    stream = progress_stream(store, hub, hub._settings, metrics, Follow([task]))
    assert (await anext(stream)).kind == "connected"  # type: ignore[union-attr]
    assert (await anext(stream)).seq == 1  # type: ignore[union-attr]
    # Subscribed now. 60 events: far more than the queue of 4 holds while nobody reads.
    await store.append(task, [progress(i % 100) for i in range(60)], 1)
    await store.append(task, [new(ev.TaskCompleted())], 61)
    await publish(redis, store, task, [2, 2, 5, *range(3, 63)])  # a duplicate, a gap, a flood
    await asyncio.sleep(0.3)  # let the hub overflow the queue before the loop reads again
    assert hub.subscriber_count == 1

    seqs = await collect(stream)
    assert seqs == list(range(2, 63))  # each once, in order: gaps filled from PostgreSQL
    assert metrics.overflows._value.get() >= 1
    await stream.aclose()  # what the endpoints do (aclosing) when the socket ends
    assert hub.subscriber_count == 0 and hub.channel_count == 0


async def test_a_message_missed_between_subscribe_and_history_is_not_lost(
    store: EventStore, hub: ProgressHub, redis: Redis
) -> None:
    """The live message of seq 2 is published before the socket connects (so it never reaches
    it); the history read after subscribing returns it; the live seq 3 follows."""
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted(), progress()], 0)
    await publish(redis, store, task, [1, 2])
    stream = progress_stream(store, hub, hub._settings, StreamMetrics(), Follow([task]))
    await anext(stream)  # connected
    assert [(await anext(stream)).seq for _ in range(2)] == [1, 2]  # type: ignore[union-attr]
    await store.append(task, [new(ev.TaskCompleted())], 2)
    await publish(redis, store, task, [2, 3])
    assert await collect(stream) == [3]


async def test_resuming_after_the_last_event_of_a_finished_task_closes_at_once(
    store: EventStore, hub: ProgressHub
) -> None:
    """A client that reconnects with `after=<seq of TaskCompleted>` gets nothing again and is
    closed right away, not after the idle timeout (the chaos suite found that wait)."""
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted(), new(ev.TaskCompleted())], 0)
    stream = progress_stream(store, hub, hub._settings, StreamMetrics(), Follow([task], {task: 2}))
    assert (await anext(stream)).kind == "connected"  # type: ignore[union-attr]
    assert await collect(stream, within=2) == []


async def test_a_draining_hub_closes_its_sockets_with_1001(
    store: EventStore, hub: ProgressHub
) -> None:
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted()], 0)
    stream = progress_stream(store, hub, hub._settings, StreamMetrics(), Follow([task]))
    assert (await anext(stream)).kind == "connected"  # type: ignore[union-attr]
    assert (await anext(stream)).seq == 1  # type: ignore[union-attr]
    waiting = asyncio.create_task(anext(stream))
    await asyncio.sleep(0.1)  # the loop now waits for a live message
    hub.drain()
    assert await asyncio.wait_for(waiting, 2) == Close(1001, "server shutting down")


class CountingStore(EventStore):
    """Counts the reads of single streams: what each socket does on its own."""

    stream_reads = 0

    async def read_stream(self, *args: Any, **kwargs: Any) -> list[RecordedEvent]:
        self.stream_reads += 1
        return await super().read_stream(*args, **kwargs)


async def test_without_redis_the_hub_reads_the_log_once_for_every_socket(
    settings: Settings, store: EventStore
) -> None:
    """Redis is unreachable from the start. 50 sockets follow one task while 20 events commit
    over about 2 s: every socket gets every event once, in order, from the hub's own reading of
    the log (about one query per `ws_poll_s` for the whole process). Each socket reads
    PostgreSQL on its own only at the switches (a handful of times), not every `ws_poll_s`:
    once that was 50 x 20 reads for this test, and 20,000 queries a second for 5,000 sockets."""
    unreachable = settings.model_copy(
        update={"redis_url": "redis://127.0.0.1:1/0", "ws_poll_s": 0.05, "ws_idle_timeout_s": 10}
    )
    counting = CountingStore(store.engine)
    hub = ProgressHub(unreachable, counting)
    await hub.start()
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted()], 0)
    try:
        follows = [
            collect(progress_stream(counting, hub, unreachable, StreamMetrics(), Follow([task])))
            for _ in range(50)
        ]
        clients = [asyncio.create_task(follow) for follow in follows]
        for version in range(1, 20):
            await asyncio.sleep(0.1)
            await store.append(task, [progress(version)], version)
        await store.append(task, [new(ev.TaskCompleted())], 20)
        for client in clients:
            assert await asyncio.wait_for(client, 10) == list(range(1, 22))
        assert hub.degraded
        assert hub.polls >= 20  # it read the log all along
        assert counting.stream_reads <= 50 * 3, counting.stream_reads  # history + switches
    finally:
        await hub.stop()
