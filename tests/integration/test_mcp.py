"""The MCP server with the SDK's own client, in process: the api (uvicorn, its lifespan running
the MCP session manager), a worker and a relay, all in this event loop; and the PostgreSQL
event store on its own.

What a client sees: the tools with output schemas; `analyze_message` on a scam and a safe
message, its progress notifications in order with the WebSocket's percents and messages, its
reasons citing seqs that are in the timeline; another tenant's task not found; a missing role
refused naming the role; 401 without a token; a cancelled call cancels the task; a stream
replayed from PostgreSQL after an event id, exactly the messages after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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
from mcp_types import CallToolResult, JSONRPCNotification, JSONRPCResponse, jsonrpc_message_adapter
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.mcp.event_store import PostgresEventStore
from infrastructure.embedded_redis import free_port
from infrastructure.mcp_streams import McpStreams
from infrastructure.settings import Settings
from tests.auth import token
from tests.fault_toolbox import fault_toolbox
from tests.waiting import eventually
from workers.jobs import build_worker
from workers.relay_main import run_relay

pytestmark = pytest.mark.integration

SCAM = "URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top"
SAFE = "Hi Sam, dinner at 7 tomorrow still works? Bring the board game."
TENANT = "acme"


@dataclass(frozen=True)
class Stack:
    url: str  # the api's base URL

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
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    tasks = [
        asyncio.create_task(worker.async_run()),
        asyncio.create_task(run_relay(settings, stop_relay)),
        asyncio.create_task(server.serve()),
    ]
    try:
        await eventually(lambda: server.started, within=20, what="the api serves", interval=0.02)
        yield Stack(f"http://127.0.0.1:{port}")
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
