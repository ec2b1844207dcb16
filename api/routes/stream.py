"""Live progress endpoints: the seed's WebSocket, a multi-task WebSocket, and SSE.

Each turns a connection into a `Follow` and hands it to `api.streaming.progress_stream`; what is
left here is the transport: accept, validate, send, notice the client leaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime

from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect

from api.errors import close_code_for
from api.metrics import StreamMetrics
from api.services import Services
from api.streaming import Close, Follow, Outgoing, check_tasks, progress_stream
from domain.errors import DomainError, InvalidAppend
from domain.progress import error_message

log = logging.getLogger(__name__)
router = APIRouter(tags=["progress"])


@router.websocket("/ws/agent-progress/{task_id}")
async def agent_progress(websocket: WebSocket, task_id: str) -> None:
    """The seed's endpoint: `connected`, the task's history, then live events until it ends.
    `?after=<seq>` resumes after a reconnect."""
    await websocket.accept()
    after = _seq(websocket.query_params.get("after"))
    if after is None:
        await _reject(websocket, InvalidAppend("after must be a non-negative integer"))
        return
    await _serve(websocket, Follow([task_id], {task_id: after}))


@router.websocket("/ws/tasks")
async def tasks_progress(websocket: WebSocket) -> None:
    """Several tasks on one socket (`?ids=a,b,c`), or every task of a tenant (`?tenant=`).
    The tenant comes from the query string until the auth issue takes it from the token."""
    await websocket.accept()
    services: Services = websocket.app.state.services
    ids = [i for i in (websocket.query_params.get("ids") or "").split(",") if i]
    tenant = websocket.query_params.get("tenant") or None
    if (not ids and tenant is None) or len(ids) > services.settings.ws_max_tasks:
        limit = services.settings.ws_max_tasks
        await _reject(websocket, InvalidAppend(f"give ?ids=a,b,c (at most {limit}) or ?tenant="))
        return
    await _serve(websocket, Follow(list(dict.fromkeys(ids)), tenant=tenant))


@router.get("/tasks/{task_id}/events", response_class=StreamingResponse)
async def task_events(
    request: Request,
    task_id: str,
    after: int = Query(0, ge=0),
    last_event_id: str | None = Header(None),
) -> StreamingResponse:
    """Server-Sent Events for clients without WebSockets: `id:` is the seq, so a reconnecting
    EventSource resumes with `Last-Event-ID`. Heartbeats are `event: heartbeat`."""
    services: Services = request.app.state.services
    if last_event_id is not None:
        resumed = _seq(last_event_id)
        if resumed is None:
            raise InvalidAppend("Last-Event-ID must be a non-negative integer")
        after = max(after, resumed)
    await check_tasks(services.store, [task_id], None)
    metrics: StreamMetrics = request.app.state.stream_metrics
    follow = Follow([task_id], {task_id: after})
    return StreamingResponse(
        _sse(services, metrics, follow),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(services: Services, metrics: StreamMetrics, follow: Follow) -> AsyncIterator[str]:
    metrics.open_sockets.labels("sse").inc()
    sent = metrics.messages_sent.labels("sse")
    try:
        yield "retry: 1000\n\n"
        stream = progress_stream(services.store, services.hub, services.settings, metrics, follow)
        async with aclosing(stream) as items:
            async for item in items:
                if isinstance(item, Close):
                    return
                if item.kind == "event":
                    yield f"id: {item.seq}\ndata: {item.text}\n\n"
                else:
                    yield f"event: {item.kind}\ndata: {item.text}\n\n"
                sent.inc()
    finally:
        metrics.open_sockets.labels("sse").dec()


async def _serve(websocket: WebSocket, follow: Follow) -> None:
    services: Services = websocket.app.state.services
    metrics: StreamMetrics = websocket.app.state.stream_metrics
    try:
        await check_tasks(services.store, follow.task_ids, follow.tenant)
    except DomainError as error:
        await _reject(websocket, error)
        return
    metrics.open_sockets.labels("ws").inc()
    stream = progress_stream(services.store, services.hub, services.settings, metrics, follow)
    pump = asyncio.create_task(_pump(websocket, stream, metrics))
    try:
        # The client's side of the socket: we only wait for it to leave. When it does (or after
        # we closed), the pump is cancelled, which unsubscribes and frees the queue.
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except (WebSocketDisconnect, RuntimeError) as error:
        log.info("progress socket %s: receive ended: %r", follow.task_ids, error)
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        metrics.open_sockets.labels("ws").dec()


async def _pump(
    websocket: WebSocket, stream: AsyncGenerator[Outgoing | Close, None], metrics: StreamMetrics
) -> None:
    sent = metrics.messages_sent.labels("ws")
    try:
        async with aclosing(stream) as items:
            async for item in items:
                if isinstance(item, Close):
                    await websocket.close(item.code, item.reason)
                    return
                await websocket.send_text(item.text)
                sent.inc()
    except (WebSocketDisconnect, OSError, RuntimeError) as error:
        # The client went away mid-send; the receive loop notices and cleans up.
        metrics.connection_errors.labels("send").inc()
        log.info("progress socket: send failed, client gone: %r", error)
    except Exception:
        metrics.connection_errors.labels("server").inc()
        log.exception("progress socket: delivery failed")
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.close(1011, "server error")


async def _reject(websocket: WebSocket, error: DomainError) -> None:
    text = json.dumps(error_message(str(error), datetime.now(UTC)))
    log.info("progress socket rejected (%s): %s", close_code_for(error), error)
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await websocket.send_text(text)
        await websocket.close(close_code_for(error), str(error)[:120])


def _seq(text: str | None) -> int | None:
    """A seq from the query string or a header; None if malformed. Absent means 0."""
    if text is None:
        return 0
    return int(text) if text.isdecimal() and len(text) < 12 else None
