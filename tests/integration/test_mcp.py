"""The MCP server with the SDK's own client, in process: the api (uvicorn, its lifespan running
the MCP session manager), a worker and a relay, all in this event loop; and the PostgreSQL
event store on its own.

What a client sees: the tools with output schemas; `analyze_message` on a scam and a safe
message, its progress notifications in order with the WebSocket's percents and messages, its
reasons citing seqs that are in the timeline; another tenant's task not found; a missing role
refused naming the role; 401 without a token; a cancelled call cancels the task; a stream
replayed from PostgreSQL after an event id, exactly the messages after it.

Resources: the templates listed and `resources.subscribe` declared; a task reads as get_task's
document and its timeline page by page through `next`; bad URIs and other tenants' tasks are
MCP errors naming why. Subscriptions: each event after `resources/subscribe` notified once and
in order, none after `resources/unsubscribe`; at most MAX_SUBSCRIPTIONS a session, ended with
it (no task, no hub subscription left); `subscriptions/listen` (protocol 2026-07-28) the same,
bounded per request and per user; without the hub (stdio) one reader of the log for all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.streamable_http import EventMessage
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import CallToolResult, JSONRPCNotification, JSONRPCResponse, jsonrpc_message_adapter
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.application.caller import Caller
from api.mcp.auth import fixed_caller
from api.mcp.event_store import PostgresEventStore
from api.mcp.listen import MAX_LISTEN_STREAMS
from api.mcp.resources import TimelineResource
from api.mcp.server import build_server
from api.mcp.subscriptions import MAX_SUBSCRIPTIONS
from api.metrics import StreamMetrics
from api.services import open_services
from infrastructure.embedded_redis import free_port
from infrastructure.mcp_streams import McpStreams
from infrastructure.settings import Settings
from tests.auth import token
from tests.fault_toolbox import fault_toolbox
from tests.mcp_resources_client import Updates, read_json, task_uri
from tests.waiting import eventually, stays_quiet
from workers.jobs import build_worker
from workers.relay_main import run_relay

pytestmark = pytest.mark.integration

SCAM = "URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top"
SAFE = "Hi Sam, dinner at 7 tomorrow still works? Bring the board game."
TENANT = "acme"


@dataclass(frozen=True)
class Stack:
    url: str  # the api's base URL
    app: Any  # the api app: its services hold the hub the subscriptions use

    @property
    def mcp(self) -> str:
        return f"{self.url}/mcp"


@pytest.fixture
def tool_latency_s() -> float:
    return 0.0


@pytest.fixture
async def stack(app_settings: Settings, tool_latency_s: float) -> AsyncIterator[Stack]:
    settings = app_settings.model_copy(update={"worker_poll_s": 0.05})
    worker = build_worker(
        settings, handle_signals=False, toolbox=fault_toolbox(latency_s=tool_latency_s)
    )
    worker.cron_jobs = []
    stop_relay = asyncio.Event()
    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    tasks = [
        asyncio.create_task(worker.async_run()),
        asyncio.create_task(run_relay(settings, stop_relay)),
        asyncio.create_task(server.serve()),
    ]
    try:
        await eventually(lambda: server.started, within=20, what="the api serves", interval=0.02)
        yield Stack(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        stop_relay.set()
        tasks[0].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await worker.close()


def bearer(roles: tuple[str, ...] = ("submitter", "analyst"), tenant: str = TENANT) -> str:
    return token(tenant, list(roles), "mcp-tester")


@contextlib.asynccontextmanager
async def connect(url: str, jwt: str, **client: Any) -> AsyncIterator[Client]:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {jwt}"})
    async with http, Client(streamable_http_client(url, http_client=http), **client) as session:
        yield session


Progress = tuple[float, float | None, str | None]


async def analyze(session: Client, content: str, kind: str = "sms") -> tuple[Any, list[Progress]]:
    seen: list[Progress] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    arguments = {"content": content, "kind": kind}
    result = await session.call_tool("analyze_message", arguments, progress_callback=on_progress)
    assert not result.is_error, result.content
    return result.structured_content, seen


async def socket_messages(url: str, task_id: str, jwt: str) -> list[dict[str, Any]]:
    """The task's messages as the WebSocket sends them (history: the task has ended)."""
    ws_url = url.replace("http://", "ws://") + f"/ws/agent-progress/{task_id}"
    headers = {"Authorization": f"Bearer {jwt}"}
    async with websockets.connect(ws_url, additional_headers=headers) as ws:
        messages = [json.loads(m) async for m in ws]
    return [m for m in messages if "seq" in m]


async def test_tools_are_listed_with_output_schemas(stack: Stack) -> None:
    async with connect(stack.mcp, bearer()) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == {"analyze_message", "get_task", "get_audit", "list_tasks",
                          "review_task", "cancel_task"}  # fmt: skip
    for tool in tools.values():
        assert tool.output_schema and tool.output_schema.get("type") == "object", tool.name
    assert {"verdict", "score", "confidence", "reasons"} <= set(
        tools["analyze_message"].output_schema["properties"]  # type: ignore[index]
    )


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize(("content", "verdict"), [(SCAM, "scam"), (SAFE, "safe")])
async def test_analyze_message_reports_the_sockets_progress_and_cites_the_timeline(
    stack: Stack, content: str, verdict: str, mode: str
) -> None:
    jwt = bearer()
    async with connect(stack.mcp, jwt, mode=mode) as session:
        result, progress = await analyze(session, content)
    assert result["verdict"] == verdict and result["status"] == "completed", result
    assert 0 <= result["score"] <= 1 and 0 <= result["confidence"] <= 1
    wire = await socket_messages(stack.url, result["task_id"], jwt)
    assert [(p[0], p[2]) for p in progress] == [(m["percent"], m["message"]) for m in wire]
    assert all(p[1] == 100 for p in progress) and progress[-1][0] == 100
    seqs = {m["seq"] for m in wire}
    cited = [seq for reason in result["reasons"] for seq in reason["seqs"]]
    assert result["reasons"] and (verdict == "safe" or cited)
    assert set(cited) <= seqs, (cited, seqs)


async def test_progress_notifications_carry_step_tool_and_seq(stack: Stack) -> None:
    notes: list[dict[str, Any]] = []
    jwt = bearer()

    async def on_message(message: Any) -> None:
        root = getattr(message, "root", message)
        if getattr(root, "method", None) == "notifications/progress":
            notes.append(root.params.model_dump(by_alias=True, mode="json"))

    async with connect(stack.mcp, jwt, mode="legacy", message_handler=on_message) as session:
        result, _ = await analyze(session, SCAM)
    wire = await socket_messages(stack.url, result["task_id"], jwt)
    assert notes
    fields = ("step", "tool", "seq", "error")
    got = [tuple(n["_meta"]["scamtrail/progress"][f] for f in fields) for n in notes]
    assert got == [tuple(m[f] for f in fields) for m in wire]


async def test_another_tenant_gets_not_found_and_a_missing_role_is_named(stack: Stack) -> None:
    async with connect(stack.mcp, bearer()) as session:
        result, _ = await analyze(session, SAFE)
        task_id = result["task_id"]
        refused = await session.call_tool(
            "review_task", {"task_id": task_id, "decision": "confirm"}
        )
    assert not refused.is_error  # an analyst of the tenant may review
    async with connect(stack.mcp, bearer(tenant="elsewhere")) as other:
        for tool in ("get_task", "get_audit", "cancel_task"):
            found = await other.call_tool(tool, {"task_id": task_id})
            assert found.is_error and "not found" in _text(found), (tool, _text(found))
        listed = await other.call_tool("list_tasks", {})
        assert listed.structured_content == {"tasks": [], "next_cursor": None}
    async with connect(stack.mcp, bearer(("submitter",))) as submitter:
        review = await submitter.call_tool(
            "review_task", {"task_id": task_id, "decision": "confirm"}
        )
        assert review.is_error and "analyst" in _text(review), _text(review)
    async with connect(stack.mcp, bearer(("analyst",))) as analyst:
        submit = await analyst.call_tool("analyze_message", {"content": SCAM})
        assert submit.is_error and "submitter" in _text(submit), _text(submit)
        audit = await analyst.call_tool("get_audit", {"task_id": task_id})
        assert not audit.is_error and audit.structured_content["task_id"] == task_id


async def test_the_endpoint_refuses_a_request_without_a_valid_token(stack: Stack) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx.AsyncClient(base_url=stack.url) as http:
        expired = token(TENANT, ["submitter"], ttl_s=-30)
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": f"Bearer {expired}"},
        ):
            response = await http.post("/mcp", json=body, headers=headers)
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("tool_latency_s", [2.0])
async def test_cancelling_analyze_message_cancels_the_task(stack: Stack) -> None:
    async with connect(stack.mcp, bearer()) as session:
        call = asyncio.create_task(session.call_tool("analyze_message", {"content": SCAM}))
        task_id = await _first_task(session)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
        await _eventually(
            lambda: session.call_tool("get_task", {"task_id": task_id}),
            lambda r: r.structured_content["status"] == "cancelled",
        )
        audit = await session.call_tool("get_audit", {"task_id": task_id})
    assert audit.structured_content["status"] == "cancelled"


async def _first_task(session: Client) -> str:
    listed = await _eventually(
        lambda: session.call_tool("list_tasks", {}), lambda r: bool(r.structured_content["tasks"])
    )
    task_id: str = listed.structured_content["tasks"][0]["task_id"]
    return task_id


async def _eventually(
    call: Callable[[], Awaitable[CallToolResult]], ok: Callable[[CallToolResult], bool]
) -> CallToolResult:
    result: CallToolResult = await eventually(call, within=15, until=ok, what="the tool says so")
    return result


def _text(result: CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


# Resources and subscriptions.


async def subscribe(session: Client, uri: str) -> None:
    with warnings.catch_warnings():  # the handshake era's method, the one under test here
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await session.subscribe_resource(uri)


async def unsubscribe(session: Client, uri: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await session.unsubscribe_resource(uri)


async def refused(call: Awaitable[object]) -> str:
    """The message of the MCP error `call` fails with."""
    with pytest.raises(MCPError) as failure:
        await call
    return failure.value.error.message


async def test_resource_templates_are_listed_and_subscribing_is_declared(stack: Stack) -> None:
    async with connect(stack.mcp, bearer(), mode="legacy") as session:
        listed = await session.list_resource_templates()
        capabilities = session.server_capabilities
    templates = {t.name: t for t in listed.resource_templates}
    assert templates["task"].uri_template == "scamtrail://tasks/{task_id}"
    assert templates["task_timeline"].uri_template == (
        "scamtrail://tasks/{task_id}/timeline{?after,limit}"
    )
    assert all(t.mime_type == "application/json" for t in templates.values())
    assert capabilities.resources is not None and capabilities.resources.subscribe


async def test_a_task_and_its_timeline_read_as_resources_page_by_page(stack: Stack) -> None:
    jwt = bearer()
    async with connect(stack.mcp, jwt) as session:
        result, _ = await analyze(session, SCAM)
        task_id = result["task_id"]
        document = await read_json(session, task_uri(task_id))
        tool = await session.call_tool("get_task", {"task_id": task_id})
        pages = [await read_json(session, f"{task_uri(task_id)}/timeline?limit=4")]
        while pages[-1]["next"]:
            pages.append(await read_json(session, pages[-1]["next"]))
        rest = await read_json(session, f"{task_uri(task_id)}/timeline?after=2")
    assert document == tool.structured_content  # the resource is get_task's document
    assert document["verdict"] == "scam" and document["reasons"]
    assert [r["seqs"] for r in document["reasons"]] == [r["seqs"] for r in result["reasons"]]
    wire = await socket_messages(stack.url, task_id, jwt)
    seqs = [e["seq"] for page in pages for e in page["events"]]
    assert seqs == [m["seq"] for m in wire]  # every event once, in order, across the pages
    assert len(pages) > 2 and all(len(page["events"]) == 4 for page in pages[:-1])
    assert pages[1]["events"][0]["seq"] == 5
    assert pages[0]["next"] == f"{task_uri(task_id)}/timeline?after=4&limit=4"
    assert [e["seq"] for e in rest["events"]] == seqs[2:] and rest["next"] is None
    for page in pages:  # each page is the documented shape, field for field
        assert TimelineResource.model_validate(page).model_dump(mode="json") == page


async def test_bad_resource_uris_and_other_tenants_tasks_are_clear_mcp_errors(
    stack: Stack,
) -> None:
    async with connect(stack.mcp, bearer()) as session:
        result, _ = await analyze(session, SAFE)
    uri = task_uri(result["task_id"])
    async with connect(stack.mcp, bearer(tenant="elsewhere"), mode="legacy") as other:
        for theirs in (uri, f"{uri}/timeline", f"{uri}/timeline?after=1"):
            assert "not found" in await refused(other.read_resource(theirs)), theirs
        assert "not found" in await refused(subscribe(other, uri))
        missing = task_uri("6c0b1e7e-8a8e-4c1e-9d2a-0e5b9c7d1f00")
        assert "not found" in await refused(other.read_resource(missing))
        bad = {
            "scamtrail://tasks/not-a-task": "UUID",
            f"{uri}/timeline?after=-1": "after",
            f"{uri}/timeline?after=abc": "after",
            f"{uri}/timeline?after=99999999999": "after",
            f"{uri}/timeline?limit=0": "limit",
            f"{uri}/timeline?limit=100000": "limit",
        }
        for wrong, named in bad.items():
            assert named in await refused(other.read_resource(wrong)), wrong
            assert named in await refused(subscribe(other, wrong)), wrong
        assert "unknown resource" in await refused(subscribe(other, "scamtrail://nothing"))


@pytest.mark.parametrize("tool_latency_s", [0.3])
async def test_subscribers_hear_of_each_new_event_until_they_unsubscribe(stack: Stack) -> None:
    updates = Updates()
    async with connect(stack.mcp, bearer(), mode="legacy", message_handler=updates) as session:
        call = asyncio.create_task(session.call_tool("analyze_message", {"content": SCAM}))
        task_id = await _first_task(session)
        uri, timeline = task_uri(task_id), f"{task_uri(task_id)}/timeline?after=1"
        await subscribe(session, uri)
        await subscribe(session, timeline)
        subscribed_at = (await read_json(session, uri))["version"]
        assert not (await call).is_error
        final = (await read_json(session, uri))["version"]
        for subscribed in (uri, timeline):
            heard = await updates.until(subscribed, final)
            # Each event since the subscription, once and in order.
            assert heard == list(range(heard[0], final + 1)) and heard[0] <= subscribed_at + 1
        # Events after the task's end (an analyst's review) are news too.
        await session.call_tool("review_task", {"task_id": task_id, "decision": "confirm"})
        await updates.until(uri, final + 1)
        await unsubscribe(session, uri)
        await unsubscribe(session, timeline)
        count = len(updates.seen)
        await session.call_tool("review_task", {"task_id": task_id, "decision": "confirm"})
        # Delivery took well under a second above; a notification still on its way after an
        # unsubscribe would show within that.
        await stays_quiet(
            lambda: updates.seen[count:], for_s=1.0, what="an update after unsubscribe"
        )


async def test_subscriptions_are_bounded_per_session_and_end_with_it(stack: Stack) -> None:
    hub = stack.app.state.services.hub
    async with connect(stack.mcp, bearer(), mode="legacy") as session:
        result, _ = await analyze(session, SAFE)
        uris = [f"{task_uri(result['task_id'])}/timeline?after={n}" for n in range(33)]
        for uri in uris[:MAX_SUBSCRIPTIONS]:
            await subscribe(session, uri)
        await subscribe(session, uris[0])  # again: still one subscription
        assert "too many subscriptions" in await refused(subscribe(session, uris[-1]))
        await unsubscribe(session, uris[0])
        await subscribe(session, uris[-1])
        assert _subscription_tasks() == MAX_SUBSCRIPTIONS
        await eventually(lambda: hub.subscriber_count == MAX_SUBSCRIPTIONS, within=5,
                         what="one hub subscription each")  # fmt: skip
    # The session is gone (the client deleted it): so are its subscriptions.
    await eventually(lambda: _subscription_tasks() == 0 and hub.subscriber_count == 0,
                     within=10, what="the subscriptions to end with their session")  # fmt: skip


async def test_a_listen_stream_hears_of_new_events_until_it_is_closed(stack: Stack) -> None:
    """Protocol 2026-07-28, where `subscriptions/listen` replaces resources/subscribe."""
    hub = stack.app.state.services.hub
    async with connect(stack.mcp, bearer()) as session:
        assert session.protocol_version == "2026-07-28"
        result, _ = await analyze(session, SAFE)
        uri = task_uri(result["task_id"])
        heard: list[str] = []
        async with session.listen(resource_subscriptions=[uri]) as stream:
            assert stream.honored.resource_subscriptions == [uri]

            async def collect() -> None:
                async for event in stream:
                    heard.append(getattr(event, "uri", ""))

            reader = asyncio.create_task(collect())
            await session.call_tool("review_task", {"task_id": result["task_id"],
                                                    "decision": "confirm"})  # fmt: skip
            await eventually(lambda: heard == [uri], within=15, what="an update for the review")
            reader.cancel()
        await eventually(lambda: hub.subscriber_count == 0, within=10,
                         what="the stream's follower to end with it")  # fmt: skip
        many = [f"{uri}/timeline?after={n}" for n in range(MAX_SUBSCRIPTIONS + 1)]
        assert "too many subscriptions" in await refused(_listen(session, *many))
        async with contextlib.AsyncExitStack() as streams:
            for _ in range(MAX_LISTEN_STREAMS):
                await streams.enter_async_context(session.listen(resource_subscriptions=[uri]))
            assert "too many listen streams" in await refused(_listen(session, uri))
        await _listen(session, uri)  # closed streams count no more
    async with connect(stack.mcp, bearer(tenant="elsewhere")) as other:
        assert "not found" in await refused(_listen(other, uri))
        assert "UUID" in await refused(_listen(other, "scamtrail://tasks/nope"))


async def _listen(session: Client, *uris: str) -> None:
    async with session.listen(resource_subscriptions=list(uris)):
        pass


async def test_without_the_hub_one_reader_of_the_log_serves_every_subscription(
    app_settings: Settings,
) -> None:
    """`scamtrail mcp` (stdio) follows tasks from the log: one reader for the process, only
    while a subscription is open."""
    caller = Caller(TENANT, "user:log", frozenset({"submitter", "analyst"}))
    updates = Updates()
    async with open_services(app_settings) as services:
        server = build_server(services, StreamMetrics(), fixed_caller(caller), live=False)
        tasks = services.application.tasks
        async with Client(server, mode="legacy", message_handler=updates) as session:
            submitted = [(await tasks.submit(caller, SAFE, "sms", {}, None)).task_id
                         for _ in range(2)]  # fmt: skip
            uris = [task_uri(t) for t in submitted] + [f"{task_uri(submitted[0])}/timeline"]
            for uri in uris:
                await subscribe(session, uri)
            assert _tasks_named("mcp-subscriptions-log") == 1
            for task_id in submitted:
                await tasks.cancel(caller, task_id, "no worker here")
            for uri in uris:
                await updates.until(uri, 2)  # TaskCancelled follows TaskSubmitted
            assert sorted(updates.seen) == sorted((uri, 2) for uri in uris)
        await eventually(lambda: _tasks_named("mcp-subscriptions-log") == 0,
                         within=5, what="the reader to stop with the subscriptions")  # fmt: skip
        assert _subscription_tasks() == 0


def _tasks_named(name: str) -> int:
    return sum(1 for t in asyncio.all_tasks() if t.get_name() == name)


def _subscription_tasks() -> int:
    return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith("mcp-subscription "))


# The event store on its own.


def _note(n: int) -> JSONRPCNotification:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/progress",
                               params={"progressToken": 1, "progress": n})  # fmt: skip


async def test_the_event_store_replays_exactly_the_messages_after_an_id(
    clean_database: AsyncEngine,
) -> None:
    streams = McpStreams(clean_database)
    store = PostgresEventStore(streams)
    mine = store.for_session("session-a", json.dumps([TENANT, "user:a"]))
    theirs = store.for_session("session-b", json.dumps([TENANT, "user:b"]))
    priming = await mine.store_event("7", None)
    ids = [await mine.store_event("7", _note(n)) for n in range(5)]
    await mine.store_event("8", _note(99))  # another request's stream in the same session
    await theirs.store_event("7", _note(42))  # the same request id in another session
    response = JSONRPCResponse(jsonrpc="2.0", id=7, result={"ok": True})
    ids.append(await mine.store_event("7", response))

    for last, expected in ((priming, ids), (ids[1], ids[2:]), (ids[-1], [])):
        sent: list[EventMessage] = []

        async def collect(message: EventMessage, into: list[EventMessage] = sent) -> None:
            into.append(message)

        assert await mine.replay_events_after(last, collect) == "7"
        assert [m.event_id for m in sent] == expected
    replayed: list[EventMessage] = []

    async def keep(message: EventMessage) -> None:
        replayed.append(message)

    await mine.replay_events_after(priming, keep)
    assert [getattr(m.message, "params", {}).get("progress") for m in replayed[:5]] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert replayed[-1].message == jsonrpc_message_adapter.validate_python(
        response.model_dump(by_alias=True, mode="json")
    )
    # An id of another session, a pruned one, or junk replays nothing.
    assert await theirs.replay_events_after(ids[0], keep) is None
    for junk in ("0", "-1", "abc", "99999999", "1" * 30):
        assert await mine.replay_events_after(junk, keep) is None


async def test_old_stream_messages_are_pruned(clean_database: AsyncEngine) -> None:
    streams = McpStreams(clean_database)
    await streams.record("s", "1", "o", {"jsonrpc": "2.0", "method": "x"})
    async with clean_database.begin() as conn:
        await conn.exec_driver_sql(
            "UPDATE mcp_stream_events SET recorded_at = now() - interval '2 days'"
        )
    # Another process: its first record prunes what is older than a day.
    kept = await McpStreams(clean_database).record("s", "1", "o", {"jsonrpc": "2.0", "method": "y"})
    assert [r.position for r in await streams.after("s", "1", 0)] == [kept]
    assert await streams.prune(timedelta(days=1)) == 0


async def test_building_the_server_leaves_the_process_logging_as_it_was(
    app_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK would put a rich handler on a root logger that has none (the app served by
    another ASGI server, a benchmark): every library's INFO lines rendered on the request
    path. pytest's own handlers are set aside so that the root logger has none."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    async with open_services(app_settings) as services:
        build_server(services, StreamMetrics(), fixed_caller(Caller(TENANT, "u", frozenset())))
    assert root.handlers == [] and root.level == logging.WARNING
