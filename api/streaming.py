"""The delivery loop behind every progress socket (WebSocket, multi-task WebSocket, SSE).

History from PostgreSQL, then live messages from the hub, with no gap and no duplicate between
the two: subscribe first, then read history, then drop every live message whose `seq` was sent
already. A live message beyond the next expected `seq` means something was missed (a relay that
published out of log order, a Redis reconnect): the missing events are read from PostgreSQL.
When the hub marks the subscription stale (queue overflow, a switch between Redis and the hub's
own reading of the log while Redis is down) the loop reads PostgreSQL until it has caught up.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from api.caller import Caller
from api.metrics import StreamMetrics
from domain.errors import TaskNotFound
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
    live_message,
    task_channel,
    tenant_channel,
)
from infrastructure.relay import published_up_to
from infrastructure.settings import Settings
from infrastructure.task_queries import visible_streams

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


@dataclass
class Follow:
    """What a socket follows: some tasks (after a seq each), or every task of a tenant."""

    task_ids: list[str]
    after: dict[str, int] = field(default_factory=dict)
    tenant: str | None = None

    @property
    def ends_when_finished(self) -> bool:
        return self.tenant is None


async def check_tasks(store: EventStore, caller: Caller, task_ids: list[str]) -> None:
    """TaskNotFound unless the caller may follow every task: its tenant's, and its own for a
    submitter. Anyone else's task is reported as not found, so its existence is not revealed."""
    visible = await visible_streams(
        store.engine, caller.tenant, task_ids, submitted_by=caller.submitted_by
    )
    for task_id in task_ids:
        if task_id not in visible:
            raise TaskNotFound(task_id)


async def progress_stream(
    store: EventStore,
    hub: ProgressHub,
    settings: Settings,
    metrics: StreamMetrics,
    follow: Follow,
) -> AsyncGenerator[Outgoing | Close, None]:
    sent = {task_id: follow.after.get(task_id, 0) for task_id in follow.task_ids}
    # Tasks whose terminal event went out. Only sockets that end with their tasks track them; a
    # tenant socket carries on, and passes on what comes after the end (an analyst's review).
    finished: set[str] = set()
    tracks_ends = follow.ends_when_finished
    channels = [task_channel(t) for t in follow.task_ids]
    if follow.tenant is not None:
        channels.append(tenant_channel(follow.tenant))
    first = max(sent.values(), default=0)
    hello = connected_message(follow.task_ids, datetime.now(UTC), after=first)
    yield Outgoing(json.dumps(hello), "connected")

    async def catch_up(task_id: str) -> AsyncIterator[Outgoing]:
        """Everything after what was sent, from PostgreSQL, up to the task's end."""
        while task_id not in finished:
            page = await store.read_stream(task_id, sent[task_id], limit=HISTORY_PAGE)
            for recorded in page:
                sent[task_id] = recorded.version
                yield Outgoing(json.dumps(progress_message(recorded)), seq=recorded.version)
                if tracks_ends and recorded.type in TERMINAL_EVENT_TYPES:
                    finished.add(task_id)
                    return
            if len(page) < HISTORY_PAGE:
                return

    async def deliver(message: LiveMessage) -> AsyncIterator[Outgoing]:
        """One event, from Redis or read from the log: sent once, in order, gaps filled."""
        task_id = message.task_id
        if task_id not in sent:
            if follow.tenant is None:
                return
            # A tenant's new task: from here on. The tasks named in the URL are never forgotten.
            _remember(sent, task_id, message.seq - 1, keep=follow.task_ids)
        if task_id in finished or message.seq <= sent[task_id]:
            return  # sent already (history, a gap fill, or a duplicate publish)
        if message.seq > sent[task_id] + 1:
            async for out in catch_up(task_id):  # fills the gap, this message included
                yield out
            return
        sent[task_id] = message.seq
        if tracks_ends and message.terminal:
            finished.add(task_id)
        yield Outgoing(message.text, seq=message.seq)

    log_mark = LOG_START  # a tenant socket: everything up to here went out (see catch_up_tenant)
    published_then = LOG_START  # the relay's checkpoint at the previous heartbeat

    async def advance_log_mark() -> None:
        """At a heartbeat, when nothing waits in the queue and nothing was dropped: what the
        relay had published by the previous heartbeat has reached this socket already (a
        heartbeat is ample time for Redis to deliver), so catch_up_tenant need not read it
        again. Without this, a tenant socket open for hours would read hours of the log at its
        next overflow."""
        nonlocal log_mark, published_then
        if not len(sub) and not sub.stale:
            log_mark = max(log_mark, published_then)
        published_then = await published_up_to(store, settings.relay_name)

    async def catch_up_tenant() -> AsyncIterator[Outgoing]:
        """The tenant's events past `log_mark`, from the log itself. Reading each task it knows
        would miss the tasks it has not seen yet (their first events were in the dropped queue)
        and cost a query per task ever seen."""
        nonlocal log_mark
        while batch := await store.read_all(log_mark, limit=HISTORY_PAGE, tolerant=True):
            for recorded in batch:
                if recorded.metadata.tenant == follow.tenant:
                    async for out in deliver(live_message(recorded)):
                        yield out
            log_mark = batch[-1].cursor
            if len(batch) < HISTORY_PAGE:
                return

    def done() -> bool:
        return follow.ends_when_finished and finished >= set(follow.task_ids)

    sub = await hub.subscribe(channels)  # before the history: nothing falls between the two
    degraded = False
    try:
        sub.take_stale()  # the history read below covers whatever was missed so far
        if follow.tenant is not None:
            # From now on: what commits past this point either reaches us live or is read back
            # by catch_up_tenant.
            log_mark = await store.log_end()
        for task_id in follow.task_ids:
            # A client resuming after the task's last event (it reconnected just as the task
            # ended) would otherwise wait for the idle timeout: nothing newer ever comes, and
            # the terminal event it already has is not read again. Found by the chaos suite.
            if tracks_ends and sent[task_id] and await _ended_at(store, task_id, sent[task_id]):
                finished.add(task_id)
            async for out in catch_up(task_id):
                yield out
        if done():
            yield Close(1000, "task finished")
            return
        heartbeat_s, idle_s = settings.ws_heartbeat_s, settings.ws_idle_timeout_s
        last_event = next_heartbeat = time.monotonic()
        next_heartbeat += heartbeat_s
        while True:
            if hub.draining:
                # The api is shutting down (api.cli._DrainingServer): 1001 "going away" tells the
                # client to reconnect, to another replica, and resume with `after`.
                yield Close(1001, "server shutting down")
                return
            if hub.degraded != degraded:
                # Counted per socket; logged once per process, by the hub.
                degraded = hub.degraded
                metrics.degraded_sockets.inc() if degraded else metrics.degraded_sockets.dec()
            if sub.take_stale():
                if sub.overflows:
                    metrics.overflows.inc(sub.overflows)
                    sub.overflows = 0
                for task_id in follow.task_ids:
                    async for out in catch_up(task_id):
                        last_event = time.monotonic()
                        yield out
                if follow.tenant is not None:
                    async for out in catch_up_tenant():
                        last_event = time.monotonic()
                        yield out
                if done():
                    yield Close(1000, "task finished")
                    return
            now = time.monotonic()
            if now >= last_event + idle_s:
                yield Close(1000, "idle timeout")
                return
            if now >= next_heartbeat:
                yield Outgoing(json.dumps(heartbeat_message(datetime.now(UTC))), "heartbeat")
                next_heartbeat = now + heartbeat_s
                if follow.tenant is not None:
                    await advance_log_mark()
            wait = min(next_heartbeat, last_event + idle_s) - now
            message = await sub.get(wait)
            if message is None:
                continue
            delivered = False
            async for out in deliver(message):
                delivered = True
                yield out
            if delivered:
                last_event = time.monotonic()
            if done():
                yield Close(1000, "task finished")
                return
    finally:
        hub.unsubscribe(sub)
        if degraded:
            metrics.degraded_sockets.dec()


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
