"""The log's doorbell: how an idle relay learns, within milliseconds, that a task's event was
committed, without probing PostgreSQL hundreds of times a second while nothing happens.

A process that appends to a task's stream (the api, a worker) rings after the commit: one
PUBLISH on the deployment's doorbell channel, at most once per `RING_INTERVAL_S` per process.
The relay probes the log every `relay_poll_s` while events flow ("warm"); after
`relay_warm_s` without one it goes cold and waits for the doorbell instead, probing only every
`relay_idle_probe_s` as a safety net. A ring is only a hint: the log stays the truth, the
probe decides what is published, and a lost ring (Redis away, a skipped ring) costs at most one
idle-probe interval.

Why skipping rings is safe: a ring is skipped only within `RING_INTERVAL_S` of the same
process's last ring, and a ring keeps the relay warm for `relay_warm_s`, which must be longer
(settings check it). So an unrung commit always finds a warm relay, probing every few ms.

Why not PostgreSQL's NOTIFY: it serialises every committing transaction that notifies on one
cluster-wide lock (a trigger doing it per append halved the 8-writer append rate here), while a
PUBLISH after the commit costs the writer a fraction of a millisecond, off the transaction, and
at most ten times a second. A forged ring (anyone who can publish on this Redis) only makes the
relay probe once: it carries nothing, so it is not signed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from infrastructure.hub import PubSubSeal
from infrastructure.settings import Settings

log = logging.getLogger(__name__)

DOORBELL_CHANNEL = "log_doorbell"  # on Redis, SCAMTRAIL_CHANNEL_PREFIX comes before it
RING_INTERVAL_S = 0.1


class Doorbell:
    """The writer's side: `ring()` after a commit. Never waits and never raises: the PUBLISH
    runs as a task, and a failure is logged at debug level (the relay's idle probe covers it)."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self._redis = redis
        self._channel = PubSubSeal(settings).wire(DOORBELL_CHANNEL)
        self._rung_at = -RING_INTERVAL_S
        self._pending: set[asyncio.Task[None]] = set()

    def ring(self) -> None:
        now = time.monotonic()
        if now - self._rung_at < RING_INTERVAL_S:
            return
        self._rung_at = now
        task = asyncio.create_task(self._publish(), name="log-doorbell")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self) -> None:
        try:
            await self._redis.publish(self._channel, b"")
        except (RedisError, OSError) as error:
            log.debug("log doorbell: PUBLISH failed (%r); the relay's idle probe covers it", error)

    async def aclose(self) -> None:
        """Let the rings in flight finish (a process that stops right after its last append)."""
        if self._pending:
            await asyncio.wait(self._pending, timeout=1)


class DoorbellListener:
    """The relay's side: `wait(seconds)` returns True when rung, False after `seconds`. Without
    Redis it simply waits out the timeout and tries to subscribe again next time."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self._redis = redis
        self._channel = PubSubSeal(settings).wire(DOORBELL_CHANNEL)
        self._pubsub: PubSub | None = None

    async def wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        try:
            pubsub = await self._subscribed()
            while (left := deadline - time.monotonic()) > 0:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
                if message is not None:
                    await self._drain(pubsub)
                    return True
            return False
        except (RedisError, OSError) as error:
            log.debug("log doorbell: listening failed (%r); probing on a timer meanwhile", error)
            await self._reset()
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            return False

    async def _subscribed(self) -> PubSub:
        if self._pubsub is None:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
            except BaseException:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise
            self._pubsub = pubsub
        return self._pubsub

    @staticmethod
    async def _drain(pubsub: PubSub) -> None:
        """Rings that came together are one wake-up."""
        while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0) is not None:
            pass

    async def _reset(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        await self._reset()
