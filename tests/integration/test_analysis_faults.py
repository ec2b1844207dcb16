"""How an analysis treats tools that time out or raise: every attempt is an event, retries are
bounded, and the task still reaches a verdict with less confidence."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from domain import events as ev
from domain.log import EventMetadata, NewEvent
from domain.task import TaskState
from domain.tools import Tool
from infrastructure.event_store import AppendResult, EventStore
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from infrastructure.tools.domain_reputation import DomainReputation
from infrastructure.tools.phone_validator import PhoneValidator
from workers.analysis import Agent, run_analysis

pytestmark = pytest.mark.integration

CONTENT = "URGENT: verify your account at http://paypa1-login.top/verify or call +1 900 555 0199"


class Answers:
    """A stand-in for a networked tool, answering with a fixed output."""

    def __init__(self, name: str, output: dict[str, Any]) -> None:
        self.name, self.output, self.calls = name, output, 0

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return self.output


class Raises(Answers):
    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        raise ConnectionError("scam database unreachable")


class Hangs(Answers):
    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(30)
        return self.output


async def analyse(store: EventStore, settings: Settings, *tools: Tool) -> list[Any]:
    task_log = TaskLog(store)
    metadata = EventMetadata(tenant="acme", actor="test")
    submitted = ev.TaskSubmitted(content=CONTENT, kind="sms")
    task_id = f"faults-{uuid.uuid4()}"
    await task_log.append(task_id, [NewEvent(submitted, metadata)], 0)
    offline: list[Tool] = [DomainReputation(), PhoneValidator()]
    agent = Agent(task_log, {t.name: t for t in [*offline, *tools]}, settings)
    assert await run_analysis(agent, task_id) == "completed"
    return await store.read_stream(task_id)


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"tool_timeout_s": 0.2, "tool_max_attempts": 2, "tool_retry_backoff_s": 0.0}
    )


async def test_a_tool_that_raises_or_hangs_is_retried_then_given_up(
    store: EventStore, fast_settings: Settings
) -> None:
    raises = Raises("scam_database", {})
    hangs = Hangs("web_search", {})
    stream = await analyse(store, fast_settings, raises, hangs)

    failed = [r.event for r in stream if isinstance(r.event, ev.ToolCallFailed)]
    db = [f for f in failed if f.tool == "scam_database"]
    web = [f for f in failed if f.tool == "web_search"]
    assert raises.calls == len(db) and hangs.calls == len(web) == 2
    assert {f.attempt for f in web} == {1, 2}
    assert [f.will_retry for f in sorted(web, key=lambda f: f.attempt)] == [True, False]
    assert all(f.timed_out for f in web) and not any(f.timed_out for f in db)
    assert all("scam database unreachable" in f.error for f in db)
    started = [r.event for r in stream if isinstance(r.event, ev.ToolCallStarted)]
    assert len(started) == len(failed) + len(
        [r for r in stream if isinstance(r.event, ev.ToolCallCompleted)]
    ), "every attempt starts with an event and ends with one"


async def test_failing_tools_lower_confidence_but_not_the_verdict(
    store: EventStore, fast_settings: Settings
) -> None:
    working = await analyse(
        store,
        fast_settings,
        Answers("scam_database", {"matches": []}),
        Answers("web_search", {"provider": "local", "results": []}),
    )
    failing = await analyse(
        store, fast_settings, Raises("scam_database", {}), Hangs("web_search", {})
    )

    def verdict(stream: list[Any]) -> ev.VerdictReached:
        (found,) = [r.event for r in stream if isinstance(r.event, ev.VerdictReached)]
        return found

    assert verdict(failing).verdict == verdict(working).verdict
    assert verdict(failing).confidence < verdict(working).confidence


async def test_a_run_resumed_after_the_verdict_only_completes(
    store: EventStore, fast_settings: Settings
) -> None:
    task_log = TaskLog(store)
    metadata = EventMetadata(tenant="acme", actor="test")
    task_id = f"resumed-{uuid.uuid4()}"
    events = [
        ev.TaskSubmitted(content=CONTENT, kind="sms"),
        ev.EntitiesExtracted(),
        ev.ToolCallFailed(call_id="x", tool="web_search", step="exa_search", error="down"),
        ev.VerdictReached(verdict="suspicious", score=0.4, confidence=0.5),
    ]
    await task_log.append(task_id, [NewEvent(e, metadata) for e in events], 0)
    raises = Raises("web_search", {})
    agent = Agent(task_log, {"web_search": raises}, fast_settings)

    assert await run_analysis(agent, task_id) == "completed"
    stream = await store.read_stream(task_id)
    assert [r.type for r in stream[4:]] == ["AnalysisStarted", "TaskCompleted"]
    assert raises.calls == 0, "no tool is called again once the verdict is recorded"


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "bad",
    [
        {"title": "scam report \ud83d", "url": "https://r.example/1"},  # a lone surrogate
        {"title": "page \x00 text", "url": "https://r.example/1"},
        {"title": "report", "url": "https://r.example/1", "score": float("nan")},
        {"title": "report", "url": "https://r.example/1", "score": float("inf")},
        {"title": "report", "url": "https://r.example/1", "extra": _nested(200)},
    ],
    ids=["surrogate", "nul", "nan", "infinity", "too-deep"],
)
async def test_an_output_the_log_cannot_store_fails_that_call_alone(
    store: EventStore, fast_settings: Settings, bad: dict[str, Any]
) -> None:
    web = Answers("web_search", {"provider": "exa", "results": [bad]})
    database = Answers("scam_database", {"matches": []})
    stream = await analyse(store, fast_settings, web, database)

    failed = [r.event for r in stream if isinstance(r.event, ev.ToolCallFailed)]
    assert [(f.tool, f.will_retry) for f in failed] == [("web_search", False)]
    assert "cannot be recorded" in failed[0].error
    assert web.calls == 1, "the same question would get the same answer: not retried"
    completed = {r.event.tool for r in stream if isinstance(r.event, ev.ToolCallCompleted)}
    assert completed == {"scam_database", "domain_reputation", "phone_validator"}
    assert [r.type for r in stream[-2:]] == ["VerdictReached", "TaskCompleted"]


class Slow(Answers):
    """Answers after the other tools, within fast_settings' timeout."""

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(0.1)
        return self.output


class LosesOneCompletion(TaskLog):
    """A log that refuses every append holding `tool`'s completion while `refusing` (the
    database refused it), alone or written together with other calls' events."""

    def __init__(self, store: EventStore, tool: str) -> None:
        super().__init__(store)
        self.tool, self.refusing = tool, True

    async def append(
        self,
        task_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
        *,
        state: TaskState | None = None,
    ) -> AppendResult:
        if self.refusing and any(
            isinstance(e.event, ev.ToolCallCompleted) and e.event.tool == self.tool for e in events
        ):
            raise OSError("the database refused the event")
        return await super().append(task_id, events, expected_version, state=state)


async def test_a_call_whose_outcome_cannot_be_appended_does_not_cancel_the_others(
    store: EventStore, fast_settings: Settings
) -> None:
    task_log = LosesOneCompletion(store, "web_search")
    task_id = f"unrecorded-{uuid.uuid4()}"
    submitted = ev.TaskSubmitted(content=CONTENT, kind="sms")
    await task_log.append(
        task_id, [NewEvent(submitted, EventMetadata(tenant="acme", actor="t"))], 0
    )
    web = Answers("web_search", {"provider": "local", "results": []})
    slow = Slow("scam_database", {"matches": []})
    agent = Agent(task_log, {t.name: t for t in [web, slow]}, fast_settings)

    with pytest.raises(ExceptionGroup) as crashed:  # the run fails: its job is retried
        await run_analysis(agent, task_id)
    assert crashed.group_contains(OSError, match="the database refused the event")
    stream = await store.read_stream(task_id)
    completed = [r.event.tool for r in stream if isinstance(r.event, ev.ToolCallCompleted)]
    assert completed.count("scam_database") == slow.calls == 3, "the slower calls finished"

    task_log.refusing = False
    assert await run_analysis(agent, task_id) == "completed"
    stream = await store.read_stream(task_id)
    completed = [r.event.tool for r in stream if isinstance(r.event, ev.ToolCallCompleted)]
    assert (completed.count("web_search"), web.calls) == (1, 2), "only the lost call is redone"
    assert slow.calls == 3, "no completed call is made again"
