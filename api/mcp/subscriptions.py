"""`resources/subscribe` on a task's resources: `notifications/resources/updated` for the URI at
each event appended to the task from then on, until `resources/unsubscribe` or the end of the
session.

Each subscription is a task of the session's `SessionSubscriptions`, kept in the SDK's
per-connection state and cancelled by the connection's teardown, so none outlives its session.
A session holds at most MAX_SUBSCRIPTIONS. The caller must be able to read the task (the REST
api's scope: another tenant's task is "not found"), and a subscription ends when the caller's
token expires.

A subscription learns of new events from a `TaskFeed`:
- `HubFeed` (the api): the process's one Redis Pub/Sub subscription (`ProgressHub`), the
  relay's signed messages; whenever the hub says the live path missed something (overflow,
  Redis away and back) the task's head is read from the log
- `LogFeed` (`scamtrail mcp`, which may not hold the relay's Pub/Sub key): one reader of the
  whole log for every subscription of the process, every LOG_POLL_S while any is open
Each notification carries the event's seq in `_meta["scamtrail/seq"]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any, Protocol

from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_REQUEST,
    EmptyResult,
    ResourceUpdatedNotification,
    ResourceUpdatedNotificationParams,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)

from api.application.tasks import Tasks
from api.mcp.auth import CallerOf
from api.mcp.resources import parse_uri, refusals, resource_caller
from domain.log import LogCursor, RecordedEvent
from infrastructure.event_store import EventStore
from infrastructure.hub import ProgressHub, task_channel
from infrastructure.outage import POSTGRES_ERRORS

log = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS = 32  # per session
SEQ_META = "scamtrail/seq"  # the _meta key of the new event's seq in a notification
RETRY_S = 1.0  # the pause before a subscription reads the log again after it failed
HUB_WAIT_S = 30.0  # how long a subscription waits on the hub before it looks again
LOG_BATCH = 500  # events per read of the whole log (LogFeed)
_STATE_KEY = "scamtrail.subscriptions"  # where a connection keeps its SessionSubscriptions

Notify = Callable[[int], Awaitable[None]]  # sends the notification for one new seq


class TaskFeed(Protocol):
    def follow(self, task_id: str, after: int) -> AsyncGenerator[int, None]:
        """The seq of each event of the task after `after`, in order, as it is appended."""
        ...


class HubFeed:
    """New events as the relay publishes them, through the process's `ProgressHub`; the log
    when the hub says the live path missed something."""

    def __init__(self, store: EventStore, hub: ProgressHub) -> None:
        self._store, self._hub = store, hub

    async def follow(self, task_id: str, after: int) -> AsyncGenerator[int, None]:
        sub = await self._hub.subscribe([task_channel(task_id)])  # first: nothing falls between
        try:
            sub.take_stale()  # the read below covers whatever was missed so far
            head = await self._store.stream_version(task_id)
            last = after
            for seq in range(last + 1, head + 1):
                yield seq
            last = max(last, head)
            while True:
                if sub.take_stale():
                    newest = await self._store.stream_version(task_id)
                else:
                    message = await sub.get(HUB_WAIT_S)
                    newest = message.seq if message is not None else last
                for seq in range(last + 1, newest + 1):  # a task's seqs have no holes
                    yield seq
                last = max(last, newest)
        finally:
            self._hub.unsubscribe(sub)


class LogFeed:
    """New events read from the log: one reader for every subscription of the process, running
    only while one is open."""

    def __init__(self, store: EventStore, poll_s: float) -> None:
        self._store, self._poll_s = store, poll_s
        self._inboxes: dict[str, set[asyncio.Queue[int]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._reading = asyncio.Event()  # set once the reader knows where the log ends

    async def follow(self, task_id: str, after: int) -> AsyncGenerator[int, None]:
        inbox: asyncio.Queue[int] = asyncio.Queue()
        self._inboxes.setdefault(task_id, set()).add(inbox)
        if self._reader is None:
            self._reading = asyncio.Event()
            self._reader = asyncio.create_task(self._read(), name="mcp-subscriptions-log")
        try:
            await self._reading.wait()  # the head read below is then no older than the reader
            head = await self._store.stream_version(task_id)
            last = after
            for seq in range(last + 1, head + 1):
                yield seq
            last = max(last, head)
            while True:
                seq = await inbox.get()
                if seq > last:
                    last = seq
                    yield seq
        finally:
            self._leave(task_id, inbox)

    def _leave(self, task_id: str, inbox: asyncio.Queue[int]) -> None:
        inboxes = self._inboxes.get(task_id, set())
        inboxes.discard(inbox)
        if not inboxes:
            self._inboxes.pop(task_id, None)
        if not self._inboxes and self._reader is not None:
            self._reader.cancel()
            self._reader = None

    async def _read(self) -> None:
        """From the end of the log as it is now: each event of a followed task to its inboxes."""
        cursor: LogCursor | None = None
        while True:
            batch: list[RecordedEvent] = []
            try:
                if cursor is None:
                    cursor = await self._store.log_end()
                    self._reading.set()
                batch = await self._store.read_all(cursor, limit=LOG_BATCH, tolerant=True)
            except POSTGRES_ERRORS as error:
                log.warning("MCP subscriptions: reading the log failed (%r); retrying", error)
            for recorded in batch:
                for inbox in self._inboxes.get(recorded.stream_id, ()):
                    inbox.put_nowait(recorded.version)
            if batch:
                cursor = batch[-1].cursor
            if len(batch) < LOG_BATCH:
                await asyncio.sleep(self._poll_s)


class SessionSubscriptions:
    """One session's subscriptions, by URI; `close` (the connection's teardown) ends them."""

    def __init__(self, feed: TaskFeed, limit: int = MAX_SUBSCRIPTIONS) -> None:
        self._feed, self._limit = feed, limit
        self._running: dict[str, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._running)

    def add(
        self, uri: str, task_id: str, after: int, notify: Notify, until: datetime | None
    ) -> None:
        """Follow `task_id` for `uri` from the event after `after`, until `until` (again
        subscribing to a URI changes nothing)."""
        if uri in self._running:
            return
        if len(self._running) >= self._limit:
            raise MCPError(
                INVALID_REQUEST,
                f"too many subscriptions: a session may hold {self._limit};"
                " unsubscribe from one first",
            )
        running = asyncio.create_task(
            self._run(task_id, after, notify, until), name=f"mcp-subscription {uri}"
        )
        self._running[uri] = running
        running.add_done_callback(lambda done: self._forget(uri, done))

    def remove(self, uri: str) -> None:
        running = self._running.pop(uri, None)
        if running is not None:
            running.cancel()

    async def close(self) -> None:
        running = list(self._running.values())
        self._running.clear()
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _forget(self, uri: str, done: asyncio.Task[None]) -> None:
        if self._running.get(uri) is done:
            del self._running[uri]
        if not done.cancelled() and done.exception() is not None:
            log.error("MCP subscription to %s failed", uri, exc_info=done.exception())

    async def _run(self, task_id: str, after: int, notify: Notify, until: datetime | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds_until(until)):
                await follow_task(self._feed, task_id, after, notify)


async def follow_task(feed: TaskFeed, task_id: str, after: int, notify: Notify) -> None:
    """Notify at each event of the task after `after`, until cancelled; a failed read of the
    log is retried after RETRY_S from the last seq notified."""
    last = after
    while True:
        try:
            async with aclosing(feed.follow(task_id, last)) as seqs:
                async for seq in seqs:
                    last = seq
                    await notify(seq)
        except POSTGRES_ERRORS as error:
            log.warning("MCP subscription to %s: %r; retrying", task_id, error)
            await asyncio.sleep(RETRY_S)


def seconds_until(moment: datetime | None) -> float | None:
    """How long until `moment` (a token's expiry); None for never."""
    return None if moment is None else (moment - datetime.now(UTC)).total_seconds()


def session_subscriptions(
    ctx: ServerRequestContext[Any, Any], feed: TaskFeed
) -> SessionSubscriptions:
    """The subscriptions of the session `ctx` belongs to, made at its first subscribe."""
    connection = _connection(ctx.session)
    found = connection.state.get(_STATE_KEY)
    if isinstance(found, SessionSubscriptions):
        return found
    made = connection.state[_STATE_KEY] = SessionSubscriptions(feed)
    connection.exit_stack.push_async_callback(made.close)
    return made


def notifier(session: ServerSession, uri: str) -> Notify:
    """Sends `notifications/resources/updated` for `uri` on the session's own stream."""

    async def notify(seq: int) -> None:
        params = ResourceUpdatedNotificationParams.model_validate(
            {"uri": uri, "_meta": {SEQ_META: seq}}
        )
        await session.send_notification(ResourceUpdatedNotification(params=params))

    return notify


def _connection(session: ServerSession) -> Connection:
    """The connection a request's session belongs to. The SDK hands request handlers a
    per-request session only; the connection behind it holds the per-connection state and
    teardown that subscriptions need."""
    connection = getattr(session, "_connection", None)
    if not isinstance(connection, Connection):
        raise MCPError(INVALID_REQUEST, "this transport cannot hold subscriptions")
    return connection


class Subscriptions:
    """The `resources/subscribe` and `resources/unsubscribe` handlers of a server."""

    def __init__(
        self, tasks: Tasks, caller_of: CallerOf, store: EventStore, feed: TaskFeed
    ) -> None:
        self._tasks, self._caller_of, self._feed = tasks, caller_of, feed
        self._store = store

    def register(self, server: MCPServer) -> None:
        """Serve both methods on `server` (which then declares `resources.subscribe`)."""
        lowlevel = server._lowlevel_server  # the SDK's MCPServer has no subscribe API of its own
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, self.subscribe)
        lowlevel.add_request_handler(
            "resources/unsubscribe", UnsubscribeRequestParams, self.unsubscribe
        )

    async def subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        """Refused unless the URI names a task the caller may read; then followed."""
        caller = resource_caller(self._caller_of, Context(request_context=ctx))
        target = parse_uri(params.uri)
        with refusals():
            await self._tasks.check_followable(caller, [target.task_id])
        # Every event after this read is notified, however soon after the answer it comes.
        head = await self._store.stream_version(target.task_id)
        notify = notifier(ctx.session, params.uri)
        held = session_subscriptions(ctx, self._feed)
        held.add(params.uri, target.task_id, head, notify, caller.expires_at)
        return EmptyResult()

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        """Ends the session's subscription to the URI; nothing for a URI it does not hold."""
        held = _connection(ctx.session).state.get(_STATE_KEY)
        if isinstance(held, SessionSubscriptions):
            held.remove(params.uri)
        return EmptyResult()
