"""What the first mobile and web clients rely on, against real processes: `scamtrail api` under
uvicorn and `scamtrail relay`, on the test PostgreSQL and Redis, with heartbeat and idle timeout
shortened."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import events as ev
from infrastructure.event_store import EventStore
from tests.auth import token
from tests.e2e.progress_stack import (
    Process,
    Recorded,
    acme_token,
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
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

HEARTBEAT_S, IDLE_S = 0.4, 2.5
SEED_FIELDS = {"step", "tool", "message", "percent", "timestamp", "error"}
OUR_FIELDS = {"seq", "task_id", "event_id", "event_type", "data"}
SEED_STEPS = {"entity_extraction", "scam_db", "exa_search", "domain_reputation",
              "phone_validator", "reasoning", "completed"}  # fmt: skip


@dataclass
class Stack:
    ws: str
    http: str
    relay: Process
    api: Process


@pytest.fixture(scope="module")
def stack(migrated_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Stack]:  # fmt: skip
    port, logs = free_port(), tmp_path_factory.mktemp("live-progress")
    env = child_env(
        database_url=migrated_database, redis_url=redis_url, ws_heartbeat_s=HEARTBEAT_S,
        ws_idle_timeout_s=IDLE_S, ws_poll_s=0.1, relay_lock_retry_s=0.2,
    )  # fmt: skip
    with processes() as started:
        started.append(relay := start_relay(env, logs / "relay.log"))
        started.append(api := start_api(env, port, logs / "api.log"))
        yield Stack(f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", relay, api)


@pytest.fixture
def live(engine: AsyncEngine) -> EventStore:
    return EventStore(engine)  # no truncation: the relay is running


def task_id() -> str:
    return f"task-{uuid.uuid4()}"


async def connect_and_record(
    url: str, within: float = 20.0, bearer: str | None = None
) -> asyncio.Task[Recorded]:
    """Start recording and return once the server said `connected`."""
    connected = asyncio.Event()
    recording = asyncio.create_task(record(url, within=within, connected=connected, bearer=bearer))
    waiter = asyncio.create_task(connected.wait())
    await asyncio.wait({recording, waiter}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    assert connected.is_set() or recording.done(), "no `connected` message within 10 s"
    return recording


async def test_full_flow_history_then_live_then_close(stack: Stack, live: EventStore) -> None:
    task = task_id()
    await submit(live, task)
    await append_steps(live, task, seed_steps()[:3])  # history: versions 2-4
    recording = await connect_and_record(f"{stack.ws}/ws/agent-progress/{task}")
    await append_steps(live, task, seed_steps()[3:], after=4, pause=0.01)  # live
    got = await asyncio.wait_for(recording, 20)

    first = got.messages[0]
    assert first["step"] == "connected" and first["task_id"] == task
    assert got.seqs == list(range(1, 2 + len(seed_steps())))
    for message in got.events:
        assert message.keys() >= SEED_FIELDS | OUR_FIELDS
        assert 0 <= message["percent"] <= 100 and message["error"] is False
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", message["timestamp"])
        assert message["task_id"] == task
    assert {m["step"] for m in got.events} == SEED_STEPS
    tools = {m["tool"] for m in got.events if m["tool"]}
    assert tools == {"scam_database", "web_search", "domain_reputation", "phone_validator"}
    assert got.events[-1]["step"] == "completed"
    assert got.close_code == 1000


async def test_heartbeat_then_idle_timeout(stack: Stack, live: EventStore) -> None:
    task = task_id()
    await submit(live, task)
    got = await record(f"{stack.ws}/ws/agent-progress/{task}", within=IDLE_S + 5)

    assert got.seqs == [1]
    beats = got.heartbeats
    assert len(beats) >= int(IDLE_S / HEARTBEAT_S) - 2, got.messages
    assert all(set(b) == {"heartbeat", "timestamp"} and b["timestamp"].endswith("Z") for b in beats)
    assert got.close_code == 1000 and "idle" in got.close_reason


async def test_failed_task_sends_the_error_and_closes(stack: Stack, live: EventStore) -> None:
    task = task_id()
    await submit(live, task)
    recording = await connect_and_record(f"{stack.ws}/ws/agent-progress/{task}")
    await append_steps(live, task, [ev.TaskFailed(error="scam database unreachable")])
    got = await asyncio.wait_for(recording, 10)

    last = got.events[-1]
    assert last["step"] == "failed" and last["error"] is True
    assert last["message"] == "scam database unreachable"
    assert got.close_code == 1000


async def test_unknown_task_and_malformed_after(stack: Stack, live: EventStore) -> None:
    got = await record(f"{stack.ws}/ws/agent-progress/{task_id()}", within=10)
    (error,) = got.messages
    assert error["step"] == "failed" and error["error"] is True and "not found" in error["message"]
    assert got.close_code == 4404

    task = task_id()
    await submit(live, task)
    for bad in ("abc", "-1", "1.5"):
        got = await record(f"{stack.ws}/ws/agent-progress/{task}?after={bad}", within=10)
        assert got.close_code == 4400 and got.messages[0]["error"] is True


async def test_late_joiner_gets_the_whole_history(stack: Stack, live: EventStore) -> None:
    task = task_id()
    await submit(live, task)
    await append_steps(live, task, seed_steps())
    got = await record(f"{stack.ws}/ws/agent-progress/{task}", within=10)
    assert got.messages[0]["step"] == "connected"
    assert got.seqs == list(range(1, 2 + len(seed_steps())))
    assert got.close_code == 1000


async def test_reconnect_with_after_gets_exactly_the_rest(stack: Stack, live: EventStore) -> None:
    task = task_id()
    await submit(live, task)
    await append_steps(live, task, seed_steps()[:4])
    first = await record(f"{stack.ws}/ws/agent-progress/{task}?after=0", within=IDLE_S + 5)
    assert first.seqs == [1, 2, 3, 4, 5]  # then idle: the client "drops"
    recording = await connect_and_record(f"{stack.ws}/ws/agent-progress/{task}?after=3")
    await append_steps(live, task, seed_steps()[4:], after=5)
    second = await asyncio.wait_for(recording, 10)
    assert second.seqs == list(range(4, 2 + len(seed_steps())))


async def metric(stack: Stack, name: str) -> float:
    async with httpx.AsyncClient(base_url=stack.http, timeout=5) as http:
        text = (await http.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_disconnects_release_sockets_queues_subscriptions_and_tasks(
    stack: Stack, live: EventStore, redis_url: str
) -> None:
    names = ["scamtrail_progress_sockets_open", "scamtrail_progress_hub_subscribers",
             "scamtrail_progress_hub_channels", "scamtrail_asyncio_tasks"]  # fmt: skip
    before = {n: await metric(stack, n) for n in names}
    task = task_id()
    await submit(live, task)
    url = f"{stack.ws}/ws/agent-progress/{task}"
    headers = {"Authorization": f"Bearer {acme_token()}"}
    clients = [await websockets.connect(url, additional_headers=headers) for _ in range(30)]
    for client in clients:
        assert json.loads(await asyncio.wait_for(client.recv(), 5))["step"] == "connected"
    redis = Redis.from_url(redis_url)
    try:
        channel = f"agent_progress:{task}"
        assert (await redis.pubsub_numsub(channel))[0][1] == 1  # ONE subscription per process
        assert await metric(stack, names[0]) == before[names[0]] + 30
        for client in clients[:15]:
            await client.close()
        for client in clients[15:]:
            client.transport.abort()  # vanish without a close frame

        async def released() -> bool:
            now = {n: await metric(stack, n) for n in names}
            numsub = (await redis.pubsub_numsub(channel))[0][1]
            return now == before and numsub == 0

        await eventually(released, within=10, what="sockets, queues and tasks released")
    finally:
        await redis.aclose()


async def test_concurrent_clients_each_get_every_event_once_in_order(
    stack: Stack, live: EventStore
) -> None:
    tasks = [task_id() for _ in range(10)]
    for task in tasks:
        await submit(live, task)
    urls = [f"{stack.ws}/ws/agent-progress/{t}" for t in tasks for _ in range(5)]
    urls += [f"{stack.ws}/ws/agent-progress/{tasks[0]}"] * 50
    recordings = [await connect_and_record(url) for url in urls]
    await asyncio.gather(*(append_steps(live, t, seed_steps(), pause=0.005) for t in tasks))
    results = await asyncio.wait_for(asyncio.gather(*recordings), 30)
    expected = list(range(1, 2 + len(seed_steps())))
    for got in results:
        assert got.seqs == expected and got.close_code == 1000


async def test_multi_task_socket_follows_several_tasks(stack: Stack, live: EventStore) -> None:
    a, b = task_id(), task_id()
    await submit(live, a)
    await submit(live, b)
    recording = await connect_and_record(f"{stack.ws}/ws/tasks?ids={a},{b}")
    await append_steps(live, a, seed_steps())
    await append_steps(live, b, [ev.TaskCancelled(reason="user")])
    got = await asyncio.wait_for(recording, 10)
    by_task: dict[str, list[int]] = {a: [], b: []}
    for message in got.events:
        by_task[message["task_id"]].append(message["seq"])
    assert by_task == {a: list(range(1, 2 + len(seed_steps()))), b: [1, 2]}
    assert got.close_code == 1000

    unknown = await record(f"{stack.ws}/ws/tasks?ids={a},{task_id()}", within=5)
    assert unknown.close_code == 4404


async def test_tenant_socket_sees_only_its_tenants_new_tasks(
    stack: Stack, live: EventStore
) -> None:
    tenant = f"bank-{uuid.uuid4().hex[:8]}"
    bank = token(tenant, ["analyst"], "e2e")
    recording = await connect_and_record(
        f"{stack.ws}/ws/tasks?tenant={tenant}", within=IDLE_S + 5, bearer=bank
    )
    mine, theirs = task_id(), task_id()
    await submit(live, mine, tenant=tenant)
    await submit(live, theirs, tenant="someone-else")
    await append_steps(live, mine, [ev.TaskCompleted()], tenant=tenant)
    await append_steps(live, theirs, [ev.TaskCompleted()], tenant="someone-else")
    got = await asyncio.wait_for(recording, IDLE_S + 10)
    assert [(m["task_id"], m["seq"]) for m in got.events] == [(mine, 1), (mine, 2)]
    # Following another tenant's task by id is refused as if it did not exist.
    refused = await record(
        f"{stack.ws}/ws/tasks?ids={theirs}&tenant={tenant}", within=5, bearer=bank
    )
    assert refused.close_code == 4404


async def sse(stack: Stack, path: str, headers: dict[str, str] | None = None
              ) -> list[tuple[str | None, str | None, dict[str, object]]]:  # fmt: skip
    """(id, event, data) of every SSE message until the server ends the stream."""
    out = []
    headers = {"Authorization": f"Bearer {acme_token()}", **(headers or {})}
    async with (
        httpx.AsyncClient(base_url=stack.http, timeout=10) as http,
        http.stream("GET", path, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        block: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                field, _, value = line.partition(": ")
                block[field] = value
            elif "data" in block:
                out.append((block.get("id"), block.get("event"), json.loads(block["data"])))
                block = {}
            else:
                block = {}
    return out


async def test_sse_streams_history_and_resumes_with_last_event_id(
    stack: Stack, live: EventStore
) -> None:
    task = task_id()
    await submit(live, task)
    await append_steps(live, task, seed_steps())
    everything = await sse(stack, f"/tasks/{task}/events")
    assert everything[0][1] == "connected"
    ids = [int(i) for i, kind, _ in everything if i is not None]
    assert ids == list(range(1, 2 + len(seed_steps())))
    assert everything[-1][2]["step"] == "completed"
    rest = await sse(stack, f"/tasks/{task}/events", headers={"Last-Event-ID": "7"})
    assert [int(i) for i, _, _ in rest if i] == list(range(8, 2 + len(seed_steps())))
    async with httpx.AsyncClient(base_url=stack.http, timeout=5) as http:
        unknown = await http.get(f"/tasks/{task_id()}/events", headers={
            "Authorization": f"Bearer {acme_token()}"})  # fmt: skip
        assert unknown.status_code == 404


async def test_metrics_report_sockets_and_the_relay(stack: Stack, live: EventStore) -> None:
    task = task_id()
    await submit(live, task)
    await append_steps(live, task, seed_steps())
    await record(f"{stack.ws}/ws/agent-progress/{task}", within=10)

    async def relay_caught_up() -> bool:
        return await metric(stack, "scamtrail_relay_lag_events") == 0

    await eventually(relay_caught_up, within=10, what="the relay caught up")
    assert await metric(stack, "scamtrail_relay_published_total") >= 1 + len(seed_steps())
    assert await metric(stack, "scamtrail_progress_messages_sent_total") >= 2 + len(seed_steps())
    assert await metric(stack, "scamtrail_relay_lag_seconds") == 0
    # The socket closed after `completed`: its lifetime is in the histogram.
    assert await metric(stack, "scamtrail_progress_socket_duration_seconds_count") >= 1


# The first web client's JavaScript, in substance: native WebSocket, JSON.parse, reads step,
# percent and message, ignores heartbeats, stops at `completed`.
SEED_CLIENT = """
(url) => new Promise((resolve, reject) => {
  const seen = [];
  const ws = new WebSocket(url);
  ws.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (data.heartbeat) { return; }
    seen.push({step: data.step, percent: data.percent, message: data.message});
    document.body.insertAdjacentHTML('beforeend',
      `<p>Step: ${data.step}, Progress: ${data.percent}% - ${data.message}</p>`);
    if (data.step === 'completed') { resolve(seen); }
  };
  ws.onerror = () => reject(new Error('websocket error'));
  ws.onclose = (e) => {
    if (!seen.some((s) => s.step === 'completed')) { reject(new Error('closed ' + e.code)); }
  };
})
"""
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"  # Debian's package; .ci/run installs it
HAVE_CHROMIUM = os.path.exists(CHROMIUM)


async def test_seed_browser_client_in_headless_chromium(stack: Stack, live: EventStore) -> None:
    from playwright.async_api import async_playwright

    if not HAVE_CHROMIUM:
        pytest.fail("Chromium is missing: apt-get install -y --no-install-recommends chromium")
    task = task_id()
    await submit(live, task)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{stack.http}/healthz")
            await page.set_content("<h1>scamtrail progress</h1>")
            seen_future = asyncio.ensure_future(
                # Browsers cannot set headers on a WebSocket: the token rides in the query.
                page.evaluate(
                    SEED_CLIENT, f"{stack.ws}/ws/agent-progress/{task}?token={acme_token()}"
                )
            )
            # The client writes a line into the page for each message: `connected` first.
            await eventually(
                lambda: page.evaluate("document.querySelectorAll('p').length"),
                within=10,
                what="the browser's socket connected",
            )
            await append_steps(live, task, seed_steps(), pause=0.02)
            seen = await asyncio.wait_for(seen_future, 20)
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "seed_client.png"), full_page=True)
        finally:
            await browser.close()
    steps = [s["step"] for s in seen]
    assert steps[0] == "connected" and steps[-1] == "completed"
    assert set(steps) == SEED_STEPS | {"connected"}
    assert all(0 <= s["percent"] <= 100 and s["message"] for s in seen)
