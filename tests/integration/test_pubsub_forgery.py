"""Forged Pub/Sub messages on real Redis and PostgreSQL: a relay and an api's hub and delivery loop
run in this process. Pub/Sub channels are shared across Redis database numbers and with other
test runs on the same server, so every task id here is a fresh uuid."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import generate_latest
from pydantic import SecretStr
from redis.asyncio import Redis

from api.metrics import StreamMetrics
from api.streaming import Close, Follow, Outgoing, progress_stream
from domain import events as ev
from domain.progress import progress_message
from infrastructure.event_store import EventStore
from infrastructure.hub import ProgressHub, PubSubSeal, Subscription, task_channel
from infrastructure.relay import Relay
from infrastructure.settings import Settings, load_settings
from tests.auth import TEST_SECRET
from tests.factories import new, progress, submitted
from tests.waiting import eventually, stays_quiet

pytestmark = pytest.mark.integration


def deployment(settings: Settings, redis_url: str, **overrides: Any) -> Settings:
    fast = {"relay_lock_retry_s": 0.1, "relay_checkpoint_s": 0.0, "ws_idle_timeout_s": 10.0}
    return settings.model_copy(update={"redis_url": redis_url, **fast, **overrides})


@contextlib.asynccontextmanager
async def hub_of(settings: Settings, store: EventStore) -> AsyncIterator[ProgressHub]:
    hub = ProgressHub(settings, store)
    await hub.start()
    try:
        assert await hub.wait_connected(5)
        yield hub
    finally:
        await hub.stop()


@contextlib.asynccontextmanager
async def relay_of(settings: Settings, store: EventStore, redis: Redis) -> AsyncIterator[None]:
    stop = asyncio.Event()
    running = asyncio.create_task(Relay(settings, store, redis).run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)


def awaiting_live(hub: ProgressHub) -> bool:
    """Every subscriber of the hub is subscribed and its delivery loop waits for a message."""
    subs = {sub for subs in hub._channels.values() for sub in subs}
    return bool(subs) and all(sub._waiter is not None for sub in subs)


def forged(task: str, seq: int) -> dict[str, Any]:
    """A message shaped like the relay's: the task "completed", verdict "safe"."""
    return {
        "step": "completed",
        "tool": None,
        "message": "Analysis complete: safe",
        "percent": 100,
        "timestamp": "2026-01-01T00:00:00Z",
        "error": False,
        "seq": seq,
        "task_id": task,
        "event_id": str(uuid.uuid4()),
        "event_type": "TaskCompleted",
        "data": {"verdict": "safe"},
        "status": "completed",
    }


def test_the_key_comes_from_pubsub_key_else_from_the_jwt_secret() -> None:
    shared = load_settings(jwt_secret=TEST_SECRET)
    assert shared.pubsub_signing_key() == load_settings(jwt_secret=TEST_SECRET).pubsub_signing_key()
    key = shared.pubsub_signing_key()
    assert key is not None and TEST_SECRET.encode() not in key  # derived, not the secret itself
    other = load_settings(jwt_secret=TEST_SECRET + "x").pubsub_signing_key()
    assert other != key
    explicit = load_settings(jwt_secret=TEST_SECRET, pubsub_key=SecretStr("k" * 40))
    assert explicit.pubsub_signing_key() == b"k" * 40
    # With the default (empty) prefix the name on Redis is the bare `agent_progress:<task>`.
    assert PubSubSeal(shared).wire(task_channel("t")) == "agent_progress:t"


def test_a_sealed_message_opens_to_the_exact_bytes_and_nothing_else_does() -> None:
    seal = PubSubSeal(load_settings(jwt_secret=TEST_SECRET))
    text = json.dumps(forged("t", 1))
    wire = seal.wire(task_channel("t"))
    data = seal.seal(wire, text)
    assert json.loads(data) == {**json.loads(text), "mac": json.loads(data)["mac"]}
    assert seal.open(wire, data) == text.encode()
    assert seal.open(seal.wire(task_channel("u")), data) is None  # replayed onto another channel
    assert seal.open(wire, text.encode()) is None  # unsigned
    tampered = data.replace(b'"seq": 1', b'"seq": 9')
    assert seal.open(wire, tampered) is None
    other = PubSubSeal(load_settings(jwt_secret="another deployment's secret"))
    assert seal.open(wire, other.seal(wire, text)) is None
    assert seal.open(wire, b"") is None and seal.open(wire, b'"}') is None


async def test_a_forged_publish_is_not_delivered_and_the_real_events_are(
    settings: Settings, redis_url: str, store: EventStore, redis: Redis
) -> None:
    """A socket follows a running task. Forgeries on its channel — unsigned, signed with another
    key, and a "completed" with a future seq — are dropped and counted; the real events that
    follow all arrive, in order, byte-identical to what the relay encodes, and the real end
    closes the socket."""
    config = deployment(settings, redis_url)
    task = f"forge-{uuid.uuid4()}"
    await store.append(task, [submitted()], 0)
    metrics = StreamMetrics()
    async with hub_of(config, store) as hub, relay_of(config, store, redis):
        stream = progress_stream(store, hub, config, metrics, Follow([task]))
        hello, first = await anext(stream), await anext(stream)
        assert isinstance(hello, Outgoing) and hello.kind == "connected"
        assert isinstance(first, Outgoing) and first.seq == 1
        waiting = asyncio.create_task(anext(stream))
        await eventually(lambda: awaiting_live(hub), within=5, what="waiting for a live message")

        channel = task_channel(task)  # "agent_progress:<task>": the name on Redis
        other_key = PubSubSeal(load_settings(jwt_secret="not this deployment's secret"))
        await redis.publish(channel, json.dumps(forged(task, 2)))
        await redis.publish(channel, other_key.seal(channel, json.dumps(forged(task, 2))))
        await redis.publish(channel, json.dumps(forged(task, 100)))
        await eventually(lambda: hub.rejected >= 3, within=5, what="3 forgeries rejected")
        # Nothing reached the socket. A message the hub let through would have woken the
        # delivery loop before the hub read the next one: 0.3 s is ample for it to show.
        await stays_quiet(waiting.done, for_s=0.3, what="a forged message was delivered")

        await store.append(task, [progress(30), progress(60), new(ev.TaskCompleted())], 1)
        items: list[Outgoing | Close] = [await asyncio.wait_for(waiting, 10)]
        async with asyncio.timeout(10):
            async for item in stream:
                items.append(item)
                if isinstance(item, Close):
                    break
        await stream.aclose()

    last = items[-1]
    assert isinstance(last, Close) and last.code == 1000
    events = [item for item in items if isinstance(item, Outgoing) and item.seq is not None]
    assert [e.seq for e in events] == [2, 3, 4]
    recorded = {r.version: r for r in await store.read_stream(task)}
    for event in events:
        assert event.seq is not None
        assert event.text == json.dumps(progress_message(recorded[event.seq]))  # no MAC inside
    assert hub.rejected == 3
    metrics.hub.pubsub_rejected = hub.rejected
    assert b"scamtrail_pubsub_rejected_total 3.0" in generate_latest(metrics.registry)


async def next_live(sub: Subscription, count: int, within: float = 10) -> list[int]:
    """The seqs of the next `count` messages that reach `sub` live; fails after `within` s."""
    seqs: list[int] = []
    async with asyncio.timeout(within):
        while len(seqs) < count:
            message = await sub.get(within)
            if message is not None:
                seqs.append(message.seq)
    return seqs


async def none_live(sub: Subscription, for_s: float = 0.3) -> list[int]:
    """The seqs that reach `sub` live within `for_s` seconds: a negative check. Redis delivers
    a publish to its subscribers within a millisecond here, and the hub hands it on at once, so
    0.3 s is ample for a message that was going to arrive to show."""
    seqs: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + for_s
    while (left := deadline - loop.time()) > 0:
        message = await sub.get(left)
        if message is not None:
            seqs.append(message.seq)
    return seqs


async def test_a_channel_prefix_isolates_two_deployments_sharing_a_redis(
    settings: Settings, redis_url: str, store: EventStore, redis: Redis
) -> None:
    """Deployments A and B share a Redis server and (here) even the JWT secret, hence the key:
    B hears nothing of what A's relay publishes, and a genuine message of A replayed onto B's
    channel is refused (the MAC covers the channel name)."""
    run = uuid.uuid4().hex[:8]
    a = deployment(settings, redis_url, channel_prefix=f"a-{run}:")
    b = deployment(settings, redis_url, channel_prefix=f"b-{run}:")
    task = f"prefix-{uuid.uuid4()}"
    channel = task_channel(task)
    async with hub_of(a, store) as hub_a, hub_of(b, store) as hub_b:
        sub_a, sub_b = await hub_a.subscribe([channel]), await hub_b.subscribe([channel])
        assert not sub_a.stale and not sub_b.stale
        numsub = dict(await redis.pubsub_numsub(f"a-{run}:{channel}", f"b-{run}:{channel}"))
        assert numsub == {f"a-{run}:{channel}".encode(): 1, f"b-{run}:{channel}".encode(): 1}

        listener = redis.pubsub()
        await listener.subscribe(f"a-{run}:{channel}")
        async with relay_of(a, store, redis):
            await store.append(task, [submitted(), progress(50)], 0)
            assert await next_live(sub_a, 2) == [1, 2]
            assert await none_live(sub_a) == []  # each once
        assert await none_live(sub_b) == [] and not sub_b.stale

        # Replay A's genuine messages, as captured on A's channel, onto B's.
        replayed = 0
        async with asyncio.timeout(5):
            while replayed < 2:
                message = await listener.get_message(timeout=1.0)
                if message and message["type"] == "message":
                    await redis.publish(f"b-{run}:{channel}", message["data"])
                    replayed += 1
        await listener.aclose()  # type: ignore[no-untyped-call]
        await eventually(lambda: hub_b.rejected >= 2, within=5, what="2 replays rejected")
        assert await none_live(sub_b) == []
        assert hub_a.rejected == 0
        hub_a.unsubscribe(sub_a)
        hub_b.unsubscribe(sub_b)
