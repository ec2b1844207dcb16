"""The agent end to end: the api (in-process) records and enqueues, a real `scamtrail worker`
process runs the analysis, and the task's stream holds every step."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from domain import events as ev
from domain.log import RecordedEvent
from infrastructure.event_store import EventStore
from infrastructure.settings import Settings
from tests.e2e.worker_process import WorkerProcess
from tests.fault_toolbox import slow_tools

pytestmark = pytest.mark.e2e

Workers = Callable[..., WorkerProcess]


@pytest.fixture
def workers(app_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    started: list[WorkerProcess] = []

    def start(**overrides: object) -> WorkerProcess:
        worker = WorkerProcess(app_settings, tmp_path / "worker.log", **overrides)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
async def redis(app_settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(app_settings.redis_url)
    yield client
    await client.aclose()


async def submit(api: httpx.AsyncClient, content: str, kind: str = "sms") -> str:
    response = await api.post("/tasks", json={"content": content, "kind": kind})
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def wait_for(
    api: httpx.AsyncClient, task_id: str, done: Callable[[dict[str, Any]], bool], within: float
) -> dict[str, Any]:
    task: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal task
        task = (await api.get(f"/tasks/{task_id}")).json()
        return done(task)

    assert await eventually(reached, within), f"task {task_id} not there in {within} s: {task}"
    return task


async def eventually(condition: Callable[[], Awaitable[bool]], within: float) -> bool:
    """Poll `condition` until it holds or `within` seconds pass; whether it held."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def finished(task: dict[str, Any]) -> bool:
    return task["status"] in ("completed", "failed", "cancelled")


def assert_evidence_is_real(stream: list[RecordedEvent]) -> ev.VerdictReached:
    (verdict,) = [r.event for r in stream if isinstance(r.event, ev.VerdictReached)]
    versions = {r.version for r in stream}
    for reason in verdict.reasons:
        assert reason.evidence, f"reason {reason.code} cites nothing"
        assert set(reason.evidence) <= versions, f"reason {reason.code} cites missing events"
    return verdict


@pytest.mark.parametrize(
    ("content", "kind", "expected"),
    [
        (
            "URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top/pay today",
            "sms",
            "scam",
        ),
        ("Hi Sam, dinner at 7 tomorrow still works? Bring the board game.", "sms", "safe"),
        ("http://paypa1-secure-login.top/account/verify", "url", "scam"),
    ],
)
async def test_a_real_worker_analyses_a_submission_end_to_end(
    api: httpx.AsyncClient,
    store: EventStore,
    workers: Workers,
    content: str,
    kind: str,
    expected: str,
) -> None:
    workers()
    task_id = await submit(api, content, kind)
    task = await wait_for(api, task_id, finished, within=60)

    assert (task["status"], task["verdict"], task["percent"]) == ("completed", expected, 100)
    stream = await store.read_stream(task_id)
    types = [r.type for r in stream]
    assert types[:3] == ["TaskSubmitted", "AnalysisStarted", "EntitiesExtracted"]
    assert types[-2:] == ["VerdictReached", "TaskCompleted"]
    assert [r.version for r in stream] == list(range(1, len(stream) + 1))
    assert assert_evidence_is_real(stream).verdict == expected
    await assert_reads_agree(api, task_id, task)


async def assert_reads_agree(api: httpx.AsyncClient, task_id: str, task: dict[str, Any]) -> None:
    """The projection, the audit and the timeline tell one story: every cited seq is in the
    timeline with exactly the data the audit shows."""
    audit = (await api.get(f"/tasks/{task_id}/audit")).json()
    timeline = (await api.get(f"/tasks/{task_id}/timeline", params={"limit": 1000})).json()
    by_seq = {entry["seq"]: entry for entry in timeline["events"]}
    assert audit["verdict"]["agent"] == task["verdict"]
    assert audit["verdict"]["score"] == task["score"]
    assert audit["verdict"]["confidence"] == task["confidence"]
    assert by_seq[audit["verdict"]["seq"]]["event_type"] == "VerdictReached"
    assert task["version"] == max(by_seq)
    completed = [e for e in timeline["events"] if e["event_type"] == "ToolCallCompleted"]
    assert task["tool_calls_completed"] == len(completed)
    for reason in audit["reasons"]:
        for cited in reason["evidence"]:
            assert cited["seq"] in by_seq, f"{reason['code']} cites seq {cited['seq']}"
            assert cited["data"] == by_seq[cited["seq"]]["data"]
            assert cited["event_type"] == by_seq[cited["seq"]]["event_type"]


async def test_a_killed_worker_resumes_and_never_repeats_a_completed_tool_call(
    api: httpx.AsyncClient,
    store: EventStore,
    workers: Workers,
    redis: Redis,
    app_settings: Settings,
) -> None:
    ledger = f"{app_settings.queue}:ledger"
    # One tool call at a time, each slowed down, so the kill lands between calls; a short job
    # timeout so arq hands the job to the next worker soon (after timeout + 10 s).
    slow = {
        **slow_tools(latency_s=0.4, ledger=ledger),
        "tool_concurrency": 1,
        "analysis_timeout_s": 8,
        "tool_timeout_s": 2,  # one tool call must fit in a run of the analysis (settings)
    }
    first = workers(**slow)
    content = (
        "FINAL NOTICE: unpaid toll. Pay now at https://ezpass-tolls.top/pay or call "
        "+1 900 555 0199. Also see http://bit.ly/toll-pay and reply to billing@ezpass-tolls.top"
    )
    task_id = await submit(api, content)

    def two_calls_done(task: dict[str, Any]) -> bool:
        return int(task["tool_calls_completed"]) >= 2

    await wait_for(api, task_id, two_calls_done, within=30)
    first.kill()
    before = await store.read_stream(task_id)
    completed_before = {
        r.event.call_id for r in before if isinstance(r.event, ev.ToolCallCompleted)
    }
    assert completed_before and not any(isinstance(r.event, ev.TaskCompleted) for r in before)

    workers(**slow)
    task = await wait_for(api, task_id, finished, within=60)

    assert task["status"] == "completed"
    stream = await store.read_stream(task_id)
    started = Counter(r.event.call_id for r in stream if isinstance(r.event, ev.ToolCallStarted))
    ledger_counts: dict[bytes, bytes] = await redis.hgetall(ledger)  # type: ignore[misc]
    calls = {k.decode(): int(v) for k, v in ledger_counts.items()}
    # Every real call was recorded as started first. The other way round holds but for the one
    # attempt the kill may have cut between recording its start and making the call (CI once
    # landed the kill in that millisecond): that attempt is recorded, and made again.
    assert all(calls[call_id] <= started[call_id] for call_id in calls), (calls, started)
    assert set(calls) == set(started)
    assert sum(started.values()) - sum(calls.values()) <= 1, (calls, started)
    for call_id in completed_before:
        assert calls[call_id] == 1, f"{call_id} completed before the kill but was called again"
    completions = Counter(
        r.event.call_id for r in stream if isinstance(r.event, ev.ToolCallCompleted)
    )
    assert all(n == 1 for n in completions.values())
    assert len(completions) > len(completed_before), "the new worker did the remaining calls"
    assert_evidence_is_real(stream)


async def test_cancel_stops_the_worker_before_its_next_step(
    api: httpx.AsyncClient, store: EventStore, workers: Workers, redis: Redis
) -> None:
    workers(**slow_tools(latency_s=0.5), tool_concurrency=1)
    task_id = await submit(
        api, "Your account is locked, verify at http://secure-login.top/verify +1 900 555 0100"
    )
    await wait_for(api, task_id, lambda t: t["current_step"] not in (None,), within=30)

    cancelled = await api.post(f"/tasks/{task_id}/cancel", json={"reason": "user withdrew it"})
    assert cancelled.status_code == 200

    # Wait for the job itself to end (arq drops its in-progress key), not for a guessed delay.
    async def job_ended() -> bool:
        return not await redis.exists(f"arq:in-progress:{task_id}")

    assert await eventually(job_ended, within=30), "the job did not stop"

    stream = await store.read_stream(task_id)
    types = [r.type for r in stream]
    assert types[-1] == "TaskCancelled", types
    assert "VerdictReached" not in types and "TaskCompleted" not in types
    assert (await api.get(f"/tasks/{task_id}")).json()["status"] == "cancelled"
