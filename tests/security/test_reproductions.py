"""Attacks on the running system, against real processes: `scamtrail api` under uvicorn,
`scamtrail relay` and `scamtrail worker`, talking to real PostgreSQL and Redis over real
sockets. Each test is one attack and what must hold under it (docs/SECURITY.md, the threat model).

Isolation of indicators between tenants and exhaustion of the HTTP server have their own modules
here (test_indicator_isolation.py, test_exhaustion.py)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
import pytest
import websockets
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.event_store import EventStore
from tests.auth import TEST_SECRET, token
from tests.e2e.progress_stack import (
    Process,
    child_env,
    free_port,
    processes,
    start_api,
    start_relay,
    submit,
)
from tests.factories import progress
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

TENANT = f"sec-{uuid.uuid4().hex[:8]}"


@dataclass
class Stack:
    http: str
    ws: str
    api: Process


@pytest.fixture(scope="module")
def stack(
    migrated_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    port, logs = free_port(), tmp_path_factory.mktemp("security")
    env = child_env(
        database_url=migrated_database,
        redis_url=redis_url,
        queue=f"scamtrail:test:{uuid.uuid4().hex[:12]}",
        relay_lock_retry_s=0.2,
        ws_poll_s=0.1,
    )
    with processes() as started:
        started.append(start_relay(env, logs / "relay.log"))
        worker = [sys.executable, "-m", "api.cli", "worker"]
        started.append(Process(worker, env, logs / "worker.log"))
        started.append(api := start_api(env, port, logs / "api.log"))
        yield Stack(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", api)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token(TENANT, ['submitter', 'analyst'])}"}
    async with httpx.AsyncClient(base_url=stack.http, headers=headers, timeout=10) as client:
        yield client


async def finished(http: httpx.AsyncClient, task: str, within: float = 60) -> dict[str, object]:
    async def view() -> dict[str, object]:
        return dict((await http.get(f"/tasks/{task}")).json())

    return await eventually(
        view,
        until=lambda v: v["status"] in ("completed", "failed", "cancelled"),
        within=within,
        what=f"task {task} finished",
        interval=0.1,
    )


def on_database(url: str, number: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{number}"))


async def test_a_publish_from_any_redis_client_never_reaches_a_progress_socket(
    stack: Stack, engine: AsyncEngine, redis_url: str
) -> None:
    """`PUBLISH agent_progress:<id>` from another client of the Redis server (here on another
    database number: Pub/Sub ignores them) tells a socket a running task completed "safe": the
    hub drops it, and the task's real events still come."""
    store, task = EventStore(engine), f"task-{uuid.uuid4()}"
    await submit(store, task)  # tenant "acme", no job: the task stays running
    url = f"{stack.ws}/ws/agent-progress/{task}"
    headers = {"Authorization": f"Bearer {token('acme', ['submitter', 'analyst'])}"}
    async with websockets.connect(url, additional_headers=headers) as socket:
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["step"] == "connected"
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["seq"] == 1
        forged = {
            "step": "completed", "tool": None, "message": "Analysis complete: safe",
            "percent": 100, "timestamp": "2026-01-01T00:00:00Z", "error": False, "seq": 2,
            "task_id": task, "event_id": str(uuid.uuid4()), "event_type": "TaskCompleted",
            "data": {"verdict": "safe"}, "status": "completed",
        }  # fmt: skip
        outsider = Redis.from_url(on_database(redis_url, 3))
        try:
            assert await outsider.publish(f"agent_progress:{task}", json.dumps(forged)) == 1
        finally:
            await outsider.aclose()
        # A negative check: the hub reads a publish within milliseconds of it, so a forgery it let
        # through would arrive well within 1 s.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(socket.recv(), 1.0)
        await store.append(task, [progress(40)], 1)
        real = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert (real["seq"], real["percent"], real["event_type"]) == (2, 40, "ProgressReported")


async def test_metadata_is_bounded_as_a_whole(http: httpx.AsyncClient) -> None:
    """50 metadata keys of 40 KB each (2 MB in all, each key under its own bound) are a 413."""
    metadata = {f"key{i}": "x" * 40_000 for i in range(50)}
    answer = await http.post("/tasks", json={"content": "hi", "kind": "sms", "metadata": metadata})
    assert answer.status_code == 413
    assert "metadata" in answer.json()["detail"]


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": str(int(time.time()) + 600)},  # a string where a number belongs
        {"exp": 253402300799},  # the year 9999
    ],
    ids=["exp-as-string", "exp-in-9999"],
)
async def test_tokens_that_should_not_verify_do_not(
    stack: Stack, claims: dict[str, object]
) -> None:
    """`exp` as a string, and an expiry in the year 9999, are refused."""
    body = {"sub": "mallory", "tenant": TENANT, "roles": ["analyst"], "iat": int(time.time())}
    forged = jwt.encode({**body, **claims}, TEST_SECRET, algorithm="HS256")
    async with httpx.AsyncClient(base_url=stack.http, timeout=10) as client:
        answer = await client.get("/tasks", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401


async def test_a_token_in_an_encoded_query_parameter_is_not_logged(stack: Stack) -> None:
    """A token in `?t%6Fken=` (an encoded `token`) is not written to the access log in clear."""
    secret = token(TENANT, ["analyst"], sub=f"logged-{uuid.uuid4().hex[:6]}")
    mark = len(await asyncio.to_thread(stack.api.output))
    async with httpx.AsyncClient(base_url=stack.http, timeout=10) as client:
        await client.get(f"/tasks?t%6Fken={secret}")
        await client.get(f"/tasks?%74%6f%6B%65%6E={secret}")
    # The access log line is written after the response: wait for both requests' lines.
    logged = await eventually(
        lambda: asyncio.to_thread(stack.api.output),
        until=lambda log: log[mark:].count("/tasks?") >= 2,
        within=10,
        what="both requests in the access log",
    )
    assert "/tasks?" in logged  # the requests were logged...
    assert secret not in logged and secret.split(".")[2] not in logged  # ...the token was not


async def test_concurrent_reviews_all_land(http: httpx.AsyncClient) -> None:
    """20 analysts reviewing one task at once: every review lands (no `409`)."""
    submitted = await http.post("/tasks", json={"content": "Lunch at 1?", "kind": "sms"})
    task = submitted.json()["task_id"]
    assert (await finished(http, task))["status"] == "completed"
    answers = await asyncio.gather(
        *(
            http.post(
                f"/tasks/{task}/reviews",
                json={"decision": "confirm", "note": f"analyst {i}"},
                headers={"Authorization": f"Bearer {token(TENANT, ['analyst'], f'a{i}')}"},
            )
            for i in range(20)
        )
    )
    assert [a.status_code for a in answers] == [201] * 20
    audit = (await http.get(f"/tasks/{task}/audit")).json()
    assert len(audit["reviews"]) == 20


async def test_hostile_content_is_analysed_in_linear_time(http: httpx.AsyncClient) -> None:
    """64 KB of "$" + "1,000" * 13,000, a worst case for a pattern that backtracks, 30 times at
    once: the worker analyses all 30 while /healthz keeps answering within 1 s. That extraction
    is linear in its input is shown without a clock in tests/unit/test_extraction_adversarial.py."""
    content = ("$" + "1,000" * 13_000)[: 64 * 1024]
    started = time.monotonic()
    answers = await asyncio.gather(
        *(http.post("/tasks", json={"content": content, "kind": "text"}) for _ in range(30))
    )
    assert {a.status_code for a in answers} == {202}
    slowest_health = 0.0
    tasks = [a.json()["task_id"] for a in answers]
    pending = set(tasks)
    async with asyncio.timeout(60):
        while pending:
            began = time.monotonic()
            assert (await http.get("/healthz")).status_code == 200
            slowest_health = max(slowest_health, time.monotonic() - began)
            for task in list(pending):
                if (await http.get(f"/tasks/{task}")).json()["status"] == "completed":
                    pending.discard(task)
            await asyncio.sleep(0.05)
    assert slowest_health < 1.0, slowest_health
    print(f"30 hostile analyses in {time.monotonic() - started:.1f} s")
