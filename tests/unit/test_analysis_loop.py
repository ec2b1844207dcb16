"""The worker's loop against the in-memory log, at unit speed: a run resumes from the last
recorded step, never makes a completed call again, keeps the attempt and run budgets across
runs, stops when the task is cancelled or pruned, and lets the other calls finish when one
call's outcome cannot be recorded. The same guarantees are tested against PostgreSQL and real
worker processes in tests/integration and tests/e2e."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

import pytest

from domain import events as ev
from domain.errors import ConcurrencyConflict, TaskNotFound
from domain.extraction import extract_entities
from domain.log import EventMetadata, NewEvent, RecordedEvent
from domain.planning import plan_tool_calls
from domain.task import TaskState
from infrastructure.event_store import AppendResult
from infrastructure.memory_store import InMemoryEventStore, InMemoryTaskLog
from infrastructure.settings import Settings, load_settings
from workers.analysis import Agent, run_analysis

pytestmark = pytest.mark.unit

CONTENT = "URGENT: verify your account at http://paypa1-login.top/verify or call +1 900 555 0199"
SUBMITTER = EventMetadata(tenant="acme", actor="user:1")
ENTITIES = extract_entities(CONTENT, "sms", default_region="US")
PLAN = plan_tool_calls(ENTITIES, kind="sms", client_metadata={}, tenant="acme")
OUTPUTS: dict[str, dict[str, Any]] = {
    "scam_database": {"matches": []},
    "web_search": {"provider": "local", "results": []},
    "domain_reputation": {"domain": "paypa1-login.top", "risk": 0.0, "signals": []},
    "phone_validator": {"number": "+19005550199", "valid": True, "risk": 0.0, "signals": []},
}
E = TypeVar("E", bound=ev.DomainEvent)


class Tool:
    """Answers at once (or raises, or hangs), counting its calls by input."""

    def __init__(self, name: str, *, raises: bool = False, hangs: bool = False) -> None:
        self.name, self.raises, self.hangs = name, raises, hangs
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(call_input)
        if self.hangs:
            await asyncio.sleep(30)
        if self.raises:
            raise ConnectionError(f"{self.name} unreachable")
        return OUTPUTS[self.name]


def tools(**special: Tool) -> dict[str, Tool]:
    return {name: special.get(name) or Tool(name) for name in OUTPUTS}


def settings(**overrides: Any) -> Settings:
    return load_settings(**{"tool_timeout_s": 0.05, "tool_retry_backoff_s": 0.0, **overrides})


class Intercepted(InMemoryTaskLog):
    """The in-memory log with a hook before each append (`before`, which may raise or write
    first) and after it (`after`)."""

    async def append(
        self,
        task_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
        *,
        state: TaskState | None = None,
    ) -> AppendResult:
        await self.before(task_id, events, expected_version)
        result = await super().append(task_id, events, expected_version, state=state)
        await self.after(task_id)
        return result

    async def before(self, task_id: str, events: Sequence[NewEvent], expected: int) -> None:
        pass

    async def after(self, task_id: str) -> None:
        pass

    async def write(self, task_id: str, events: list[NewEvent], expected: int) -> None:
        """Someone else's append, past the hooks."""
        await InMemoryTaskLog.append(self, task_id, events, expected)


async def submitted(log: InMemoryTaskLog, *events: ev.DomainEvent) -> str:
    task_id = f"task-{uuid.uuid4()}"
    batch = [ev.TaskSubmitted(content=CONTENT, kind="sms"), *events]
    await log.append(task_id, [NewEvent(e, SUBMITTER) for e in batch], 0)
    return task_id


def of_type(stream: Sequence[RecordedEvent], kind: type[E]) -> list[E]:
    return [r.event for r in stream if isinstance(r.event, kind)]


def started(call_index: int, attempt: int = 1) -> ev.ToolCallStarted:
    call = PLAN[call_index]
    return ev.ToolCallStarted(
        call_id=call.call_id, tool=call.tool, step=call.step, input=call.input, attempt=attempt
    )


def completed(call_index: int) -> ev.ToolCallCompleted:
    call = PLAN[call_index]
    output = OUTPUTS[call.tool]
    return ev.ToolCallCompleted(call_id=call.call_id, tool=call.tool, step=call.step, output=output)


async def test_a_run_resumes_from_the_last_recorded_step_and_repeats_no_completed_call() -> None:
    log = InMemoryTaskLog(InMemoryEventStore())
    # A first run extracted, completed one call and was cut short inside another.
    task_id = await submitted(
        log,
        ev.AnalysisStarted(run=1, max_runs=5),
        ev.EntitiesExtracted(entities=ENTITIES),
        started(0),
        completed(0),
        started(1),
    )
    box = tools()
    assert await run_analysis(Agent(log, box, settings()), task_id) == "completed"

    stream = await log.store.read_stream(task_id)
    assert len(of_type(stream, ev.EntitiesExtracted)) == 1, "the message was not read again"
    completions = Counter(e.call_id for e in of_type(stream, ev.ToolCallCompleted))
    assert set(completions.values()) == {1} and set(completions) == {c.call_id for c in PLAN}
    made = Counter(str(i) for tool in box.values() for i in tool.calls)
    assert sum(made.values()) == len(PLAN) - 1, "every call but the completed one, once"
    resumed = [e for e in of_type(stream, ev.ToolCallStarted) if e.call_id == PLAN[1].call_id]
    assert [e.attempt for e in resumed] == [1, 2], "the cut-short attempt counts"
    assert [e.run for e in of_type(stream, ev.AnalysisStarted)] == [1, 2]
    assert [r.type for r in stream[-2:]] == ["VerdictReached", "TaskCompleted"]


async def test_a_failing_tool_is_retried_up_to_its_budget_and_the_verdict_still_comes() -> None:
    log = InMemoryTaskLog(InMemoryEventStore())
    task_id = await submitted(log)
    down, slow = Tool("scam_database", raises=True), Tool("web_search", hangs=True)
    agent = Agent(log, tools(scam_database=down, web_search=slow), settings(tool_max_attempts=2))

    assert await run_analysis(agent, task_id) == "completed"
    stream = await log.store.read_stream(task_id)
    failed = of_type(stream, ev.ToolCallFailed)
    web = sorted((f for f in failed if f.tool == "web_search"), key=lambda f: f.attempt)
    assert [(f.attempt, f.will_retry, f.timed_out) for f in web] == [
        (1, True, True),
        (2, False, True),
    ]
    database = [f for f in failed if f.tool == "scam_database"]
    assert len(down.calls) == len(database) and not any(f.timed_out for f in database)
    assert max(f.attempt for f in database) == 2
    assert len(of_type(stream, ev.ToolCallStarted)) == len(failed) + len(
        of_type(stream, ev.ToolCallCompleted)
    ), "every attempt starts with an event and ends with one"
    (verdict,) = of_type(stream, ev.VerdictReached)
    assert any(r.code == "tool_failed" for r in verdict.reasons)


async def test_the_attempt_budget_holds_across_runs() -> None:
    log = InMemoryTaskLog(InMemoryEventStore())
    # Two attempts of the first call, each cut short by its run's end.
    task_id = await submitted(
        log,
        ev.AnalysisStarted(run=1, max_runs=5),
        ev.EntitiesExtracted(entities=ENTITIES),
        started(0),
        ev.AnalysisStarted(run=2, max_runs=5, step="scam_db", percent=25),
        started(0, attempt=2),
    )
    box = tools()
    assert await run_analysis(Agent(log, box, settings(tool_max_attempts=2)), task_id) == (
        "completed"
    )
    stream = await log.store.read_stream(task_id)
    given_up = [e for e in of_type(stream, ev.ToolCallFailed) if e.call_id == PLAN[0].call_id]
    assert [(e.attempt, e.will_retry) for e in given_up] == [(2, False)]
    assert PLAN[0].input not in box[PLAN[0].tool].calls, "the spent call was not made again"


async def test_the_run_budget_fails_the_task_without_calling_a_tool() -> None:
    log = InMemoryTaskLog(InMemoryEventStore())
    task_id = await submitted(
        log, ev.AnalysisStarted(run=1, max_runs=2), ev.AnalysisStarted(run=2, max_runs=2)
    )
    box = tools()
    assert await run_analysis(Agent(log, box, settings(analysis_max_tries=2)), task_id) == "failed"
    stream = await log.store.read_stream(task_id)
    (failed,) = of_type(stream, ev.TaskFailed)
    assert "started 2 times" in failed.error
    assert not any(tool.calls for tool in box.values())
    state = await log.task(task_id)
    assert state is not None and state.status == "failed"


async def test_a_cancellation_stops_the_run_and_the_calls_under_way() -> None:
    log = InMemoryTaskLog(InMemoryEventStore())
    task_id = await submitted(log)

    class CancelsMeanwhile(Tool):
        """The task is cancelled while the first call runs, as the api would do it (re-reading
        the version on a conflict)."""

        async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
            self.calls.append(call_input)
            if len(self.calls) == 1:
                cancel = NewEvent(ev.TaskCancelled(reason="user withdrew it"), SUBMITTER)
                while True:
                    version = await log.store.stream_version(task_id)
                    with contextlib.suppress(ConcurrencyConflict):
                        await log.append(task_id, [cancel], version)
                        break
            return OUTPUTS[self.name]

    hangs = Tool("web_search", hangs=True)
    box = tools(scam_database=CancelsMeanwhile("scam_database"), web_search=hangs)
    agent = Agent(log, box, settings(tool_timeout_s=5))

    assert await asyncio.wait_for(run_analysis(agent, task_id), 2) == "cancelled"
    stream = await log.store.read_stream(task_id)
    assert stream[-1].type == "TaskCancelled"
    assert not of_type(stream, ev.VerdictReached), "no step after the cancellation"
    assert hangs.calls, "the hanging call was under way, and was stopped with the run"


async def test_a_pruned_task_stops_the_run() -> None:
    class Pruned(Intercepted):
        gone = False

        async def before(self, task_id: str, events: Sequence[NewEvent], expected: int) -> None:
            if self.gone:
                raise TaskNotFound(task_id)

    log = Pruned(InMemoryEventStore())
    task_id = await submitted(log)

    class PrunesMeanwhile(Tool):
        async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
            self.calls.append(call_input)
            log.gone = True
            return OUTPUTS[self.name]

    database = PrunesMeanwhile("scam_database")
    agent = Agent(log, tools(scam_database=database), settings(tool_concurrency=1))
    assert await run_analysis(agent, task_id) == "gone"
    assert len(database.calls) == 1, "no call after the task was gone"


async def test_a_call_whose_outcome_cannot_be_recorded_does_not_stop_the_others() -> None:
    class LosesOneCompletion(Intercepted):
        """Refuses web_search's completion, alone or with other calls' events, while
        `refusing`."""

        refusing = True

        async def before(self, task_id: str, events: Sequence[NewEvent], expected: int) -> None:
            if self.refusing and any(
                isinstance(e.event, ev.ToolCallCompleted) and e.event.tool == "web_search"
                for e in events
            ):
                raise OSError("the log refused the event")

    log = LosesOneCompletion(InMemoryEventStore())
    task_id = await submitted(log)
    box = tools()
    agent = Agent(log, box, settings())

    with pytest.raises(ExceptionGroup) as crashed:
        await run_analysis(agent, task_id)
    assert crashed.group_contains(OSError, match="refused")
    stream = await log.store.read_stream(task_id)
    done = {e.tool for e in of_type(stream, ev.ToolCallCompleted)}
    assert done == {c.tool for c in PLAN} - {"web_search"}, "the other calls finished"

    calls_before = {name: len(tool.calls) for name, tool in box.items()}
    log.refusing = False
    assert await run_analysis(agent, task_id) == "completed"
    calls_after = {name: len(tool.calls) for name, tool in box.items()}
    assert {k: calls_after[k] - calls_before[k] for k in box} == {
        name: int(name == "web_search") for name in box
    }, "only the lost call is redone"


async def test_the_llm_reasoner_decides_when_configured() -> None:
    log = InMemoryTaskLog(InMemoryEventStore())
    task_id = await submitted(log)
    seen: list[int] = []

    async def llm(stream: Sequence[RecordedEvent]) -> ev.VerdictReached:
        seen.append(len(stream))
        return ev.VerdictReached(verdict="suspicious", score=0.5, confidence=0.5, reasoner="llm:x")

    agent = Agent(log, tools(), settings(), reasoner=llm)
    assert await run_analysis(agent, task_id) == "completed"
    state = await log.task(task_id)
    assert state is not None and (state.verdict, state.percent) == ("suspicious", 100)
    assert seen and seen[0] > len(PLAN), "it reasoned on the whole stream"


class CountedReads(InMemoryEventStore):
    reads = 0

    async def read_stream(self, *args: Any, **kwargs: Any) -> list[RecordedEvent]:
        self.reads += 1
        return await super().read_stream(*args, **kwargs)


async def test_a_run_no_one_else_writes_to_reads_the_stream_once() -> None:
    """Its steps learn that someone else wrote from their own append's conflict, not from a
    read before each of them."""
    store = CountedReads()
    log = InMemoryTaskLog(store)
    task_id = await submitted(log)
    assert await run_analysis(Agent(log, tools(), settings()), task_id) == "completed"
    assert store.reads == 1


async def test_a_cancellation_just_before_the_verdict_leaves_no_verdict() -> None:
    """The last call's outcome is recorded, then the task is cancelled before the verdict's
    append: the verdict is not recorded, and the run ends as cancelled."""

    class CancelsAfterTheLastCompletion(Intercepted):
        async def after(self, task_id: str) -> None:
            stream = await self.store.read_stream(task_id)
            calls = of_type(stream, ev.ToolCallCompleted)
            if len(calls) == len(PLAN) and not of_type(stream, ev.TaskCancelled):
                cancel = NewEvent(ev.TaskCancelled(reason="withdrawn"), SUBMITTER)
                await self.write(task_id, [cancel], stream[-1].version)

    log = CancelsAfterTheLastCompletion(InMemoryEventStore())
    task_id = await submitted(log)
    assert await run_analysis(Agent(log, tools(), settings()), task_id) == "cancelled"
    stream = await log.store.read_stream(task_id)
    assert stream[-1].type == "TaskCancelled"
    assert not of_type(stream, ev.VerdictReached)


async def test_a_step_another_run_took_meanwhile_is_not_taken_twice() -> None:
    """Another run announces the checks between this run's decision and its append: this run
    reads that announcement and decides again, instead of announcing them a second time."""

    class AnotherRunAnnounces(Intercepted):
        async def before(self, task_id: str, events: Sequence[NewEvent], expected: int) -> None:
            if any(isinstance(e.event, ev.ProgressReported) for e in events):
                stream = await self.store.read_stream(task_id)
                if not of_type(stream, ev.ProgressReported):
                    other = EventMetadata(tenant="acme", actor="worker")
                    await self.write(task_id, [NewEvent(e.event, other) for e in events], expected)

    log = AnotherRunAnnounces(InMemoryEventStore())
    task_id = await submitted(log)
    assert await run_analysis(Agent(log, tools(), settings()), task_id) == "completed"
    stream = await log.store.read_stream(task_id)
    assert len(of_type(stream, ev.ProgressReported)) == 1


async def test_the_checks_are_announced_in_the_append_that_records_the_entities() -> None:
    """Nothing is done between the two: one append, not two."""

    class Batches(Intercepted):
        def __init__(self) -> None:
            super().__init__(InMemoryEventStore())
            self.batches: list[list[str]] = []

        async def before(self, task_id: str, events: Sequence[NewEvent], expected: int) -> None:
            self.batches.append([e.type for e in events])

    log = Batches()
    task_id = await submitted(log)
    assert await run_analysis(Agent(log, tools(), settings()), task_id) == "completed"
    assert ["EntitiesExtracted", "ProgressReported"] in log.batches
    stream = await log.store.read_stream(task_id)
    assert [r.type for r in stream][:4] == [
        "TaskSubmitted", "AnalysisStarted", "EntitiesExtracted", "ProgressReported",
    ]  # fmt: skip
