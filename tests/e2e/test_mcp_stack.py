"""MCP against real processes: two `scamtrail api` replicas, a relay, a worker, and
`scamtrail mcp` (stdio) as a subprocess of the SDK's own client.

- over streamable HTTP and over stdio, `analyze_message` on a scam and a safe message: the
  verdict, progress notifications in order with the WebSocket's percents and messages, reasons
  whose seqs are in the timeline; another tenant's task not found, a missing role refused
- `scamtrail mcp` without a usable SCAMTRAIL_TOKEN exits 2, saying so
- a client that loses its stream mid-analysis on one api and resumes it with `Last-Event-ID`
  on the other gets every message once, in order, up to the call's result
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from infrastructure.settings import Settings
from tests.auth import token
from tests.e2e.progress_stack import ROOT, child_env, free_port, processes, start_api, start_relay
from tests.e2e.worker_process import WorkerProcess
from tests.fault_toolbox import slow_tools

pytestmark = pytest.mark.e2e

SCAM = "URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top"
SAFE = "Hi Sam, dinner at 7 tomorrow still works? Bring the board game."
TENANT = "acme"
PROTOCOL = "2025-11-25"  # the handshake era with resumable streams (priming events)


@dataclass(frozen=True)
class Stack:
    urls: tuple[str, str]  # two api replicas over one database
    env: dict[str, str]  # the settings of every process, for `scamtrail mcp`


@pytest.fixture
def stack(app_settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    env = child_env(database_url=app_settings.database_url, redis_url=app_settings.redis_url,
                    queue=app_settings.queue)  # fmt: skip
    ports = (free_port(), free_port())
    with processes() as started:
        started.append(start_relay(env, tmp_path / "relay.log"))
        started.extend(start_api(env, port, tmp_path / f"api-{port}.log") for port in ports)
        worker = WorkerProcess(app_settings, tmp_path / "worker.log", **slow_tools(0.3))
        try:
            yield Stack((f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"), env)
        finally:
            worker.stop()


def jwt(roles: tuple[str, ...] = ("submitter", "analyst"), tenant: str = TENANT) -> str:
    return token(tenant, list(roles), "mcp-e2e")


@contextlib.asynccontextmanager
async def over_http(url: str, bearer: str) -> AsyncIterator[Client]:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {bearer}"})
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
        yield client


def over_stdio(stack: Stack, bearer: str) -> Client:
    env = {**stack.env, "SCAMTRAIL_TOKEN": bearer}
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "api.cli", "mcp"], env=env, cwd=ROOT
    )
    return Client(server, read_timeout_seconds=60)


async def analyze(client: Client, content: str) -> tuple[dict[str, Any], list[tuple[float, str]]]:
    seen: list[tuple[float, str]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        assert total == 100
        seen.append((progress, message or ""))

    result = await client.call_tool(
        "analyze_message", {"content": content, "kind": "sms"}, progress_callback=on_progress
    )
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content, seen


async def socket_messages(url: str, task_id: str) -> list[dict[str, Any]]:
    ws_url = url.replace("http://", "ws://") + f"/ws/agent-progress/{task_id}"
    headers = {"Authorization": f"Bearer {jwt()}"}
    async with websockets.connect(ws_url, additional_headers=headers) as ws:
        messages = [json.loads(raw) async for raw in ws]
    return [m for m in messages if "seq" in m]


async def check_analyses(client: Client, api_url: str) -> str:
    """Both messages analysed as the WebSocket reports them; the scam's task id."""
    scam_id = ""
    for content, verdict in ((SCAM, "scam"), (SAFE, "safe")):
        result, progress = await analyze(client, content)
        assert result["verdict"] == verdict and result["status"] == "completed", result
        wire = await socket_messages(api_url, result["task_id"])
        assert progress == [(m["percent"], m["message"]) for m in wire]
        cited = {seq for reason in result["reasons"] for seq in reason["seqs"]}
        assert cited <= {m["seq"] for m in wire} and (cited or verdict == "safe")
        scam_id = scam_id or result["task_id"]
    return scam_id


async def check_refusals(stack: Stack, task_id: str) -> None:
    async with over_http(stack.urls[1], jwt(tenant="elsewhere")) as other:
        found = await other.call_tool("get_task", {"task_id": task_id})
        assert found.is_error and "not found" in _text(found)
    async with over_http(stack.urls[1], jwt(("submitter",))) as submitter:
        review = await submitter.call_tool(
            "review_task", {"task_id": task_id, "decision": "confirm"}
        )
        assert review.is_error and "analyst" in _text(review)


async def test_over_streamable_http(stack: Stack) -> None:
    async with over_http(stack.urls[0], jwt()) as client:
        task_id = await check_analyses(client, stack.urls[0])
    await check_refusals(stack, task_id)


async def test_over_stdio(stack: Stack) -> None:
    async with over_stdio(stack, jwt()) as client:
        task_id = await check_analyses(client, stack.urls[0])
    async with over_stdio(stack, jwt(tenant="elsewhere")) as other:
        found = await other.call_tool("get_audit", {"task_id": task_id})
        assert found.is_error and "not found" in _text(found)
    async with over_stdio(stack, jwt(("analyst",))) as analyst:
        submit = await analyst.call_tool("analyze_message", {"content": SCAM})
        assert submit.is_error and "submitter" in _text(submit)


@pytest.mark.parametrize("value", [None, "not-a-token", token(TENANT, ["submitter"], ttl_s=-60)])
def test_stdio_refuses_to_start_without_a_usable_token(
    app_settings: Settings, value: str | None
) -> None:
    env = child_env(database_url=app_settings.database_url, redis_url=app_settings.redis_url)
    env.pop("SCAMTRAIL_TOKEN", None)
    if value is not None:
        env["SCAMTRAIL_TOKEN"] = value
    command = [sys.executable, "-m", "api.cli", "mcp"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "SCAMTRAIL_TOKEN" in done.stderr and done.stdout == ""


async def test_a_stream_lost_on_one_api_resumes_on_the_other_with_last_event_id(
    stack: Stack,
) -> None:
    headers = {"Authorization": f"Bearer {jwt()}", "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as http:
        session = await _open_session(http, stack.urls[0], headers)
        headers = {**headers, "Mcp-Session-Id": session, "Mcp-Protocol-Version": PROTOCOL}
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "analyze_message", "arguments": {"content": SCAM, "kind": "sms"},
            "_meta": {"progressToken": "p"}}}  # fmt: skip
        first: list[tuple[str, dict[str, Any] | None]] = []
        async with http.stream("POST", f"{stack.urls[0]}/mcp", json=call, headers=headers) as sse:
            async for event in _events(sse):
                first.append(event)
                if sum(1 for _, m in first if m) == 3:  # three messages, then the line drops
                    break
        resume = {**headers, "Last-Event-ID": first[-1][0]}
        async with http.stream("GET", f"{stack.urls[1]}/mcp", headers=resume) as sse:
            assert sse.status_code == 200, await sse.aread()
            rest = [event async for event in _events(sse)]
        other = {**resume, "Authorization": f"Bearer {jwt(tenant='elsewhere')}"}
        assert (await http.get(f"{stack.urls[1]}/mcp", headers=other)).status_code == 404
    assert sum(1 for _, m in rest if m and "method" in m) > 1  # it was lost mid-analysis
    ids = [int(i) for i, _ in first + rest]
    assert ids == sorted(set(ids)), ids  # each once, in order
    messages = [m for _, m in first + rest if m]
    assert messages[-1]["id"] == 2 and not messages[-1]["result"].get("isError"), messages[-1]
    task_id = messages[-1]["result"]["structuredContent"]["task_id"]
    wire = await socket_messages(stack.urls[1], task_id)
    notes = [m["params"] for m in messages[:-1]]
    assert [(n["progress"], n["message"]) for n in notes] == [
        (m["percent"], m["message"]) for m in wire
    ]


async def _open_session(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> str:
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {},
        "clientInfo": {"name": "e2e", "version": "1"}}}  # fmt: skip
    async with http.stream("POST", f"{url}/mcp", json=hello, headers=headers) as sse:
        assert sse.status_code == 200, await sse.aread()
        session = sse.headers["mcp-session-id"]
        async for _, message in _events(sse):
            if message:
                break
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    more = {"Mcp-Session-Id": session, "Mcp-Protocol-Version": PROTOCOL}
    assert (
        await http.post(f"{url}/mcp", json=done, headers={**headers, **more})
    ).status_code == 202
    return session


async def _events(sse: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any] | None]]:
    """(id, message) per SSE event with an id; a priming event's message is None."""
    event_id, data = "", ""
    async for line in sse.aiter_lines():
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif not line and event_id:
            yield event_id, json.loads(data) if data else None
            event_id, data = "", ""


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)
