"""An SSE reader that stops reading is given up after `ws_send_timeout_s`, as a WebSocket one
is: the stream is closed (its `finally` frees the subscription and the user's slot) and the
connection error is counted as "stalled"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from api.metrics import StreamMetrics
from api.routes.stream import SseResponse

pytestmark = pytest.mark.unit


def stalled_count(metrics: StreamMetrics) -> float:
    value = metrics.registry.get_sample_value(
        "scamtrail_progress_connection_errors_total", {"reason": "stalled"}
    )
    return value or 0.0


async def test_a_send_that_blocks_past_the_timeout_closes_the_stream() -> None:
    closed = asyncio.Event()

    async def events() -> AsyncGenerator[str, None]:
        try:
            while True:
                yield "event: heartbeat\ndata: {}\n\n"
        finally:
            closed.set()  # what `_sse` does here: unsubscribe, free the socket slot

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)
        if len(sent) > 3:  # the client's window is shut: this send never completes
            await asyncio.Event().wait()

    metrics = StreamMetrics()
    response = SseResponse(events(), send_timeout=0.2, metrics=metrics, headers={})
    await asyncio.wait_for(response.stream_response(send), timeout=5)
    assert closed.is_set()
    assert stalled_count(metrics) == 1
    assert sent[0]["type"] == "http.response.start"
    assert not any(m.get("more_body") is False for m in sent)  # never a clean end: given up


async def test_a_reader_that_keeps_up_gets_the_whole_stream() -> None:
    async def events() -> AsyncGenerator[str, None]:
        for i in range(3):
            yield f"id: {i}\ndata: x\n\n"

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    metrics = StreamMetrics()
    await SseResponse(events(), send_timeout=0.2, metrics=metrics, headers={}).stream_response(send)
    assert [m.get("body") for m in sent[1:]] == [
        b"id: 0\ndata: x\n\n", b"id: 1\ndata: x\n\n", b"id: 2\ndata: x\n\n", b"",
    ]  # fmt: skip
    assert sent[-1]["more_body"] is False
    assert stalled_count(metrics) == 0
