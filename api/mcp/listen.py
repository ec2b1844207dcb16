"""`subscriptions/listen`, the protocol 2026-07-28 form of `resources/subscribe`: the listen
request names the resources (`resourceSubscriptions`), and its own response stream carries the
acknowledgement first, then a `notifications/resources/updated` per event appended to each
named task, every frame tagged with the request's id. The stream lasts until the client drops
it or its token expires (then it ends gracefully, with the request's result).

The URIs are checked as `resources/subscribe` checks them (api/mcp/subscriptions.py): a
malformed one, or a task the caller may not read, refuses the whole request before the
acknowledgement. At most MAX_SUBSCRIPTIONS URIs per request, and MAX_LISTEN_STREAMS streams
open at once per user in the process.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY
from mcp_types import (
    INVALID_REQUEST,
    ResourceUpdatedNotification,
    ResourceUpdatedNotificationParams,
    SubscriptionFilter,
    SubscriptionsAcknowledgedNotification,
    SubscriptionsAcknowledgedNotificationParams,
    SubscriptionsListenRequestParams,
    SubscriptionsListenResult,
)

from api.application.caller import Caller
from api.application.tasks import Tasks
from api.mcp.auth import CallerOf
from api.mcp.resources import parse_uri, refusals, resource_caller
from api.mcp.subscriptions import (
    MAX_SUBSCRIPTIONS,
    SEQ_META,
    Notify,
    TaskFeed,
    follow_task,
    seconds_until,
)
from infrastructure.event_store import EventStore

MAX_LISTEN_STREAMS = 8  # open at once per user (tenant and actor) in this process


class TaskListen:
    """The `subscriptions/listen` handler of a server, following tasks through `feed`."""

    def __init__(
        self, tasks: Tasks, caller_of: CallerOf, store: EventStore, feed: TaskFeed
    ) -> None:
        self._tasks, self._caller_of, self._store, self._feed = tasks, caller_of, store, feed
        self._open: Counter[tuple[str, str]] = Counter()  # streams per (tenant, actor)

    def register(self, server: MCPServer) -> None:
        """Serve `subscriptions/listen` on `server` in place of the SDK's in-memory bus."""
        server._lowlevel_server.add_request_handler(
            "subscriptions/listen", SubscriptionsListenRequestParams, self.listen
        )

    async def listen(
        self, ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
    ) -> SubscriptionsListenResult:
        request_id = ctx.request_id
        if request_id is None:
            raise MCPError(INVALID_REQUEST, "subscriptions/listen needs a request id")
        caller = resource_caller(self._caller_of, Context(request_context=ctx))
        targets = await self._targets(caller, params.notifications)
        user = (caller.tenant, caller.actor)
        if self._open[user] >= MAX_LISTEN_STREAMS:
            raise MCPError(
                INVALID_REQUEST,
                f"too many listen streams: a user may hold {MAX_LISTEN_STREAMS}; close one first",
            )
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: request_id}
        self._open[user] += 1
        try:
            # Where each task stands now: every event after it is notified.
            heads = {uri: await self._store.stream_version(t) for uri, t in targets.items()}
            await ctx.session.send_notification(_acknowledgement(params.notifications, meta),
                                                related_request_id=request_id)  # fmt: skip
            left = seconds_until(caller.expires_at)
            with anyio.move_on_after(math.inf if left is None else left):
                async with anyio.create_task_group() as group:
                    for uri, task in targets.items():
                        notify = _notifier(ctx, uri, meta)
                        group.start_soon(follow_task, self._feed, task, heads[uri], notify)
                    # Open until the client drops it or the token expires, with no URIs too.
                    await anyio.sleep_forever()
        finally:
            self._open[user] -= 1
            if not self._open[user]:
                del self._open[user]
        return SubscriptionsListenResult(_meta=meta)

    async def _targets(self, caller: Caller, wanted: SubscriptionFilter) -> dict[str, str]:
        """The task each requested URI names, once each; refused as resources/subscribe
        refuses."""
        uris = list(dict.fromkeys(wanted.resource_subscriptions or ()))
        if len(uris) > MAX_SUBSCRIPTIONS:
            raise MCPError(
                INVALID_REQUEST,
                f"too many subscriptions: a listen request may name {MAX_SUBSCRIPTIONS}",
            )
        targets = {uri: parse_uri(uri).task_id for uri in uris}
        if targets:
            with refusals():
                await self._tasks.check_followable(caller, sorted(set(targets.values())))
        return targets


def _acknowledgement(
    wanted: SubscriptionFilter, meta: dict[str, Any]
) -> SubscriptionsAcknowledgedNotification:
    """Everything asked for is honoured; the list-change flags never fire here (the tools and
    templates are fixed)."""
    honored = SubscriptionFilter(
        tools_list_changed=wanted.tools_list_changed or None,
        prompts_list_changed=wanted.prompts_list_changed or None,
        resources_list_changed=wanted.resources_list_changed or None,
        resource_subscriptions=list(dict.fromkeys(wanted.resource_subscriptions or ())) or None,
    )
    params = SubscriptionsAcknowledgedNotificationParams(notifications=honored, _meta=meta)
    return SubscriptionsAcknowledgedNotification(params=params)


def _notifier(ctx: ServerRequestContext[Any, Any], uri: str, meta: dict[str, Any]) -> Notify:
    """Sends `notifications/resources/updated` for `uri` on the listen request's stream."""

    async def notify(seq: int) -> None:
        params = ResourceUpdatedNotificationParams.model_validate(
            {"uri": uri, "_meta": {**meta, SEQ_META: seq}}
        )
        await ctx.session.send_notification(
            ResourceUpdatedNotification(params=params), related_request_id=ctx.request_id
        )

    return notify
