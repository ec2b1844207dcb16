"""A small MCP tool server for the remote-tool tests: `python -m tests.mcp_tool_server --port P`
serves the tool `assess` over streamable HTTP at http://127.0.0.1:P/mcp.

`assess(kind, value)` answers as the remote-tool contract says (domain.tools): risk 0.8 with a
signal when the value holds one of RISKY_WORDS, else risk 0 and no signal; a value that holds
"hang" is never answered. What else it does is set by its environment, so that a test can make
it misbehave:

    MCP_TOOL_SERVER_CALLS       a file: every call appends one JSON line {"kind", "value"} as it
                                arrives, before anything else, so the file counts real calls
    MCP_TOOL_SERVER_FAIL_FIRST  the first N calls answer isError ("upstream unavailable")
    MCP_TOOL_SERVER_HANG_FIRST  the first N calls (after the failing ones) never answer
    MCP_TOOL_SERVER_LATENCY_S   every call waits this long before it answers
    MCP_TOOL_SERVER_ANSWER      "structured" (the default), "text" (the JSON as text content
                                only), or "bad" (risk as a string: not the contract)
    MCP_TOOL_SERVER_KEY         when set, a request without the header X-Api-Key: <key> is
                                refused with 401 (the headers of SCAMTRAIL_MCP_TOOLS)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent
from starlette.types import ASGIApp, Receive, Scope, Send

RISKY_WORDS = ("evil", "paypa1", "usps-redelivery")
PATH = "/mcp"


class Behaviour:
    def __init__(self, env: dict[str, str]) -> None:
        self.calls_file = env.get("MCP_TOOL_SERVER_CALLS")
        self.fail_first = int(env.get("MCP_TOOL_SERVER_FAIL_FIRST") or 0)
        self.hang_first = int(env.get("MCP_TOOL_SERVER_HANG_FIRST") or 0)
        self.latency_s = float(env.get("MCP_TOOL_SERVER_LATENCY_S") or 0)
        self.answer = env.get("MCP_TOOL_SERVER_ANSWER") or "structured"
        self.calls = 0

    def record(self, kind: str, value: str) -> None:
        """One line in the calls file (a few bytes, appended at once: no reader sees half)."""
        if self.calls_file:
            with open(self.calls_file, "a") as calls:
                calls.write(json.dumps({"kind": kind, "value": value}) + "\n")


def assessment(value: str) -> dict[str, Any]:
    if not any(word in value.lower() for word in RISKY_WORDS):
        return {"risk": 0.0, "signals": [], "source": "test-server"}
    signal = {"code": "listed", "detail": f"{value} is on the test server's list", "weight": 0.8}
    return {"risk": 0.8, "signals": [signal], "source": "test-server"}


def build_server(behaviour: Behaviour) -> MCPServer:
    server: MCPServer = MCPServer("test-tools")

    @server.tool()
    async def assess(kind: str, value: str) -> CallToolResult:
        """How risky one phone number, domain, e-mail address or URL is."""
        behaviour.calls += 1
        behaviour.record(kind, value)
        if behaviour.calls <= behaviour.fail_first:
            return CallToolResult(content=[text("upstream unavailable")], is_error=True)
        if behaviour.calls <= behaviour.fail_first + behaviour.hang_first or "hang" in value:
            await asyncio.sleep(3600)
        await asyncio.sleep(behaviour.latency_s)
        answer = assessment(value)
        if behaviour.answer == "bad":
            return CallToolResult(content=[], structured_content={**answer, "risk": "high"})
        if behaviour.answer == "text":
            return CallToolResult(content=[text(json.dumps(answer))])
        return CallToolResult(content=[text(json.dumps(answer))], structured_content=answer)

    return server


def text(value: str) -> TextContent:
    return TextContent(type="text", text=value)


class KeyGate:
    """401 for a request without the right X-Api-Key header."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"x-api-key") != self.key:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"no key"})
            return
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    server = build_server(Behaviour(dict(os.environ)))
    app: ASGIApp = server.streamable_http_app(streamable_http_path=PATH, host="127.0.0.1")
    if key := os.environ.get("MCP_TOOL_SERVER_KEY"):
        app = KeyGate(app, key)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")


if __name__ == "__main__":
    main()
