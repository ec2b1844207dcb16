"""The api's `/mcp` endpoint: MCP over streamable HTTP, with the REST api's bearer tokens.

`McpEndpoint` is the ASGI app at `/mcp`; it serves once the api's lifespan has started it
(`running`), with the session manager of the SDK inside. Requests pass `BearerGate` first (401
without a valid token). Sessions are stateful (the SDK keeps each in the process that opened
it, bound to the identity that opened it) and their streams resumable: every message is stored
in PostgreSQL before it is sent (api/mcp/event_store.py).

A client that reconnects with `Last-Event-ID` to a replica that does not hold its session (the
first one went away, or a load balancer sent it elsewhere) gets the stream from the log here:
the messages after that id, then the ones the other replica keeps storing, until the request's
response. The session itself stays where it was; a new request needs a new session there.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.streamable_http import (
    LAST_EVENT_ID_HEADER,
    MCP_SESSION_ID_HEADER,
    StreamableHTTPServerTransport,
)
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from api.application.caller import Caller
from api.mcp.auth import CALLER_KEY, BearerGate, owner_of, request_caller
from api.mcp.event_store import PostgresEventStore, event_position
from api.mcp.server import build_server
from api.metrics import StreamMetrics
from api.services import Services
from infrastructure.mcp_streams import McpStreams

# How often a replay of another replica's stream looks for new messages, and how long it
# waits without any before it ends (the client then reconnects with its newest event id).
TAIL_POLL_S = 0.25
TAIL_IDLE_S = 60.0


class _SessionManager(StreamableHTTPSessionManager):
    """The SDK's manager, with each session's transport given its own view of the event store
    (rows tagged with the session and its owner)."""

    def _admit_session(
        self, requestor: AuthorizationContext | None
    ) -> StreamableHTTPServerTransport | None:
        transport = super()._admit_session(requestor)
        store = self.event_store
        if transport is not None and isinstance(store, PostgresEventStore):
            session_id = transport.mcp_session_id or ""
            owner = json.dumps([requestor["client_id"], requestor["subject"]] if requestor else [])
            transport._event_store = store.for_session(session_id, owner)
        return transport

    def holds(self, session_id: str) -> bool:
        return session_id in self._server_instances


class McpEndpoint:
    """ASGI app for `/mcp`; 503 until `running` has started it."""

    def __init__(self) -> None:
        self._manager: _SessionManager | None = None
        self._streams: McpStreams | None = None
        self._gate = BearerGate(self._serve, self._verifier)
        self._verify: Any = None

    def _verifier(self) -> Any:
        return self._verify

    @asynccontextmanager
    async def running(
        self, services: Services, metrics: StreamMetrics, verifier: Any
    ) -> AsyncIterator[None]:
        """Serve `/mcp` while inside: the MCP server over `services`, tokens checked by
        `verifier` (None: auth disabled, as for the REST api)."""
        server = build_server(services, metrics, request_caller)
        manager = _SessionManager(
            app=server._lowlevel_server, event_store=PostgresEventStore(services.mcp_streams)
        )
        async with _run_in_own_task(manager):
            self._manager, self._streams, self._verify = manager, services.mcp_streams, verifier
            try:
                yield
            finally:
                self._manager = self._streams = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await self._gate(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager, streams = self._manager, self._streams
        if manager is None or streams is None:
            await JSONResponse({"detail": "starting"}, 503)(scope, receive, send)
            return
        session_id, last_event_id = (
            _header(scope, MCP_SESSION_ID_HEADER),
            _header(scope, LAST_EVENT_ID_HEADER),
        )
        if (
            scope["method"] == "GET"
            and session_id
            and last_event_id
            and not manager.holds(session_id)
        ):
            await _replay_from_log(streams, scope[CALLER_KEY], session_id, last_event_id, send)
            return
        await manager.handle_request(scope, receive, send)


@asynccontextmanager
async def _run_in_own_task(manager: StreamableHTTPSessionManager) -> AsyncIterator[None]:
    """`manager.run()` entered and left by a task of its own: its task group must be left by
    the task that entered it, and whoever runs the app's lifespan may start it in one task and
    end it in another (a test harness does)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with manager.run():
            started.set()
            await stop.wait()

    runner = asyncio.create_task(run(), name="mcp-session-manager")
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait([runner, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if runner.done():
        await runner  # it failed to start: raise why
    try:
        yield
    finally:
        stop.set()
        await runner


async def _replay_from_log(
    streams: McpStreams, caller: Caller, session_id: str, last_event_id: str, send: Send
) -> None:
    """Another replica's stream, from the log: 404 unless the event id is of this session and
    the caller opened it; then an SSE stream of each stored message after it."""
    position = event_position(last_event_id)
    found = await streams.locate(position) if position is not None else None
    if found is None or found.session_id != session_id or found.owner != owner_of(caller):
        await _send_json(send, 404, {"detail": "no such stream to resume"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache, no-transform"),
        (MCP_SESSION_ID_HEADER.encode(), session_id.encode()),
    ]})  # fmt: skip
    await _tail(streams, found.session_id, found.stream_id, found.position, send)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _tail(
    streams: McpStreams, session_id: str, stream_id: str, after: int, send: Send
) -> None:
    """Send the stream's messages after `after` as SSE events, as they are stored, until the
    request's response, or until none came for TAIL_IDLE_S."""
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < TAIL_IDLE_S:
        page = await streams.after(session_id, stream_id, after)
        for row in page:
            after = row.position
            data = json.dumps(row.message, separators=(",", ":"))
            chunk = f"event: message\nid: {row.position}\ndata: {data}\n\n".encode()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if _answers(row.message, stream_id):
                return
        if page:
            quiet_since = time.monotonic()
        else:
            await anyio.sleep(TAIL_POLL_S)


def _answers(message: dict[str, Any] | None, stream_id: str) -> bool:
    """Whether `message` is the response (or error) to the request `stream_id` names."""
    if message is None or "method" in message:
        return False
    return str(message.get("id")) == stream_id


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: str) -> str:
    wanted = name.encode()
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return ""
