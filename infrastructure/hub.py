"""ProgressHub: ONE Redis Pub/Sub connection per process (on a Redis Cluster, one per shard:
infrastructure/progress_bus.py), fanned out to many subscribers.

A channel is subscribed in Redis when its first subscriber arrives and unsubscribed when its last
leaves. Each subscriber (a WebSocket or SSE client) gets a bounded queue. When the queue is full
the subscriber is marked *stale* and the hub stops queueing for it: its delivery loop then reads
PostgreSQL (the record) until it has caught up, so a slow client costs at most `capacity`
messages of memory and never loses an event.

When Redis goes away, the hub is *degraded*: it reconnects with backoff and re-subscribes every
channel, and meanwhile it reads the log itself, once every `ws_poll_s` for the whole process,
and hands each new event to its channels' subscribers as the relay would have: a process with
5,000 sockets makes 4 queries a second, not 20,000. Subscribers are marked stale when the live
path breaks, when the hub's own reading starts, and when Redis is back (subscriptions
confirmed): each time each one reads PostgreSQL once, for what fell between the two paths.

Authenticity. Anyone who can PUBLISH on the Redis server (any database number: Pub/Sub ignores
them) could otherwise tell a socket that a running task completed "safe". So the relay signs
every message with an HMAC-SHA256 under `Settings.pubsub_signing_key` (a key only relays and
api processes hold), and the hub drops, counts (`rejected`, scamtrail_pubsub_rejected_total) and
logs at most once a minute every message that fails. The MAC covers the Redis channel name as
well as the message, so a genuine message replayed onto another channel (another tenant's, or
another deployment's sharing the key) fails too. Replays on the same channel are duplicates,
which delivery drops by `seq`. Clients never see the MAC: the hub passes on the exact bytes the
relay signed.

The envelope is the message itself with one more member, `"mac"`, as its last: the relay turns
`{...}` into `{..., "mac": "<64 hex digits>"}`. Anything that reads the channels as JSON (redis-cli,
the relay's tests, the benchmarks) still reads the same object with the same members; the hub
cuts the fixed-length tail back off to get the exact signed bytes, with no re-encoding (a JSON
round trip need not give the same bytes back). A `<mac>.<json>` prefix or a wrapper object
around the message as a string would have changed what every such reader sees.

Channel names are the logical ones of `task_channel` / `tenant_channel` everywhere but on the
Redis connection, where `Settings.channel_prefix` goes in front (empty by default: the names on
Redis stay `agent_progress:{task_id}` and `tenant_progress:{tenant}`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import uuid
from collections import deque
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.indicators import is_task_stream
from domain.log import LogCursor, RecordedEvent
from domain.progress import TERMINAL_EVENT_TYPES, progress_message
from infrastructure.event_store import EventStore
from infrastructure.outage import POSTGRES_ERRORS, Backoff, OutageLog, Throttled
from infrastructure.progress_bus import ChannelSubscriber, ProgressBus
from infrastructure.redis_client import create_redis
from infrastructure.settings import Settings

log = logging.getLogger(__name__)

# How long a new subscriber waits for Redis to confirm its SUBSCRIBE before it falls back to
# reading PostgreSQL: short, because a client is waiting for its history meanwhile.
SUBSCRIBE_TIMEOUT_S = 2.0
_REDIS_ERRORS = (RedisError, OSError, TimeoutError)
POLL_BATCH = 500  # events per read of the log while degraded


def task_channel(task_id: str) -> str:
    return f"agent_progress:{task_id}"  # on Redis, SCAMTRAIL_CHANNEL_PREFIX comes before it


def tenant_channel(tenant: str) -> str:
    return f"tenant_progress:{tenant}"


# The tail the relay adds to a message: `, "mac": "` + 64 hex digits + `"}` in place of `}`.
_MAC_HEAD = b', "mac": "'
_MAC_HEX = 64  # HMAC-SHA256
_MAC_TAIL = len(_MAC_HEAD) + _MAC_HEX + 2
# A key anyone can derive: used only when neither pubsub_key nor jwt_secret is set.
_PUBLIC_KEY = hashlib.sha256(b"scamtrail pubsub: no key configured").digest()


class PubSubSeal:
    """Signs (relay) and checks (hub) Pub/Sub messages, and puts the deployment's prefix on
    channel names. See the module docstring for the envelope."""

    __slots__ = ("_key", "prefix")

    def __init__(self, settings: Settings) -> None:
        key = settings.pubsub_signing_key()
        if key is None:
            log.warning(
                "neither SCAMTRAIL_PUBSUB_KEY nor SCAMTRAIL_JWT_SECRET is set: progress messages"
                " on Redis are signed with a public key, so anyone who can PUBLISH on the Redis"
                " server can forge them; set SCAMTRAIL_PUBSUB_KEY on every api and relay"
            )
            key = _PUBLIC_KEY
        self._key = key
        self.prefix = settings.channel_prefix

    def wire(self, channel: str) -> str:
        """The name on Redis of a logical channel (`task_channel`, `tenant_channel`)."""
        return self.prefix + channel

    def logical(self, wire: str) -> str | None:
        """The logical channel of a name on Redis; None for one outside this deployment."""
        return wire[len(self.prefix) :] if wire.startswith(self.prefix) else None

    def _mac(self, wire: str, body: bytes) -> bytes:
        name = wire.encode()
        signed = b"%d:%s%s" % (len(name), name, body)  # length-prefixed: no ambiguity
        return hmac.new(self._key, signed, hashlib.sha256).hexdigest().encode()

    def seal(self, wire: str, text: str) -> bytes:
        """`text` (a JSON object) as published on `wire`: with the MAC as its last member."""
        body = text.encode()
        if not body.endswith(b"}"):
            raise ValueError("only a JSON object can be sealed")
        return body[:-1] + _MAC_HEAD + self._mac(wire, body) + b'"}'

    def open(self, wire: str, data: bytes) -> bytes | None:
        """The exact bytes the relay signed, or None if `data` is not sealed with our key for
        `wire` (forged, from another deployment, replayed from another channel, malformed)."""
        if len(data) <= _MAC_TAIL or not data.endswith(b'"}'):
            return None
        if data[-_MAC_TAIL : -_MAC_TAIL + len(_MAC_HEAD)] != _MAC_HEAD:
            return None
        body = data[:-_MAC_TAIL] + b"}"
        if not hmac.compare_digest(data[-_MAC_HEX - 2 : -2], self._mac(wire, body)):
            return None
        return body


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """A wire-format message as published by the relay: parsed once per process, not per socket."""

    task_id: str
    seq: int
    text: str
    terminal: bool  # the task's stream ends with this message


def live_message(recorded: RecordedEvent) -> LiveMessage:
    """An event read from the log as the message the relay publishes for it."""
    text = json.dumps(progress_message(recorded))
    terminal = recorded.type in TERMINAL_EVENT_TYPES
    return LiveMessage(recorded.stream_id, recorded.version, text, terminal)


class Subscription:
    """One subscriber's bounded queue. Only the hub puts; only its delivery loop takes.

    Thousands of these live at once, mostly idle, so an idle one holds no queue and no waiting
    machinery: the deque is made at the first message (an empty deque is ~600 bytes), and the
    delivery loop waits on a bare future with a timer rather than an asyncio.Event (another
    deque) inside asyncio.timeout."""

    __slots__ = ("_capacity", "_dropping", "_items", "_stale", "_waiter", "channels", "overflows")

    def __init__(self, channels: Iterable[str], capacity: int) -> None:
        self.channels = tuple(dict.fromkeys(channels))
        self._capacity = capacity
        self._items: deque[LiveMessage] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._stale = False
        self._dropping = False
        self.overflows = 0

    def offer(self, message: LiveMessage) -> None:
        if self._dropping:
            return
        if self._items is None:
            self._items = deque()
        if len(self._items) >= self._capacity:
            self.overflows += 1
            self._dropping = True
            self._items.clear()  # all of it will be read from PostgreSQL instead
            self.mark_stale()
            return
        self._items.append(message)
        self._wake()

    def mark_stale(self) -> None:
        self._stale = True
        self._wake()

    @property
    def stale(self) -> bool:
        return self._stale

    def take_stale(self) -> bool:
        """True once after the live path missed something: read PostgreSQL now. What was queued
        is dropped: it was published, hence committed, so that read returns it."""
        if not self._stale:
            return False
        self._stale, self._dropping = False, False
        if self._items:
            self._items.clear()
        return True

    async def get(self, within: float) -> LiveMessage | None:
        """The next live message, or None after `within` seconds or when marked stale."""
        if not self._items and not self._stale:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(max(within, 0), _wake_up, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self._stale or not self._items:
            return None
        return self._items.popleft()

    def _wake(self) -> None:
        _wake_up(self._waiter)

    def __len__(self) -> int:
        return len(self._items) if self._items else 0


def _wake_up(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class ProgressHub:
    def __init__(self, settings: Settings, store: EventStore, redis: Redis | None = None) -> None:
        self._settings, self._store = settings, store
        self._redis = redis or create_redis(settings)
        self._owns_redis = redis is None
        self._bus = ProgressBus(settings, self._redis)  # this Redis, or SCAMTRAIL_PUBSUB_URL's
        self._seal = PubSubSeal(settings)
        # Messages dropped for a missing or wrong MAC; a flood of forgeries is one line a minute.
        self._reject = Throttled(
            log,
            "progress hub: dropped a message on %s without a valid MAC (%d so far): someone"
            " else publishes on this Redis server, or a relay has another pubsub key",
        )
        self._control = f"scamtrail:hub:{uuid.uuid4()}"  # keeps the connection subscribed
        self._channels: dict[str, set[Subscription]] = {}
        self._confirmed: set[str] = set()
        self._waiters: dict[str, list[asyncio.Future[bool]]] = {}
        self._pubsub: ChannelSubscriber | None = None
        self._lock = asyncio.Lock()  # one command at a time on the shared connection
        self._reader: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None  # reads the log while Redis is away
        self._stale_on_confirm: set[str] = set()  # see _connect
        self.polls = 0  # reads of the log while degraded (for tests and metrics)
        self._chores: set[asyncio.Task[None]] = set()
        self._outage = OutageLog(log, "progress hub")
        self._connected = asyncio.Event()
        self._closing = False
        self.draining = False  # the process is shutting down: delivery loops close their sockets

    # --- what the delivery loops and metrics see -------------------------------------------

    @property
    def degraded(self) -> bool:
        return self._pubsub is None

    @property
    def subscriber_count(self) -> int:
        return len({sub for subs in self._channels.values() for sub in subs})

    @property
    def channel_count(self) -> int:
        return len(self._channels)

    async def wait_connected(self, within: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._connected.wait()
        return self._connected.is_set()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._run(), name="progress-hub")

    def drain(self) -> None:
        """Ask every delivery loop to close its client now (the api is shutting down): each is
        woken, sees `draining` and closes with 1001 so that its client reconnects to another
        replica. Live delivery keeps working meanwhile; `stop` comes later."""
        self.draining = True
        for sub in {sub for subs in self._channels.values() for sub in subs}:
            sub.mark_stale()

    async def stop(self) -> None:
        self._closing = True
        tasks = [t for t in [self._reader, self._poller, *self._chores] if t is not None]
        for task in tasks:
            task.cancel()
        # redis-py can swallow a cancellation that lands inside a read (the read just returns),
        # so the reader would wait for its next message: closing the connection under it ends
        # the read at once, and `_closing` ends its loop. Never wait forever all the same.
        await self._drop_connection()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=5)
            if stuck:
                log.warning("progress hub: %d task(s) did not stop within 5 s", len(stuck))
        await self._bus.aclose()
        if self._owns_redis:
            await self._redis.aclose()

    # --- subscribe / unsubscribe ---------------------------------------------------------------

    async def subscribe(self, channels: Iterable[str]) -> Subscription:
        """A new subscriber; returns once Redis confirmed every channel, or marked stale.

        The SUBSCRIBE itself is sent by a chore task, not from the caller's: redis-py awaits
        inside its own wait_for, which on Python 3.11 can swallow a cancellation that lands as
        the send completes, and the caller (a socket's delivery loop) must stay cancellable —
        a swallowed cancel would keep a socket streaming past its token's expiry."""
        sub = Subscription(channels, self._settings.ws_queue_size)
        new = []
        for channel in sub.channels:
            subscribers = self._channels.setdefault(channel, set())
            if not subscribers:
                new.append(channel)
            subscribers.add(sub)
        pubsub = self._pubsub
        if pubsub is None:
            sub.mark_stale()  # degraded: the hub reads the log until it reconnects
            return sub
        loop = asyncio.get_running_loop()
        waits = []
        for channel in sub.channels:
            if channel not in self._confirmed:
                future: asyncio.Future[bool] = loop.create_future()
                self._waiters.setdefault(channel, []).append(future)
                waits.append(future)
        if new:
            self._chore(self._send_subscribe(pubsub, new))
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                confirmed = all(await asyncio.gather(*waits))
        except TimeoutError:
            log.warning("progress hub: Redis did not confirm %s in time", sub.channels)
            confirmed = False
            # The read of the log that `mark_stale` below brings covers what committed so far;
            # what is published after it and before Redis takes the SUBSCRIBE reaches nobody.
            # So the late confirmation marks the channel's subscribers stale once more.
            self._stale_on_confirm.update(c for c in sub.channels if c not in self._confirmed)
        except BaseException:
            self.unsubscribe(sub)
            raise
        if not confirmed:
            sub.mark_stale()
        return sub

    def confirmed(self, sub: Subscription) -> bool:
        """Whether Redis has confirmed every channel of `sub`: what is published now reaches it."""
        return all(channel in self._confirmed for channel in sub.channels)

    async def _send_subscribe(self, pubsub: ChannelSubscriber, channels: list[str]) -> None:
        async with self._lock:
            if pubsub is not self._pubsub:
                return  # replaced meanwhile: the new connection subscribes every channel
            wanted = [c for c in channels if c in self._channels]  # some may have gone already
            if not wanted:
                return
            try:
                await pubsub.subscribe(*map(self._seal.wire, wanted))
            except _REDIS_ERRORS as error:
                log.info("progress hub: subscribe failed (%r); the reader reconnects", error)
                self._resolve_waiters(wanted, False)

    def _resolve_waiters(self, channels: Iterable[str], confirmed: bool) -> None:
        for channel in channels:
            for future in self._waiters.pop(channel, []):
                if not future.done():
                    future.set_result(confirmed)

    def _chore(self, work: Coroutine[Any, Any, None]) -> None:
        chore = asyncio.create_task(work)
        self._chores.add(chore)
        chore.add_done_callback(self._chores.discard)

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget `sub` now; channels left without subscribers are unsubscribed in Redis."""
        emptied = []
        for channel in sub.channels:
            subscribers = self._channels.get(channel)
            if subscribers is None:
                continue
            subscribers.discard(sub)
            if not subscribers:
                del self._channels[channel]
                self._confirmed.discard(channel)
                emptied.append(channel)
        self._resolve_waiters(emptied, False)  # nobody is left to wait for them
        if emptied and self._pubsub is not None:
            self._chore(self._unsubscribe(self._pubsub, emptied))

    async def _unsubscribe(self, pubsub: ChannelSubscriber, channels: list[str]) -> None:
        async with self._lock:
            # A subscriber may have come back for a channel while we waited for the lock.
            gone = [c for c in channels if c not in self._channels]
            if gone and pubsub is self._pubsub:
                try:
                    await pubsub.unsubscribe(*map(self._seal.wire, gone))
                except _REDIS_ERRORS as error:
                    log.info("progress hub: unsubscribe failed (%r); the reader reconnects", error)

    # --- the reader: one task per process ---------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(most=self._settings.relay_backoff_max_s)
        while not self._closing:
            try:
                await self._connect()
                self._outage.up("Redis")
                backoff.reset()
                await self._read()
            except _REDIS_ERRORS as error:
                self._outage.down("Redis", error)
            except Exception:  # a bug must not end live delivery for the whole process
                log.exception("progress hub: reader failed; reconnecting")
            if self._closing:
                return
            await self._drop_connection()
            if self._poller is None and not self._closing:
                self._poller = asyncio.create_task(self._poll_log(), name="progress-hub-poll")
            await asyncio.sleep(backoff.next())

    async def _connect(self) -> None:
        pubsub = await self._bus.subscriber()
        channels = [self._control, *self._channels]
        wire = [self._control, *map(self._seal.wire, self._channels)]
        try:
            async with self._lock, asyncio.timeout(SUBSCRIBE_TIMEOUT_S * 2):
                await pubsub.subscribe(*wire)
                pending = set(wire)
                while pending:
                    message = await pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT_S)
                    if message and message["type"] == "subscribe":
                        pending.discard(_text(message["channel"]))
        except BaseException:
            await _close(pubsub)
            raise
        self._pubsub = pubsub
        self._confirmed = set(channels)
        self._connected.set()
        if self._poller is not None:  # live again: the stale marks below cover the switch
            self._poller.cancel()
            self._poller = None
        for sub in {sub for subs in self._channels.values() for sub in subs}:
            sub.mark_stale()  # read what was committed while the live path was down
        # Channels whose subscribers arrived while we reconnected: subscribed now, and their
        # subscribers read PostgreSQL again once Redis confirms (what commits before that
        # moment would otherwise show only as a gap at the next event, or never for the last).
        missed = [c for c in self._channels if c not in self._confirmed]
        # Channels whose last subscriber left while we reconnected.
        gone = [c for c in self._confirmed if c not in self._channels and c != self._control]
        self._confirmed.difference_update(gone)
        if missed:
            self._stale_on_confirm.update(missed)
            async with self._lock:
                await pubsub.subscribe(*map(self._seal.wire, missed))
        if gone:
            self._chore(self._unsubscribe(pubsub, gone))

    async def _read(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        while not self._closing:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            wire = _text(message["channel"])
            kind, channel = message["type"], self._seal.logical(wire)
            if channel is None:
                continue  # the control channel, or not this deployment's
            if kind == "message":
                self._dispatch(channel, wire, message["data"])
            elif kind == "subscribe":
                if channel in self._channels:
                    self._confirmed.add(channel)
                if channel in self._stale_on_confirm:
                    self._stale_on_confirm.discard(channel)
                    for sub in self._channels.get(channel, ()):
                        sub.mark_stale()
                self._resolve_waiters([channel], True)

    def _dispatch(self, channel: str, wire: str, data: bytes) -> None:
        if not self._channels.get(channel):
            return
        signed = self._seal.open(wire, data)
        if signed is None:
            self._reject(wire)
            return
        try:
            body: dict[str, Any] = json.loads(signed)
            terminal = body.get("event_type") in TERMINAL_EVENT_TYPES
            text = signed.decode()
            message = LiveMessage(str(body["task_id"]), int(body["seq"]), text, terminal)
        except (ValueError, KeyError, TypeError) as error:
            log.warning("progress hub: dropped a malformed message on %s: %r", channel, error)
            return
        self._deliver(channel, message)

    @property
    def rejected(self) -> int:
        """Messages dropped for a missing or wrong MAC (for tests and metrics)."""
        return self._reject.count

    def _deliver(self, channel: str, message: LiveMessage) -> None:
        for sub in self._channels.get(channel, ()):
            sub.offer(message)

    # --- degraded: the hub reads the log itself ---------------------------------------------

    async def _poll_log(self) -> None:
        """While Redis is away: read what commits from now on, once per `ws_poll_s` for the
        whole process, and deliver it as the relay would have. Subscribers are marked stale once
        the starting point is known, so each reads PostgreSQL once for what came before it."""
        cursor: LogCursor | None = None
        while True:
            try:
                if cursor is None:
                    cursor = await self._store.log_end()
                    for sub in {sub for subs in self._channels.values() for sub in subs}:
                        sub.mark_stale()
                batch = await self._store.read_all(cursor, limit=POLL_BATCH, tolerant=True)
                self.polls += 1
                self._outage.up("PostgreSQL")
            except POSTGRES_ERRORS as error:
                self._outage.down("PostgreSQL", error)
                batch = []
            except Exception:  # a bug must not end delivery for the whole process either
                log.exception("progress hub: reading the log failed; retrying")
                batch = []
            for recorded in batch:
                self._deliver_recorded(recorded)
            if batch:
                cursor = batch[-1].cursor
            if len(batch) < POLL_BATCH:
                await asyncio.sleep(self._settings.ws_poll_s)

    def _deliver_recorded(self, recorded: RecordedEvent) -> None:
        if not is_task_stream(recorded.stream_id):
            return  # an indicator stream's event: the relay never publishes it either
        task, tenant = task_channel(recorded.stream_id), tenant_channel(recorded.metadata.tenant)
        if not (self._channels.get(task) or self._channels.get(tenant)):
            return  # nobody here follows it: not worth encoding
        message = live_message(recorded)
        self._deliver(task, message)
        self._deliver(tenant, message)

    async def _drop_connection(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self._connected.clear()
        self._confirmed.clear()
        self._stale_on_confirm.clear()  # every subscriber is marked stale below, or already was
        self._resolve_waiters(list(self._waiters), False)
        if pubsub is None:
            return  # still away (a reconnect attempt failed): nothing changed for subscribers
        # The live path just broke: each subscriber reads once what it may have missed. Not at
        # every failed attempt: 5,000 sockets re-reading at every retry would be 2,500 queries/s.
        for sub in {sub for subs in self._channels.values() for sub in subs}:
            sub.mark_stale()
        await _close(pubsub)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _close(pubsub: ChannelSubscriber) -> None:
    try:
        await pubsub.aclose()
    except _REDIS_ERRORS as error:
        log.debug("progress hub: closing the old Pub/Sub connection: %r", error)
