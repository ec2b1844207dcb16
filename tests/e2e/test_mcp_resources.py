"""MCP resources and subscriptions against real processes (the stack of test_mcp_stack.py: two
`scamtrail api` replicas, a relay, a worker with tools 0.3 s slow, and `scamtrail mcp` over
stdio), with the SDK's own client, over streamable HTTP and over stdio:

- the two resource templates are listed and `resources.subscribe` is declared
- a subscriber to a running task's URI hears of each of its events from then on, once and in
  order, up to the last; then of an analyst's review; after unsubscribing, of nothing
- the task reads as `get_task`'s document; its timeline page by page, each `next` URI leading
  to the following page, every event once and in order
- another tenant's task is "not found" to read and to subscribe to; a bad cursor is refused
  naming it
- protocol 2026-07-28's `subscriptions/listen` carries the same updates, and refuses another
  tenant's task
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from tests.e2e.progress_stack import ROOT
from tests.e2e.test_mcp_stack import SCAM, Stack, jwt, socket_messages, stack
from tests.mcp_resources_client import Updates, read_json, task_uri
from tests.waiting import eventually, stays_quiet

pytestmark = pytest.mark.e2e

__all__ = ["stack"]  # the stack fixture of test_mcp_stack.py, used here too

Connect = Callable[..., contextlib.AbstractAsyncContextManager[Client]]


def http_client(stack: Stack) -> Connect:
    @contextlib.asynccontextmanager
    async def connect(bearer: str, **options: Any) -> AsyncIterator[Client]:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {bearer}"})
        transport = streamable_http_client(f"{stack.urls[0]}/mcp", http_client=http)
        async with http, Client(transport, **options) as client:
            yield client

    return connect


def stdio_client(stack: Stack) -> Connect:
    @contextlib.asynccontextmanager
    async def connect(bearer: str, **options: Any) -> AsyncIterator[Client]:
        env = {**stack.env, "SCAMTRAIL_TOKEN": bearer}
        server = StdioServerParameters(
            command=sys.executable, args=["-m", "api.cli", "mcp"], env=env, cwd=ROOT
        )
        async with Client(server, read_timeout_seconds=60, **options) as client:
            yield client

    return connect


TRANSPORTS = {"http": http_client, "stdio": stdio_client}


async def legacy(call: Callable[[str], Awaitable[object]], uri: str) -> None:
    """resources/subscribe or unsubscribe: the handshake era's methods, the ones under test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await call(uri)


async def refused(call: Awaitable[object]) -> str:
    with pytest.raises(MCPError) as failure:
        await call
    return failure.value.error.message


async def first_task(client: Client) -> str:
    listed = await eventually(
        lambda: client.call_tool("list_tasks", {}),
        until=lambda r: r.structured_content and r.structured_content["tasks"],
        within=30,
        what="the submitted task listed",
    )
    task_id: str = listed.structured_content["tasks"][0]["task_id"]
    return task_id


async def review(client: Client, task_id: str) -> None:
    reviewed = await client.call_tool("review_task", {"task_id": task_id, "decision": "confirm"})
    assert not reviewed.is_error, reviewed.content


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_resources_and_subscriptions(stack: Stack, transport: str) -> None:
    connect = TRANSPORTS[transport](stack)
    task_id = await check_subscriptions(connect, stack)
    await check_listen(connect, task_id)
    async with connect(jwt(tenant="elsewhere")) as other:
        uri = task_uri(task_id)
        assert "not found" in await refused(other.read_resource(uri))
        assert "not found" in await refused(listen_once(other, uri))
        assert "after" in await refused(other.read_resource(f"{uri}/timeline?after=x"))


async def check_subscriptions(connect: Connect, stack: Stack) -> str:
    """Subscribe to a running task, hear each event, read it, unsubscribe; its id."""
    updates = Updates(within=30)
    async with connect(jwt(), mode="legacy", message_handler=updates) as client:
        templates = (await client.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == {
            "scamtrail://tasks/{task_id}",
            "scamtrail://tasks/{task_id}/timeline{?after,limit}",
        }
        resources = client.server_capabilities.resources
        assert resources is not None and resources.subscribe
        call = asyncio.create_task(client.call_tool("analyze_message", {"content": SCAM}))
        task_id = await first_task(client)
        uri = task_uri(task_id)
        await legacy(client.subscribe_resource, uri)
        subscribed_at = (await read_json(client, uri))["version"]
        assert not (await call).is_error
        document = await read_json(client, uri)
        heard = await updates.until(uri, document["version"])
        assert heard == list(range(heard[0], document["version"] + 1))
        assert heard[0] <= subscribed_at + 1
        tool = await client.call_tool("get_task", {"task_id": task_id})
        assert document == tool.structured_content and document["verdict"] == "scam"
        await check_timeline_pages(client, stack, task_id)
        await review(client, task_id)
        await updates.until(uri, document["version"] + 1)
        await legacy(client.unsubscribe_resource, uri)
        count = len(updates.seen)
        await review(client, task_id)
        # The review's update arrived within a second above (stdio polls the log every 0.2 s):
        # one still coming after unsubscribing would show within 2 s.
        await stays_quiet(
            lambda: updates.seen[count:], for_s=2.0, what="an update after unsubscribe"
        )
    return task_id


async def check_timeline_pages(client: Client, stack: Stack, task_id: str) -> None:
    pages = [await read_json(client, f"{task_uri(task_id)}/timeline?limit=5")]
    while pages[-1]["next"]:
        pages.append(await read_json(client, pages[-1]["next"]))
    assert len(pages) > 1
    seqs = [event["seq"] for page in pages for event in page["events"]]
    assert seqs == [m["seq"] for m in await socket_messages(stack.urls[1], task_id)]


async def check_listen(connect: Connect, task_id: str) -> None:
    """Protocol 2026-07-28: a listen stream on the task hears of the next review."""
    uri = task_uri(task_id)
    async with connect(jwt()) as client:
        assert client.protocol_version == "2026-07-28"
        heard: list[str] = []
        async with client.listen(resource_subscriptions=[uri]) as stream:

            async def collect() -> None:
                async for event in stream:
                    heard.append(getattr(event, "uri", ""))

            reader = asyncio.create_task(collect())
            await review(client, task_id)
            await eventually(lambda: heard == [uri], within=30, what="an update for the review")
            reader.cancel()


async def listen_once(client: Client, uri: str) -> None:
    async with client.listen(resource_subscriptions=[uri]):
        pass
