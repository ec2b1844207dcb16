"""A task's analysis runs a bounded number of times, whatever stops its runs — a crash, a
timeout, an internal error, a job arq dropped and the sweep re-enqueued — because the log, not
the queue, counts the runs; and a tool call is attempted at most tool_max_attempts times across
all of them."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

import httpx
import pytest
from arq import ArqRedis, Retry

from domain import events as ev
from domain.extraction import extract_entities
from domain.log import EventMetadata, NewEvent, RecordedEvent
from domain.planning import plan_tool_calls
from infrastructure.event_store import EventStore
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from tests.fault_toolbox import fault_toolbox
from workers.analysis import Agent, run_analysis
from workers.jobs import analyze_task, build_worker, sweep_lost_tasks

pytestmark = pytest.mark.integration

CONTENT = "URGENT: verify your account at http://paypa1-login.top/verify or call +1 900 555 0199"


class Counts:
    """A tool that answers at once and counts its calls."""

    def __init__(self, name: str) -> None:
        self.name, self.calls = name, 0

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return {"matches": []}


async def submit(store: EventStore, *events: ev.DomainEvent) -> str:
    task_id = f"runs-{uuid.uuid4()}"
    metadata = EventMetadata(tenant="acme", actor="test")
    batch = [ev.TaskSubmitted(content=CONTENT, kind="sms"), *events]
    await TaskLog(store).append(task_id, [NewEvent(e, metadata) for e in batch], 0)
    return task_id


E = TypeVar("E", bound=ev.DomainEvent)


def of_type(stream: Sequence[RecordedEvent], kind: type[E]) -> list[E]:
    return [r.event for r in stream if isinstance(r.event, kind)]


async def test_a_run_that_always_times_out_is_failed_after_analysis_max_tries(
    api: httpx.AsyncClient, store: EventStore, app_settings: Settings, jobs: ArqRedis
) -> None:
    # A tool slower than the job timeout stands for anything that hangs in a run (the settings
    # refuse it as a configuration; model_copy does not validate). Before, arq cancelled each
    # run and dropped the job, the sweep re-enqueued it with a fresh try count, and every run
    # attempted every tool once more: running for ever.
    settings = app_settings.model_copy(
        update={
            "analysis_timeout_s": 1.0,
            "analysis_max_tries": 2,
            "stale_task_s": 0.1,
        }
    )
    posted = await api.post("/tasks", json={"content": CONTENT, "kind": "sms"})
    task_id = posted.json()["task_id"]
    ctx = {"agent": Agent(TaskLog(store), {}, settings), "redis": jobs}
    dropped_by_arq = 0
    slow = fault_toolbox(latency_s=3.0)
    for _ in range(3):  # a worker until its queue is empty, then the sweep
        worker = build_worker(settings, burst=True, handle_signals=False, toolbox=slow)
        worker.cron_jobs = []
        await worker.async_run()
        await worker.close()
        dropped_by_arq += worker.jobs_failed
        await sweep_lost_tasks(ctx)

    task = (await api.get(f"/tasks/{task_id}")).json()
    assert task["status"] == "failed", task
    assert "started 2 times" in task["error"] and "analysis_max_tries" in task["error"]
    assert "ran out of time" in task["error"], task["error"]
    assert dropped_by_arq == 0, "each timeout went through the job's own deadline"
    stream = await store.read_stream(task_id)
    assert [e.run for e in of_type(stream, ev.AnalysisStarted)] == [1, 2]
    attempts = Counter(e.call_id for e in of_type(stream, ev.ToolCallStarted))
    assert attempts and max(attempts.values()) <= 2, attempts
    assert stream[-1].type == "TaskFailed"


async def test_a_task_whose_runs_all_stopped_midway_is_failed_without_running_again(
    store: EventStore, settings: Settings
) -> None:
    # Two runs started and never finished: workers SIGKILLed, or a job arq dropped ("max retries
    # exceeded") that the sweep put back with a fresh try count.
    started = ev.ToolCallStarted(
        call_id="scam_db:phone:+19005550199",
        tool="scam_database",
        step="scam_db",
        input={"kind": "phone", "value": "+19005550199"},
    )
    task_id = await submit(
        store,
        ev.AnalysisStarted(run=1, max_runs=2),
        started,
        ev.AnalysisStarted(run=2, max_runs=2, step="scam_db", percent=15),
        started.model_copy(update={"attempt": 2}),
    )
    tool = Counts("scam_database")
    settings = settings.model_copy(update={"analysis_max_tries": 2})
    agent = Agent(TaskLog(store), {tool.name: tool}, settings)

    assert await run_analysis(agent, task_id) == "failed"
    stream = await store.read_stream(task_id)
    (failed,) = of_type(stream, ev.TaskFailed)
    assert "started 2 times" in failed.error and "analysis_max_tries is 2" in failed.error
    assert len(of_type(stream, ev.AnalysisStarted)) == 2 and tool.calls == 0


async def test_a_job_arq_gave_up_on_is_put_back_by_the_sweep_and_fails_the_task(
    api: httpx.AsyncClient, store: EventStore, app_settings: Settings, jobs: ArqRedis
) -> None:
    settings = app_settings.model_copy(update={"analysis_max_tries": 2, "stale_task_s": 0.1})
    posted = await api.post("/tasks", json={"content": CONTENT, "kind": "sms"})
    task_id = posted.json()["task_id"]
    # Two runs started, and their workers were SIGKILLed; arq counted three tries of the job
    # (one more than the runs: a kill before the run was recorded), so it drops the next one.
    runs = [ev.AnalysisStarted(run=n, max_runs=2) for n in (1, 2)]
    metadata = EventMetadata(tenant="public", actor="worker")
    await TaskLog(store).append(task_id, [NewEvent(e, metadata) for e in runs], 1)
    await jobs.set(f"arq:retry:{task_id}", 3)

    async def run_worker() -> int:
        worker = build_worker(settings, burst=True, handle_signals=False)
        worker.cron_jobs = []
        await worker.async_run()
        await worker.close()
        return worker.jobs_failed

    assert await run_worker() == 1, "arq dropped the job: max retries exceeded"
    await asyncio.sleep(0.2)
    ctx = {"agent": Agent(TaskLog(store), {}, settings), "redis": jobs}
    assert await sweep_lost_tasks(ctx) == 1, "no result kept by arq blocks the sweep"
    assert await run_worker() == 0

    task = (await api.get(f"/tasks/{task_id}")).json()
    assert task["status"] == "failed" and "started 2 times" in task["error"], task
    stream = await store.read_stream(task_id)
    assert len(of_type(stream, ev.AnalysisStarted)) == 2 and not of_type(stream, ev.ToolCallStarted)


async def test_an_internal_error_is_retried_then_fails_the_task_saying_why(
    store: EventStore, settings: Settings
) -> None:
    async def broken_reasoner(stream: Sequence[RecordedEvent]) -> ev.VerdictReached:
        raise RuntimeError("reasoner misconfigured")

    task_id = await submit(store)
    tools = {name: Counts(name) for name in ("scam_database", "web_search")}
    agent = Agent(TaskLog(store), tools, settings.model_copy(update={"analysis_max_tries": 2}))
    agent.reasoner = broken_reasoner

    with pytest.raises(Retry):
        await analyze_task({"agent": agent, "job_try": 1}, task_id)
    # arq's try count restarts when the sweep re-enqueues a dropped job: the log's does not.
    assert await analyze_task({"agent": agent, "job_try": 1}, task_id) == "failed"

    stream = await store.read_stream(task_id)
    (failed,) = of_type(stream, ev.TaskFailed)
    assert "internal error (RuntimeError)" in failed.error, failed.error
    assert len(of_type(stream, ev.AnalysisStarted)) == 2
    completed = Counter(e.call_id for e in of_type(stream, ev.ToolCallCompleted))
    assert completed and set(completed.values()) == {1}, "the second run made no call again"


async def test_a_call_whose_attempts_were_all_spent_is_given_up_without_calling_the_tool(
    store: EventStore, settings: Settings
) -> None:
    settings = settings.model_copy(update={"tool_max_attempts": 2})
    entities = extract_entities(CONTENT, "sms", default_region=settings.default_region)
    plan = plan_tool_calls(entities, kind="sms", client_metadata={})
    spent = next(call for call in plan if call.tool == "scam_database")
    attempts = [
        ev.ToolCallStarted(
            call_id=spent.call_id, tool=spent.tool, step=spent.step, input=spent.input, attempt=n
        )
        for n in (1, 2)
    ]  # each cut short by its run's timeout: no ToolCallFailed, no ToolCallCompleted
    task_id = await submit(
        store,
        ev.AnalysisStarted(run=1, max_runs=5),
        ev.EntitiesExtracted(entities=entities),
        attempts[0],
        ev.AnalysisStarted(run=2, max_runs=5, step="scam_db", percent=15),
        attempts[1],
    )
    tools = {name: Counts(name) for name in ("scam_database", "web_search")}

    assert await run_analysis(Agent(TaskLog(store), tools, settings), task_id) == "completed"
    stream = await store.read_stream(task_id)
    given_up = [e for e in of_type(stream, ev.ToolCallFailed) if e.call_id == spent.call_id]
    assert [(e.attempt, e.will_retry) for e in given_up] == [(2, False)]
    assert "tool_max_attempts" in given_up[0].error
    assert Counter(e.call_id for e in of_type(stream, ev.ToolCallStarted))[spent.call_id] == 2
    others = [c for c in plan if c.tool == "scam_database" and c is not spent]
    assert tools["scam_database"].calls == len(others), "the spent call was not made again"
    assert of_type(stream, ev.VerdictReached), "the reasoning went on without it"
