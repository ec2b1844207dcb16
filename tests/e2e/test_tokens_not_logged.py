"""Tokens never reach the logs: a real api (DEBUG, so the websockets library logs handshake
headers too) and relay serve HTTP, SSE and WebSockets with tokens in the header, the query and
the subprotocol, plus refusals; then every line they logged is searched for each token."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.event_store import EventStore
from tests.auth import token
from tests.e2e.progress_stack import (
    TENANT,
    append_steps,
    child_env,
    free_port,
    processes,
    record,
    seed_steps,
    start_api,
    start_relay,
    submit,
)

pytestmark = pytest.mark.e2e


async def test_no_token_appears_in_any_log(
    migrated_database: str, redis_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    store, port = EventStore(engine), free_port()
    env = child_env(database_url=migrated_database, redis_url=redis_url, log_level="DEBUG",
                    ws_heartbeat_s=0.2, ws_idle_timeout_s=2)  # fmt: skip
    good = token(TENANT, ["submitter", "analyst"], f"log-{uuid.uuid4().hex[:6]}")
    query = token(TENANT, ["analyst"], "browser")
    protocol = token(TENANT, ["analyst"], "subprotocol")
    expired = token(TENANT, ["analyst"], "late", ttl_s=-60)
    forged = token(TENANT, ["analyst"], "forger", secret="not-the-secret-" * 3)
    http, ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    with processes() as started:
        started.append(start_relay(env, tmp_path / "relay.log"))
        started.append(start_api(env, port, tmp_path / "api.log"))
        task = f"task-{uuid.uuid4()}"
        await submit(store, task)
        await append_steps(store, task, seed_steps())
        async with httpx.AsyncClient(base_url=http, timeout=10) as client:
            assert (await client.get("/tasks", headers=bearer(good))).status_code == 200
            sse = await client.get(f"/tasks/{task}/events", params={"token": query})
            assert sse.status_code == 200
            assert (await client.get("/tasks", headers=bearer(forged))).status_code == 401
            assert (await client.get("/tasks", params={"token": expired})).status_code == 401
            too_big = await client.post("/tasks", headers=bearer(good), json={
                "content": "x" * 70_000, "kind": "sms"})  # fmt: skip
            assert too_big.status_code == 413
        got = await record(f"{ws}/ws/agent-progress/{task}?token={query}", within=10)
        assert got.close_code == 1000 and got.seqs
        async with websockets.connect(f"{ws}/ws/agent-progress/{task}",
                                      subprotocols=["bearer", protocol]) as socket:  # type: ignore[list-item]  # fmt: skip
            assert socket.subprotocol == "bearer"
            await asyncio.wait_for(socket.recv(), 5)
        late = await record(f"{ws}/ws/tasks?ids={task}&token={expired}", within=10, bearer=expired)
        assert late.close_code == 4401
    logs = "".join(p.output() for p in started)
    assert "WebSocket /ws/agent-progress" in logs and "[redacted]" in logs  # it was logged
    for secret in (good, query, protocol, expired, forged):
        assert secret not in logs
        assert secret.split(".")[2] not in logs  # not even the signature alone


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}
