"""Live progress endpoints: the one-task WebSocket (the original wire format), a multi-task
WebSocket, and SSE.

Each turns a connection into a `Follow` and hands it to `api.streaming.progress_stream`; what is
left here is the transport: accept, authenticate, validate, send, notice the client leaving, and
close at the token's expiry (4401; an SSE stream just ends then).

Sockets are accepted before they are refused, so that the client sees the close code (4401,
4403, 4404, 4429): a refusal before `accept` reaches a browser as an anonymous 1006.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.types import Send
from starlette.websockets import WebSocketDisconnect

from api.application.caller import Caller, Forbidden, NotAuthenticated, check_roles
from api.application.refusals import InvalidRequest
from api.caller import caller_for, require, socket_token
from api.errors import REFUSED, close_code_for
from api.limits import ClosePacer, SocketCounter, TooManySockets
from api.metrics import StreamMetrics
from api.services import Services
from api.streaming import Close, Follow, Outgoing, progress_stream
from domain.progress import error_message
from infrastructure.event_store import MAX_VERSION
from infrastructure.outage import POSTGRES_ERRORS

log = logging.getLogger(__name__)
router = APIRouter(tags=["progress"])

READERS = (
    "submitter",
    "analyst",
)  # a submitter follows its own tasks, an analyst any of its tenant


@router.websocket("/ws/agent-progress/{task_id}")
async def agent_progress(websocket: WebSocket, task_id: str) -> None:
    """The one-task endpoint, as the first mobile and web clients use it: `connected`, the
    task's history, then live events until it ends. `?after=<seq>` resumes after a reconnect.
    The token: `Authorization: Bearer`, the subprotocols `bearer, <token>`, or `?token=`."""
    caller = await _accept(websocket)
    if caller is None:
        return
    after = _seq(websocket.query_params.get("after"))
    if after is None:
        await _reject(websocket, InvalidRequest("after must be a non-negative integer"))
        return
    await _serve(websocket, caller, Follow([task_id], {task_id: after}))


@router.websocket("/ws/tasks")
async def tasks_progress(websocket: WebSocket) -> None:
    """Several tasks on one socket (`?ids=a,b,c`), or every task of the caller's tenant
    (`?tenant=`, analysts only). The tenant is always the token's: naming another is 4403."""
    caller = await _accept(websocket)
    if caller is None:
        return
    services: Services = websocket.app.state.services
    ids = [i for i in (websocket.query_params.get("ids") or "").split(",") if i]
    named = websocket.query_params.get("tenant")
    if (not ids and named is None) or len(ids) > services.settings.ws_max_tasks:
        limit = services.settings.ws_max_tasks
        await _reject(websocket, InvalidRequest(f"give ?ids=a,b,c (at most {limit}) or ?tenant="))
        return
    if named is not None and (named not in ("", caller.tenant) or "analyst" not in caller.roles):
        await _reject(websocket, Forbidden("an analyst follows its own tenant's tasks only"))
        return
    tenant = caller.tenant if named is not None else None
    await _serve(websocket, caller, Follow(list(dict.fromkeys(ids)), tenant=tenant))


@router.get("/tasks/{task_id}/events", response_class=StreamingResponse)
async def task_events(
    request: Request,
    task_id: str,
    after: int = Query(0, ge=0, le=MAX_VERSION),
    last_event_id: Annotated[str | None, Header(pattern=r"^\d{1,10}$")] = None,
    caller: Caller = Depends(require(*READERS, query_token=True)),  # noqa: B008
    token: Annotated[
        str | None, Query(description="The bearer token, for EventSource (no headers).")
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events for clients without WebSockets: `id:` is the seq, so a reconnecting
    EventSource resumes with `Last-Event-ID`. Heartbeats are `event: heartbeat`. The stream
    ends when the token expires; reconnect with a fresh one."""
    services: Services = request.app.state.services
    if last_event_id is not None:
        resumed = _seq(last_event_id)
        if resumed is None:
            raise InvalidRequest("Last-Event-ID must be a non-negative integer")
        after = max(after, resumed)
    await services.application.tasks.check_followable(caller, [task_id])
    metrics: StreamMetrics = request.app.state.stream_metrics
    follow = Follow([task_id], {task_id: after})
    sockets: SocketCounter = request.app.state.sockets
    # Refused (429) while a status can still say so; counted inside the stream, whose `finally`
    # runs only once it has started.
    sockets.check(caller.tenant, caller.actor)
    return SseResponse(
        _sse(services, metrics, follow, caller, sockets),
        send_timeout=services.settings.ws_send_timeout_s,
        metrics=metrics,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class SseResponse(StreamingResponse):
    """An event stream whose every send is bounded by `send_timeout` (`ws_send_timeout_s`, as
    for WebSockets). A send that waits longer means the client stopped reading: the stream is
    closed, which frees its subscription and the user's socket slot, and counted as a "stalled"
    connection error. Without the bound such a reader held them as long as TCP kept it open."""

    def __init__(
        self,
        content: AsyncGenerator[str, None],
        *,
        send_timeout: float,
        metrics: StreamMetrics,
        headers: dict[str, str],
    ) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self._events = content
        self._send_timeout = send_timeout
        self._metrics = metrics

    async def stream_response(self, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code,
                 "headers": self.raw_headers}  # fmt: skip
        # Leaving `aclosing` closes the stream: its `finally` frees what it held.
        async with aclosing(self._events) as chunks:
            if not await self._send(send, start):
                return
            async for chunk in chunks:
                body = {"type": "http.response.body", "body": chunk.encode(self.charset),
                        "more_body": True}  # fmt: skip
                if not await self._send(send, body):
                    return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send(self, send: Send, message: dict[str, Any]) -> bool:
        """Send one message; False (counted, logged) when it waited past the timeout."""
        try:
            async with asyncio.timeout(self._send_timeout):
                await send(message)
        except TimeoutError:
            self._metrics.connection_errors.labels(_STALLED).inc()
            log.warning(
                "progress stream (SSE): the client read nothing for %g s; stream given up",
                self._send_timeout,
            )
            return False
        return True


async def _sse(
    services: Services,
    metrics: StreamMetrics,
    follow: Follow,
    caller: Caller,
    sockets: SocketCounter,
) -> AsyncGenerator[str, None]:
    try:
        held = sockets.hold(caller.tenant, caller.actor)
        held.__enter__()
    except TooManySockets:
        return  # another stream of this user opened since the check
    metrics.open_sockets.labels("sse").inc()
    opened = time.monotonic()
    sent = metrics.messages_sent.labels("sse")
    try:
        yield "retry: 1000\n\n"
        stream = progress_stream(services.store, services.hub, services.settings, metrics, follow)
        async with aclosing(stream) as items:
            async for item in items:
                if isinstance(item, Close) or _expired(caller):
                    return
                if item.kind == "event":
                    yield f"id: {item.seq}\ndata: {item.text}\n\n"
                else:
                    yield f"event: {item.kind}\ndata: {item.text}\n\n"
                sent.inc()
    except POSTGRES_ERRORS as error:
        # The stream ends; EventSource reconnects after `retry` with Last-Event-ID.
        metrics.connection_errors.labels("database").inc()
        log.warning("progress stream (SSE): PostgreSQL unreachable (%r); ending it", error)
    finally:
        held.__exit__(None, None, None)
        metrics.open_sockets.labels("sse").dec()
        metrics.socket_seconds.labels("sse").observe(time.monotonic() - opened)


async def _accept(websocket: WebSocket) -> Caller | None:
    """Accept the socket and return its caller; or close it with 4401 / 4403 and return None."""
    token, subprotocol = socket_token(websocket)
    await websocket.accept(subprotocol=subprotocol)
    try:
        return check_roles(caller_for(websocket.app.state.verifier, token), READERS)
    except (NotAuthenticated, Forbidden) as error:
        await _reject(websocket, error)
        return None


async def _serve(websocket: WebSocket, caller: Caller, follow: Follow) -> None:
    services: Services = websocket.app.state.services
    metrics: StreamMetrics = websocket.app.state.stream_metrics
    try:
        await services.application.tasks.check_followable(caller, follow.task_ids)
        held = websocket.app.state.sockets.hold(caller.tenant, caller.actor)
        held.__enter__()
    except REFUSED as error:
        await _reject(websocket, error)
        return
    except POSTGRES_ERRORS as error:
        metrics.connection_errors.labels("database").inc()
        log.warning("progress socket: PostgreSQL unreachable (%r); closing with 1013", error)
        await _close(websocket, 1013, "database unavailable, try again")
        return
    metrics.open_sockets.labels("ws").inc()
    opened = time.monotonic()
    stream = progress_stream(services.store, services.hub, services.settings, metrics, follow)
    send_timeout = services.settings.ws_send_timeout_s
    pacer: ClosePacer = websocket.app.state.close_pacer
    pump = asyncio.create_task(_pump(websocket, stream, metrics, send_timeout, pacer))
    handler = asyncio.current_task()
    assert handler is not None
    # A client that stopped reading leaves the pump stuck in a send and the loop below waiting
    # for a frame that never comes: the pump gives up, and this handler is woken to end.
    pump.add_done_callback(lambda done: _stalled(done) and handler.cancel())
    expiry = _ExpiryClose(websocket, caller, pump)
    try:
        # The client's side of the socket: we only wait for it to leave. When it does (or after
        # we closed), the pump is cancelled, which unsubscribes and frees the queue.
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except (WebSocketDisconnect, RuntimeError) as error:
        log.info("progress socket %s: receive ended: %r", follow.task_ids, error)
    except asyncio.CancelledError:
        if not _stalled(pump):
            raise
        handler.uncancel()
        log.warning(
            "progress socket %s: the client read nothing for %g s; socket given up",
            follow.task_ids,
            send_timeout,
        )
    finally:
        await expiry.disarm()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        held.__exit__(None, None, None)
        metrics.open_sockets.labels("ws").dec()
        metrics.socket_seconds.labels("ws").observe(time.monotonic() - opened)


def _expired(caller: Caller) -> bool:
    return caller.expires_at is not None and datetime.now(UTC) >= caller.expires_at


class _ExpiryClose:
    """At the token's `exp`: stop sending, then close with 4401. The pump is stopped first so
    that no message races the close frame. A timer until then, not a task per socket: a task
    (and its sleeping coroutine) is about 1 KB, times thousands of idle sockets."""

    def __init__(
        self, websocket: WebSocket, caller: Caller, pump: asyncio.Task[str | None]
    ) -> None:
        self._websocket, self._pump = websocket, pump
        self._closing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        if caller.expires_at is not None:
            delay = (caller.expires_at - datetime.now(UTC)).total_seconds()
            self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._fire)

    def _fire(self) -> None:
        self._closing = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        self._pump.cancel()
        # Bounded: a cancellation can be swallowed inside a library's wait_for (redis-py's, on
        # Python 3.11), and the 4401 must go out regardless.
        await asyncio.wait({self._pump}, timeout=2)
        await _reject(self._websocket, NotAuthenticated("token expired"))

    async def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._closing is not None:
            self._closing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._closing


_STALLED = "stalled"


def _stalled(pump: asyncio.Task[str | None]) -> bool:
    return (
        pump.done()
        and not pump.cancelled()
        and pump.exception() is None
        and (pump.result() == _STALLED)
    )


class _Sending(Protocol):
    """What the pump uses of a WebSocket."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


async def _pump(
    websocket: _Sending,
    stream: AsyncGenerator[Outgoing | Close, None],
    metrics: StreamMetrics,
    send_timeout: float,
    pacer: ClosePacer | None = None,
) -> str | None:
    """Send what the delivery loop yields. A failed send means the client is gone (the receive
    loop notices and cleans up); a failure of the loop itself closes the socket with a code the
    client can act on: 1013 "try again later" when PostgreSQL is unreachable, 1011 for a bug.
    Either way the client reconnects with `after=<seq>` and loses nothing; a database error is
    never taken for a client gone, which would leave a socket open with nothing to send. A
    send that waits past `send_timeout` returns _STALLED: the client stopped reading. A socket
    whose tasks ended waits for its turn to close (`pacer`, `ws_close_rate`) with its
    subscription already let go; a client that closes first (most do, on the terminal event)
    ends the wait."""
    sent = metrics.messages_sent.labels("ws")
    try:
        async with aclosing(stream) as items:
            async for item in items:
                if isinstance(item, Close):
                    if pacer and item.finished:
                        await items.aclose()  # unsubscribed now, not after the wait
                        await pacer.wait_turn()
                    await _close(websocket, item.code, item.reason)
                    return None
                try:
                    async with asyncio.timeout(send_timeout):
                        await websocket.send_text(item.text)
                except TimeoutError:
                    metrics.connection_errors.labels("stalled").inc()
                    return _STALLED
                except (WebSocketDisconnect, OSError, RuntimeError) as error:
                    metrics.connection_errors.labels("send").inc()
                    log.info("progress socket: send failed, client gone: %r", error)
                    return None
                sent.inc()
    except POSTGRES_ERRORS as error:
        metrics.connection_errors.labels("database").inc()
        log.warning("progress socket: PostgreSQL unreachable (%r); closing with 1013", error)
        await _close(websocket, 1013, "database unavailable, reconnect with after=<seq>")
    except Exception:
        metrics.connection_errors.labels("server").inc()
        log.exception("progress socket: delivery failed")
        await _close(websocket, 1011, "server error")
    return None


async def _close(websocket: _Sending, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await websocket.close(code, reason)


async def _reject(websocket: WebSocket, error: Exception) -> None:
    text = json.dumps(error_message(str(error), datetime.now(UTC)))
    log.info("progress socket rejected (%s): %s", close_code_for(error), error)
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await websocket.send_text(text)
        await websocket.close(close_code_for(error), str(error)[:120])


def _seq(text: str | None) -> int | None:
    """A seq from the query string or a header; None if malformed. Absent means 0."""
    if text is None:
        return 0
    if not (text.isdecimal() and len(text) <= 10) or int(text) > MAX_VERSION:
        return None
    return int(text)
