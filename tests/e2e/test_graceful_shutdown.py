"""SIGTERM, the orderly way a replica leaves (a deploy, a scale-in), with real processes.

- An api replica closes every progress socket with 1001 ("going away", not uvicorn's 1012) and
  ends its SSE streams, then exits; its clients reconnect to the other replica with `after` and
  see every event exactly once.
- A worker hands its job back (arq cancels it and re-queues it at once, without waiting for the
  job timeout); another worker resumes the analysis from the log, and no tool call that had
  completed is made again.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import events as ev
from infrastructure.event_store import EventStore
from infrastructure.settings import Settings
from tests.e2e.progress_stack import (
    acme_token,
    append_steps,
    child_env,
    free_port,
    processes,
    seed_steps,
    start_api,
    start_relay,
    submit,
)
from tests.e2e.test_agent_pipeline import finished, wait_for
from tests.e2e.test_agent_pipeline import submit as submit_over_http
from tests.e2e.worker_process import WorkerProcess
from tests.fault_toolbox import slow_tools

pytestmark = pytest.mark.e2e

CLIENTS = 20


class Follower:
    """One client of one task: follows it on a socket, and on a 1001 reconnects to `fallback`
    with `after=<last seq>`. Keeps every seq it received and every close code."""

    def __init__(self, task_id: str, first: str, fallback: str) -> None:
        self.task_id, self.urls = task_id, [first, fallback]
        self.seqs: list[int] = []
        self.closes: list[int | None] = []
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()  # its first socket closed

    async def run(self) -> None:
        for base in self.urls:
            after = self.seqs[-1] if self.seqs else 0
            url = f"{base}/ws/agent-progress/{self.task_id}?after={after}&token={acme_token()}"
            async with websockets.connect(url, open_timeout=10) as ws:
                try:
                    async for raw in ws:
                        message = json.loads(raw)
                        if "seq" in message:
                            self.seqs.append(message["seq"])
                        self.connected.set()
                except websockets.ConnectionClosedError:
                    pass
                self.closes.append(ws.close_code)
                self.closed.set()
            if ws.close_code != 1001:
                return


async def sse_lines(base: str, task_id: str, out: list[str], seen_4: asyncio.Event) -> None:
    url = f"{base}/tasks/{task_id}/events"
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("GET", url, params={"token": acme_token()}) as response,
    ):
        async for line in response.aiter_lines():
            out.append(line)
            if line == "id: 4":
                seen_4.set()


async def test_sigterm_closes_sockets_with_1001_and_clients_resume_elsewhere(
    migrated_database: str, redis_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    store, steps = EventStore(engine), seed_steps()
    env = child_env(
        database_url=migrated_database,
        redis_url=redis_url,
        ws_heartbeat_s=1,
        ws_idle_timeout_s=60,
    )
    ports = free_port(), free_port()
    leaving, staying = (f"ws://127.0.0.1:{p}" for p in ports)
    with processes() as started:
        started.append(start_relay(env, tmp_path / "relay.log"))
        started.append(doomed := start_api(env, ports[0], tmp_path / "api-1.log"))
        started.append(start_api(env, ports[1], tmp_path / "api-2.log"))
        task = f"task-{uuid.uuid4()}"
        await submit(store, task)
        await append_steps(store, task, steps[:3])  # versions 2-4 before the shutdown
        followers = [Follower(task, leaving, staying) for _ in range(CLIENTS)]
        running = [asyncio.create_task(f.run()) for f in followers]
        sse: list[str] = []
        seen_4 = asyncio.Event()
        sse_url = f"http://127.0.0.1:{ports[0]}"
        sse_task = asyncio.create_task(sse_lines(sse_url, task, sse, seen_4))
        async with asyncio.timeout(20):
            await asyncio.gather(*(f.connected.wait() for f in followers), seen_4.wait())

        began = time.monotonic()
        doomed.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            await asyncio.gather(*(f.closed.wait() for f in followers))
            await sse_task  # the SSE stream ended instead of holding the shutdown
        closed_in = time.monotonic() - began
        exit_code = await asyncio.to_thread(doomed.process.wait, 15)

        await append_steps(store, task, steps[3:], after=4, pause=0.02)  # the rest, live
        await asyncio.wait_for(asyncio.gather(*running), 30)

    log = doomed.output()
    # uvicorn re-raises the SIGTERM it caught once it has shut down: killed by it, cleanly.
    assert exit_code in (0, -signal.SIGTERM), log[-3000:]
    assert closed_in < 5, f"sockets closed {closed_in:.1f} s after SIGTERM"
    expected = list(range(1, 2 + len(steps)))
    for follower in followers:
        assert follower.closes == [1001, 1000], follower.closes
        assert follower.seqs == expected, follower.seqs
    assert "still open after draining" not in log, log[-3000:]


async def test_sigterm_to_a_worker_hands_its_job_back_without_repeating_a_completed_call(
    api: httpx.AsyncClient, store: EventStore, app_settings: Settings, tmp_path: Path
) -> None:
    ledger = f"{app_settings.queue}:ledger"
    # One slowed-down tool call at a time, so the signal lands mid-analysis. The job timeout is
    # long on purpose: the task must finish well before arq's crash path (timeout + 10 s)
    # could hand the job over, which proves the SIGTERMed worker gave it back itself.
    slow: dict[str, Any] = {
        **slow_tools(latency_s=0.4, ledger=ledger),
        "tool_concurrency": 1,
        "analysis_timeout_s": 120,
    }
    first = WorkerProcess(app_settings, tmp_path / "worker-1.log", **slow)
    second: WorkerProcess | None = None
    redis = Redis.from_url(app_settings.redis_url)
    try:
        content = (
            "FINAL NOTICE: unpaid toll. Pay now at https://ezpass-tolls.top/pay or call "
            "+1 900 555 0199. Also see http://bit.ly/toll-pay and reply to billing@ezpass-tolls.top"
        )
        task_id = await submit_over_http(api, content)
        await wait_for(api, task_id, lambda t: int(t["tool_calls_completed"]) >= 2, within=30)

        began = time.monotonic()
        first.process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(first.process.wait, 15)
        stopped_in = time.monotonic() - began
        before = await store.read_stream(task_id)
        completed_before = {
            r.event.call_id for r in before if isinstance(r.event, ev.ToolCallCompleted)
        }
        assert not any(r.type == "TaskCompleted" for r in before), "the signal came too late"

        second = WorkerProcess(app_settings, tmp_path / "worker-2.log", **slow)
        task = await wait_for(api, task_id, finished, within=30)
        handed_over_in = time.monotonic() - began
        stream = await store.read_stream(task_id)
        counts: dict[bytes, bytes] = await redis.hgetall(ledger)
    finally:
        first.stop()
        if second is not None:
            second.stop()
        await redis.aclose()

    log = (tmp_path / "worker-1.log").read_text(errors="replace")
    assert exit_code == 0 and stopped_in < 10, log[-3000:]
    assert "cancelled, will be run again" in log, log[-3000:]
    assert task["status"] == "completed"
    assert handed_over_in < 30
    calls = {k.decode(): int(v) for k, v in counts.items()}
    started = Counter(r.event.call_id for r in stream if isinstance(r.event, ev.ToolCallStarted))
    # Every real call was recorded as started first. The other way round holds but for the
    # attempts the hand-back cancelled between recording their start and making the call (at
    # most one per concurrent slot): those are recorded, and made again by the second worker.
    assert all(calls[call_id] <= started[call_id] for call_id in calls), (calls, started)
    assert set(calls) == set(started)
    unmade = sum(started.values()) - sum(calls.values())
    assert unmade <= app_settings.tool_concurrency, (calls, started)
    for call_id in completed_before:
        assert calls[call_id] == 1, f"{call_id} completed before SIGTERM but was called again"
    completions = Counter(
        r.event.call_id for r in stream if isinstance(r.event, ev.ToolCallCompleted)
    )
    assert all(n == 1 for n in completions.values()), completions
    assert len(completions) > len(completed_before), "the second worker did the remaining calls"
