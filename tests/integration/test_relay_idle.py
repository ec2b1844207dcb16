"""Quiet when idle (infrastructure/doorbell.py): a relay with nothing to publish stops probing
PostgreSQL every few milliseconds and waits for the log's doorbell, which a task's append rings
after its commit; a lost ring costs one idle-probe interval, never an event."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from infrastructure.doorbell import Doorbell
from infrastructure.event_store import EventStore
from infrastructure.relay import Relay
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from tests.factories import progress, submitted
from tests.integration.test_relay import Listener, relay_settings, running
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
