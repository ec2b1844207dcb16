"""The worker's writer and one whole analysis against the in-memory log (no services): the
in-memory store can back what `TaskLog` backs today."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from domain import events as ev
from domain.log import EventMetadata, NewEvent
from infrastructure.event_log import TaskStreams
from infrastructure.memory_store import InMemoryEventStore, InMemoryTaskLog
from infrastructure.settings import load_settings
from infrastructure.task_log import TaskLog
from workers.analysis import Agent, run_analysis
from workers.task_writer import TaskGone, TaskWasCancelled, TaskWriter

pytestmark = pytest.mark.unit

CONTENT = "URGENT: verify your account at http://paypa1-login.top/verify or call +1 900 555 0199"
SUBMITTER = EventMetadata(tenant="acme", actor="user:1")

# Each tool's answer when it knows nothing about what it is asked (domain.tools has the shapes).
NOTHING_FOUND: dict[str, dict[str, Any]] = {
    "scam_database": {"matches": []},
    "web_search": {"provider": "local", "results": []},
    "domain_reputation": {
        "domain": "paypa1-login.top",
        "registered_domain": "paypa1-login.top",
        "risk": 0.0,
        "signals": [],
    },
    "phone_validator": {
        "number": "+19005550199",
        "valid": True,
        "number_type": "premium_rate",
        "region": "US",
        "carrier": None,
        "risk": 0.0,
        "signals": [],
    },
}


def task_streams(log: InMemoryTaskLog | TaskLog) -> TaskStreams:
    return log  # mypy checks that both task logs offer what the worker and use cases need


class Answers:
    """A tool that answers at once, and counts its calls."""

    def __init__(self, name: str) -> None:
        self.name, self.calls = name, 0

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return NOTHING_FOUND[self.name]


async def submitted(log: InMemoryTaskLog) -> str:
    task_id = f"task-{uuid.uuid4()}"
    submission = ev.TaskSubmitted(content=CONTENT, kind="sms")
    await log.append(task_id, [NewEvent(submission, SUBMITTER)], 0)
    return task_id


async def test_an_analysis_runs_to_its_verdict_and_a_rerun_repeats_nothing() -> None:
    log = InMemoryTaskLog(InMemoryEventStore())
    tools = {name: Answers(name) for name in NOTHING_FOUND}
    agent = Agent(log, tools, load_settings())
    task_id = await submitted(log)

    assert await run_analysis(agent, task_id) == "completed"
    stream = await log.store.read_stream(task_id)
    assert isinstance(stream[-1].event, ev.TaskCompleted)
    assert sum(tool.calls for tool in tools.values()) >= 2  # the URL's and the number's checks
    state = await log.task(task_id)
    assert state is not None and state.status == "completed" and state.version == len(stream)

    calls = {name: tool.calls for name, tool in tools.items()}
    assert await run_analysis(agent, task_id) == "completed"  # a finished task: nothing to do
    assert await log.store.stream_version(task_id) == len(stream)
    assert {name: tool.calls for name, tool in tools.items()} == calls


async def test_a_cancellation_appended_meanwhile_stops_the_writer() -> None:
    log = InMemoryTaskLog(InMemoryEventStore())
    task_id = await submitted(log)
    writer = TaskWriter(log, await log.store.read_stream(task_id))
    await writer.append(ev.ProgressReported(message="m", percent=10))
    await log.append(task_id, [NewEvent(ev.TaskCancelled(reason="no"), SUBMITTER)], 2)

    with pytest.raises(TaskWasCancelled):
        await writer.append(ev.ProgressReported(message="m", percent=20))
    assert [r.version for r in writer.stream] == [1, 2, 3]
    state = await log.task(task_id)
    assert state is not None and state.status == "cancelled"


async def test_a_stream_that_is_gone_stops_the_writer() -> None:
    """The writer saw a stream the log does not hold (pruned): TaskGone after one append."""
    other = InMemoryTaskLog(InMemoryEventStore())
    stream = await other.store.read_stream(await submitted(other))
    writer = TaskWriter(InMemoryTaskLog(InMemoryEventStore()), stream)
    with pytest.raises(TaskGone):
        await writer.append(ev.ProgressReported(message="m", percent=10))
