"""Quiet when idle (infrastructure/doorbell.py): a relay with nothing to publish stops probing
PostgreSQL every few milliseconds and waits for the log's doorbell, which a task's append rings
after its commit; a lost ring costs one idle-probe interval, never an event."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from infrastructure.doorbell import Doorbell
from infrastructure.event_store import EventStore
from infrastructure.relay import Relay
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from tests.factories import progress, submitted
from tests.integration.test_relay import Listener, checkpoint, relay_settings, running
from tests.waiting import eventually, stays_quiet

pytestmark = pytest.mark.integration

# Long enough that only the doorbell can explain an event published within the test's patience.
NEVER_S = 60.0


def idle_settings(settings: Settings, **overrides: float) -> Settings:
    """Slow idle probes, and channels of the test's own: whatever else shares the Redis server
    (another test run, a benchmark) rings the doorbell on its own channel, not this relay's
    (Pub/Sub channels ignore the database number)."""
    return relay_settings(
        settings,
        **{"relay_warm_s": 0.3, "relay_idle_probe_s": NEVER_S, **overrides},
        channel_prefix=f"idle-{uuid.uuid4().hex[:8]}:",
    )


def listener_for(redis: Redis, settings: Settings) -> Listener:
    return Listener(redis, f"idle-{uuid.uuid4().hex[:8]}-", settings.channel_prefix)


async def cold(relay: Relay) -> None:
    """Wait until `relay` has gone quiet: its probes stop counting up."""
    await eventually(lambda: relay.active, within=10, what="the relay to take the lock")
    seen = -1

    def settled() -> bool:
        nonlocal seen
        done, seen = relay.probes == seen, relay.probes
        return done

    await eventually(settled, within=10, interval=0.5, what="the relay's probes to stop")


async def test_an_idle_relay_stops_probing_and_the_doorbell_wakes_it(
    store: EventStore, redis: Redis, settings: Settings
) -> None:
    idle = idle_settings(settings)
    listener = listener_for(redis, idle)
    await listener.start()
    relay = Relay(idle, store, redis)
    tasks = TaskLog(store, Doorbell(idle, redis))
    try:
        async with running(relay):
            await cold(relay)
            quiet_from = relay.probes
            await stays_quiet(
                lambda: relay.probes > quiet_from + 1, for_s=1.0, what="a probe while idle"
            )
            # Warm, the relay probes every 5 ms: 200 a second. Cold, a ring wakes it.
            await tasks.append(f"{listener.prefix}a", [submitted()], 0)
            await listener.wait_for(1, within=NEVER_S / 4)
            await cold(relay)
            await tasks.append(f"{listener.prefix}a", [progress(20), progress(40)], 1)
            await listener.wait_for(3, within=NEVER_S / 4)
    finally:
        await listener.stop()
    assert [m["seq"] for m in listener.messages] == [1, 2, 3]


async def test_an_append_that_rings_no_bell_is_published_by_the_idle_probe(
    store: EventStore, redis: Redis, settings: Settings
) -> None:
    """A writer without a doorbell (a one-off command, Redis away at ring time): the idle probe
    finds its event."""
    idle = idle_settings(settings, relay_idle_probe_s=0.3)
    listener = listener_for(redis, idle)
    await listener.start()
    relay = Relay(idle, store, redis)
    try:
        async with running(relay):
            await eventually(lambda: relay.active, within=10, what="the relay to take the lock")
            await store.append(f"{listener.prefix}b", [submitted()], 0)
            await listener.wait_for(1)
    finally:
        await listener.stop()


async def test_a_quiet_relay_stops_at_once(
    store: EventStore, redis: Redis, settings: Settings
) -> None:
    relay = Relay(idle_settings(settings), store, redis)
    async with running(relay) as stop:
        await cold(relay)
        stop.set()
        await eventually(lambda: not relay.active, within=5, what="the relay to stop")


def probed_past(relay: Relay, count: int) -> Callable[[], bool]:
    return lambda: relay.probes > count


def published_total(store: EventStore, total: int) -> Callable[[], Awaitable[bool]]:
    """Whether the relay's checkpoint counts `total` events published."""

    async def counted() -> bool:
        row = await checkpoint(store)
        return row is not None and row[1] == total

    return counted


class CountedReads(EventStore):
    """The relay's reads of the log, counted."""

    reads = 0

    async def read_all(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return await super().read_all(*args, **kwargs)


async def test_a_relay_reads_while_events_flow_and_probes_once_they_stop(
    store: EventStore, redis: Redis, settings: Settings
) -> None:
    """A batch shorter than the relay's batch size is everything readable at that moment: the
    relay reads once more after a pause (events are flowing: a probe first would be a round trip
    more), and once that read finds nothing it goes back to probing (a few µs on an index),
    reading again only when a probe finds more."""
    warm = idle_settings(settings, relay_warm_s=30.0, relay_checkpoint_s=0.05)
    listener = listener_for(redis, warm)
    await listener.start()
    counted = CountedReads(store.engine)
    relay = Relay(warm, counted, redis)
    tasks = TaskLog(store, Doorbell(warm, redis))
    try:
        async with running(relay):
            await eventually(lambda: counted.reads > 0, within=10, what="the relay's first read")
            for version in range(3):
                reads, probes = counted.reads, relay.probes
                events = [submitted()] if version == 0 else [progress(10 * version)]
                await tasks.append(f"{listener.prefix}c", events, version)
                await listener.wait_for(version + 1)
                # Warm, it probes every 5 ms: twenty probes later it has read twice, no more.
                await eventually(probed_past(relay, probes + 20), within=10, what="more probes")
                assert counted.reads == reads + 2, "one read for the event, one finding nothing"
        assert await checkpoint(store) is not None
    finally:
        await listener.stop()


async def test_the_checkpoint_is_saved_when_due_with_no_event_after_it(
    store: EventStore, redis: Redis, settings: Settings
) -> None:
    """Saved `relay_checkpoint_s` after the last save, although nothing more comes: the
    relay's wait for news ends when the checkpoint falls due."""
    warm = idle_settings(settings, relay_warm_s=30.0, relay_checkpoint_s=2.0)
    relay = Relay(warm, store, redis)
    tasks = TaskLog(store, Doorbell(warm, redis))
    stream = f"checkpoint-{uuid.uuid4().hex[:8]}"
    async with running(relay):
        await eventually(lambda: relay.active, within=10, what="the relay to take the lock")
        await tasks.append(stream, [submitted()], 0)
        await eventually(published_total(store, 1), within=10, what="the first checkpoint")
        # The next save is due 2 s after that one: publishing does not bring it forward.
        await tasks.append(stream, [progress(10)], 1)
        await eventually(lambda: relay.published == 2, within=10, what="the event published")
        assert await published_total(store, 1)(), "not saved at once: it was not due"
        await eventually(published_total(store, 2), within=10, what="the checkpoint, once due")


async def test_a_relay_stopped_before_its_checkpoint_was_due_saves_it_on_the_way_out(
    store: EventStore, redis: Redis, settings: Settings
) -> None:
    """Its successor starts from where it stopped, not from the checkpoint before, publishing
    nothing twice."""
    warm = idle_settings(settings, relay_warm_s=30.0, relay_checkpoint_s=NEVER_S)
    relay = Relay(warm, store, redis)
    tasks = TaskLog(store, Doorbell(warm, redis))
    async with running(relay) as stop:
        await eventually(lambda: relay.active, within=10, what="the relay to take the lock")
        await tasks.append(f"checkpoint-{uuid.uuid4().hex[:8]}", [submitted()], 0)
        await eventually(lambda: relay.published == 1, within=10, what="the event published")
        saved = await checkpoint(store)
        assert saved is None or saved[1] == 0, "not due for a minute"
        stop.set()
        await eventually(lambda: not relay.active, within=5, what="the relay to stop")
    saved = await checkpoint(store)
    assert saved is not None and saved[1] == 1
