"""The delivery loop behind every progress socket (WebSocket, multi-task WebSocket, SSE).

History from PostgreSQL, then live messages from the hub, with no gap and no duplicate between
the two: subscribe first, then read history, then drop every live message whose `seq` was sent
already. A live message beyond the next expected `seq` means something was missed (a relay that
published out of log order, a Redis reconnect): the missing events are read from PostgreSQL.
When the hub marks the subscription stale (queue overflow, a switch between Redis and the hub's
own reading of the log while Redis is down) the loop reads PostgreSQL until it has caught up.

The parts: a follower per kind of subscription knows what the socket follows and what it has
sent (`TaskFollower` for one or several named tasks, `TenantFollower` for every task of a
tenant); `progress_stream` is the one delivery loop that drives either, with `_Pace` keeping its
heartbeat and idle clocks and `_DegradedCount` its share of the degraded-sockets gauge.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from api.metrics import StreamMetrics
from domain.indicators import is_task_stream
from domain.log import LOG_START
from domain.progress import (
    TERMINAL_EVENT_TYPES,
    connected_message,
    heartbeat_message,
    progress_message,
)
from infrastructure.event_store import EventStore
from infrastructure.hub import (
    LiveMessage,
    ProgressHub,
    Subscription,
    live_message,
    task_channel,
    tenant_channel,
)
from infrastructure.relay import published_up_to
from infrastructure.settings import Settings

log = logging.getLogger(__name__)

HISTORY_PAGE = 500


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for the client: `seq` is set for events (SSE uses it as the event id)."""

    text: str
    kind: str = "event"  # "event", "heartbeat" or "connected"
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str
    finished: bool = False  # the socket's tasks have ended: the close may wait its turn


@dataclass
class Follow:
    """What a socket follows: some tasks (after a seq each), or every task of a tenant."""

    task_ids: list[str]
    after: dict[str, int] = field(default_factory=dict)
    tenant: str | None = None


class TaskFollower:
    """A socket on one or several named tasks: each task's events after the client's `after`,
    each once and in order, until every one of them has sent its terminal event."""

    ends_with_tasks = True  # the socket closes once each named task has ended
    # Thousands are open at once, mostly idle: no per-instance __dict__.
    __slots__ = ("finished", "follow", "sent", "store")

    def __init__(self, store: EventStore, follow: Follow) -> None:
        self.store, self.follow = store, follow
        # The last seq sent per task: the named ones, and for a tenant socket the others seen.
        self.sent = {task_id: follow.after.get(task_id, 0) for task_id in follow.task_ids}
        # Tasks whose terminal event went out; tracked only when the socket ends with its tasks.
        self.finished: set[str] = set()

    def channels(self) -> list[str]:
        return [task_channel(task_id) for task_id in self.follow.task_ids]

    def connected(self) -> Outgoing:
        first = max(self.sent.values(), default=0)
        hello = connected_message(self.follow.task_ids, datetime.now(UTC), after=first)
        return Outgoing(json.dumps(hello), "connected")

    def done(self) -> bool:
        return self.finished >= set(self.follow.task_ids)

    async def start(self) -> None:
        """Right after subscribing, before the history is read."""

    async def history(self) -> AsyncIterator[Outgoing]:
        """Each named task's events after what the client has, up to the task's end."""
        for task_id in self.follow.task_ids:
            # A client resuming after the task's last event (it reconnected just as the task
            # ended) would otherwise wait for the idle timeout: nothing newer ever comes, and
            # the terminal event it already has is not read again.
            sent = self.sent[task_id]
            if self.ends_with_tasks and sent and await _ended_at(self.store, task_id, sent):
                self.finished.add(task_id)
            async for out in self.catch_up_task(task_id):
                yield out

    async def catch_up(self) -> AsyncIterator[Outgoing]:
        """After the live path missed something: everything not sent yet, from PostgreSQL."""
        for task_id in self.follow.task_ids:
            async for out in self.catch_up_task(task_id):
                yield out

    async def catch_up_task(self, task_id: str) -> AsyncIterator[Outgoing]:
        """Everything after what was sent, from PostgreSQL, up to the task's end."""
        while task_id not in self.finished:
            page = await self.store.read_stream(task_id, self.sent[task_id], limit=HISTORY_PAGE)
            for recorded in page:
                self.sent[task_id] = recorded.version
                yield Outgoing(json.dumps(progress_message(recorded)), seq=recorded.version)
                if self.ends_with_tasks and recorded.type in TERMINAL_EVENT_TYPES:
                    self.finished.add(task_id)
                    return
            if len(page) < HISTORY_PAGE:
                return

    async def deliver(self, message: LiveMessage) -> AsyncIterator[Outgoing]:
        """One event, from Redis or read from the log: sent once, in order, gaps filled."""
        task_id = message.task_id
        if not self.knows(message):
            return
        if task_id in self.finished or message.seq <= self.sent[task_id]:
            return  # sent already (history, a gap fill, or a duplicate publish)
        if message.seq > self.sent[task_id] + 1:
            async for out in self.catch_up_task(task_id):  # fills the gap, this message included
                yield out
            return
        self.sent[task_id] = message.seq
        if self.ends_with_tasks and message.terminal:
            self.finished.add(task_id)
        yield Outgoing(message.text, seq=message.seq)

    def knows(self, message: LiveMessage) -> bool:
        """Whether the message's task is one this socket sends."""
        return message.task_id in self.sent

    async def at_heartbeat(self, sub: Subscription, confirmed: bool) -> None:
        """Called after each heartbeat went out; `confirmed`: Redis has the subscription."""


class TenantFollower(TaskFollower):
    """A socket on every task of a tenant (and on the tasks its URL names). It never ends with
    a task: it passes on what comes after a task's end too (an analyst's review).

    Its catch-up reads the log itself from `log_mark`, filtered by tenant: reading each task it
    knows would miss the tasks it has not seen yet (their first events were in the dropped
    queue) and cost a query per task ever seen."""

    ends_with_tasks = False
    __slots__ = ("log_mark", "partitions", "published_then", "relay_name", "tenant")

    def __init__(self, store: EventStore, settings: Settings, follow: Follow, tenant: str) -> None:
        super().__init__(store, follow)
        self.tenant = tenant
        self.relay_name, self.partitions = settings.relay_name, settings.relay_partitions
        self.log_mark = LOG_START  # everything up to here went out
        self.published_then = LOG_START  # the relay's checkpoint at the previous heartbeat

    def channels(self) -> list[str]:
        return [*super().channels(), tenant_channel(self.tenant)]

    def done(self) -> bool:
        return False

    async def start(self) -> None:
        # From now on: what commits past this point either reaches us live or is read back by
        # catch_up_tenant.
        self.log_mark = await self.store.log_end()

    async def catch_up(self) -> AsyncIterator[Outgoing]:
        async for out in super().catch_up():
            yield out
        async for out in self.catch_up_tenant():
            yield out

    async def catch_up_tenant(self) -> AsyncIterator[Outgoing]:
        """The tenant's events past `log_mark`, from the log itself."""
        while batch := await self.store.read_all(self.log_mark, limit=HISTORY_PAGE, tolerant=True):
            for recorded in batch:
                # A tenant's indicator events are not task progress (domain.indicators).
                if recorded.metadata.tenant == self.tenant and is_task_stream(recorded.stream_id):
                    async for out in self.deliver(live_message(recorded)):
                        yield out
            self.log_mark = batch[-1].cursor
            if len(batch) < HISTORY_PAGE:
                return

    def knows(self, message: LiveMessage) -> bool:
        if message.task_id not in self.sent:
            # A tenant's new task: from here on. The tasks named in the URL are never forgotten.
            _remember(self.sent, message.task_id, message.seq - 1, keep=self.follow.task_ids)
        return True

    async def at_heartbeat(self, sub: Subscription, confirmed: bool) -> None:
        """When nothing waits in the queue, nothing was dropped and Redis has the subscription:
        what the relay had published by the previous heartbeat has reached this socket already
        (a heartbeat is ample time for Redis to deliver), so catch_up_tenant need not read it
        again. Without this, a tenant socket open for hours would read hours of the log at its
        next overflow. (Unconfirmed, what went by reached nobody: the confirmation marks the
        socket stale, and the read from `log_mark` then has to cover it.)"""
        if confirmed and not len(sub) and not sub.stale:
            self.log_mark = max(self.log_mark, self.published_then)
        self.published_then = await published_up_to(self.store, self.relay_name, self.partitions)


def follower_for(store: EventStore, settings: Settings, follow: Follow) -> TaskFollower:
    if follow.tenant is None:
        return TaskFollower(store, follow)
    return TenantFollower(store, settings, follow, follow.tenant)


class _Pace:
    """The live loop's clocks: a heartbeat every `heartbeat_s`, and an idle timeout `idle_s`
    after the last event sent."""

    __slots__ = ("heartbeat_s", "idle_s", "last_event", "next_heartbeat")

    def __init__(self, heartbeat_s: float, idle_s: float) -> None:
        self.heartbeat_s, self.idle_s = heartbeat_s, idle_s
        self.last_event = time.monotonic()
        self.next_heartbeat = self.last_event + heartbeat_s

    def event_sent(self) -> None:
        self.last_event = time.monotonic()

    def idle(self, now: float) -> bool:
        return now >= self.last_event + self.idle_s

    def heartbeat_due(self, now: float) -> bool:
        return now >= self.next_heartbeat

    def heartbeat_sent(self, now: float) -> None:
        self.next_heartbeat = now + self.heartbeat_s

    def wait(self, now: float) -> float:
        """How long to wait for a live message before the next heartbeat or the timeout."""
        return min(self.next_heartbeat, self.last_event + self.idle_s) - now


class _DegradedCount:
    """This socket's share of `degraded_sockets`: counted while the hub reads the log itself
    instead of Redis (logged once per process, by the hub)."""

    __slots__ = ("_counted", "_gauge")

    def __init__(self, metrics: StreamMetrics) -> None:
        self._gauge = metrics.degraded_sockets
        self._counted = False

    def follow(self, degraded: bool) -> None:
        if degraded != self._counted:
            self._counted = degraded
            self._gauge.inc() if degraded else self._gauge.dec()

    def release(self) -> None:
        if self._counted:
            self._gauge.dec()


_FINISHED = Close(1000, "task finished", finished=True)


async def progress_stream(
    store: EventStore,
    hub: ProgressHub,
    settings: Settings,
    metrics: StreamMetrics,
    follow: Follow,
) -> AsyncGenerator[Outgoing | Close, None]:
    """`connected` once subscribed, the history, then live events until the follower is done,
    the socket is idle too long, or the api shuts down; each event once and in order."""
    follower = follower_for(store, settings, follow)
    sub = await hub.subscribe(follower.channels())  # before the history: nothing falls between
    degraded = _DegradedCount(metrics)
    try:
        sub.take_stale()  # the history read below covers whatever was missed so far
        await follower.start()
        # Only now: a client takes `connected` as its cue (to submit, to tell its user it is
        # following), and whatever commits from here on reaches this socket live or from the
        # log. Sent earlier, a tenant socket could miss a new task's first events.
        yield follower.connected()
        async for out in follower.history():
            yield out
        if follower.done():
            yield _FINISHED
            return
        async for item in _live(follower, sub, hub, settings, metrics, degraded):
            yield item
    finally:
        hub.unsubscribe(sub)
        degraded.release()


async def _live(
    follower: TaskFollower,
    sub: Subscription,
    hub: ProgressHub,
    settings: Settings,
    metrics: StreamMetrics,
    degraded: _DegradedCount,
) -> AsyncIterator[Outgoing | Close]:
    """The live part: messages from the hub, a read of PostgreSQL whenever the hub marks the
    subscription stale, heartbeats, and the reasons to close. Each message goes through here
    with no generator of its own in between: this is the loop that runs per event per socket."""
    pace = _Pace(settings.ws_heartbeat_s, settings.ws_idle_timeout_s)
    while True:
        if follower.done():
            yield _FINISHED
            return
        if hub.draining:
            # The api is shutting down (api.cli._DrainingServer): 1001 "going away" tells the
            # client to reconnect, to another replica, and resume with `after`.
            yield Close(1001, "server shutting down")
            return
        degraded.follow(hub.degraded)
        if sub.take_stale():
            async for out in _catch_up(follower, sub, metrics):
                pace.event_sent()
                yield out
            continue  # closes at once if that read reached the end
        now = time.monotonic()
        if pace.idle(now):
            yield Close(1000, "idle timeout")
            return
        if pace.heartbeat_due(now):
            yield Outgoing(json.dumps(heartbeat_message(datetime.now(UTC))), "heartbeat")
            pace.heartbeat_sent(now)
            await follower.at_heartbeat(sub, hub.confirmed(sub))
        message = await sub.get(pace.wait(now))
        if message is None:
            continue
        delivered = False
        async for out in follower.deliver(message):
            delivered = True
            yield out
        if delivered:
            pace.event_sent()  # the idle clock restarts once the event is sent


async def _catch_up(
    follower: TaskFollower, sub: Subscription, metrics: StreamMetrics
) -> AsyncIterator[Outgoing]:
    """After the hub marked the subscription stale: count its overflows, read PostgreSQL."""
    if sub.overflows:
        metrics.overflows.inc(sub.overflows)
        sub.overflows = 0
    async for out in follower.catch_up():
        yield out


# A tenant socket remembers the last seq it sent for this many tasks; the oldest are forgotten
# (memory stays bounded on a socket open for days). A forgotten task that speaks again is
# followed from its new event on, like a task never seen.
TENANT_TASKS_REMEMBERED = 10_000


def _remember(sent: dict[str, int], task_id: str, seq: int, keep: list[str]) -> None:
    sent[task_id] = seq
    if len(sent) > TENANT_TASKS_REMEMBERED:
        oldest = next(t for t in sent if t not in keep)  # dicts keep insertion order
        del sent[oldest]


async def _ended_at(store: EventStore, task_id: str, version: int) -> bool:
    """Whether the task's event at `version` ends its stream."""
    page = await store.read_stream(task_id, version - 1, limit=1)
    return bool(page) and page[0].version == version and page[0].type in TERMINAL_EVENT_TYPES
