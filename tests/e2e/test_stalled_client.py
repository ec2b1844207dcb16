"""A client that stops reading (its TCP window shut, the process alive) is given up after
`ws_send_timeout_s`: its queue, subscription and the user's socket slot are freed, and it is
counted, instead of holding them for as long as the TCP connection lasts."""

from __future__ import annotations

import base64
import os
import socket
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import events as ev
from infrastructure.event_store import EventStore
from tests.e2e.progress_stack import (
    acme_token,
    append_steps,
    child_env,
    free_port,
    processes,
    start_api,
    submit,
)
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


async def metric(http: str, name: str, label: str = "") -> float:
    async with httpx.AsyncClient(base_url=http, timeout=5) as client:
        text = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and label in line and not line.startswith("#")
    )


def connect_and_stop_reading(port: int, path: str) -> socket.socket:
    """Open a WebSocket by hand with a tiny receive buffer, read the 101, then read no more."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


async def test_a_client_that_stops_reading_is_given_up(
    migrated_database: str, redis_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    store, port = EventStore(engine), free_port()
    http = f"http://127.0.0.1:{port}"
    task = f"task-{uuid.uuid4()}"
    await submit(store, task)
    # About 9 MB of history: more than the kernel buffers of both ends hold.
    big = ev.ProgressReported(message="x" * 60_000, percent=5)
    await append_steps(store, task, [big] * 150)
    env = child_env(
        database_url=migrated_database, redis_url=redis_url, ws_send_timeout_s=1, ws_heartbeat_s=1
    )
    with processes() as started:
        started.append(start_api(env, port, tmp_path / "api.log"))
        sock = connect_and_stop_reading(port, f"/ws/agent-progress/{task}?token={acme_token()}")
        try:
            await eventually(
                lambda: metric(http, "scamtrail_progress_sockets_open", 'transport="ws"'),
                until=lambda sockets: sockets == 0,
                within=20,
                what="the stalled socket given up",
                interval=0.2,
            )
            assert await metric(http, "scamtrail_progress_connection_errors_total", "stalled") == 1
            assert await metric(http, "scamtrail_progress_hub_subscribers") == 0
        finally:
            sock.close()
