"""The worker's decisions, as a pure function of the folded stream: what `next_actions` asks for
at each point of an analysis, of a resumed one, and of one whose budgets are spent."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from domain import events as ev
from domain.decider import (
    CallTool,
    ExtractEntities,
    ReachVerdict,
    Record,
    next_actions,
)
from domain.extraction import extract_entities
from domain.planning import PlannedCall, plan_tool_calls
from domain.task import TaskState, fold
from domain.tools import RemoteTool
from tests.factories import recorded_stream

pytestmark = pytest.mark.unit

CONTENT = "URGENT: verify your account at http://paypa1-login.top/verify or call +1 900 555 0199"
SUBMITTED = ev.TaskSubmitted(content=CONTENT, kind="sms")
ENTITIES = extract_entities(CONTENT, "sms", default_region="US")
PLAN = plan_tool_calls(ENTITIES, kind="sms", client_metadata={}, tenant="acme")
EXTRACTED = ev.EntitiesExtracted(entities=ENTITIES)


@dataclass(frozen=True)
class Limits:
    analysis_max_tries: int = 5
    tool_max_attempts: int = 3
    tool_concurrency: int = 8
    tool_retry_backoff_s: float = 0.25
    default_region: str = "US"
    mcp_tools: tuple[RemoteTool, ...] = ()


LIMITS = Limits()


def state_of(*events: ev.DomainEvent) -> TaskState:
    state = fold(recorded_stream(SUBMITTED, *events))
    assert state is not None
    return state


def run(n: int, step: str | None = None, percent: int = 0) -> ev.AnalysisStarted:
    return ev.AnalysisStarted(run=n, max_runs=5, step=step, percent=percent)


def announced() -> ev.ProgressReported:
    tools = ", ".join(sorted({c.tool for c in PLAN}))
    return ev.ProgressReported(
        message=f"Running {len(PLAN)} checks ({tools})", percent=15, step="entity_extraction"
    )


def started(call: PlannedCall, attempt: int = 1) -> ev.ToolCallStarted:
    return ev.ToolCallStarted(
        call_id=call.call_id, tool=call.tool, step=call.step, input=call.input, attempt=attempt
    )


def completed(call: PlannedCall) -> ev.ToolCallCompleted:
    return ev.ToolCallCompleted(call_id=call.call_id, tool=call.tool, step=call.step, output={})


def failed(call: PlannedCall, attempt: int, *, again: bool) -> ev.ToolCallFailed:
    return ev.ToolCallFailed(
        call_id=call.call_id,
        tool=call.tool,
        step=call.step,
        error="down",
        attempt=attempt,
        will_retry=again,
    )


def test_a_new_task_starts_its_first_run_then_reads_the_message() -> None:
    assert next_actions(state_of(), LIMITS) == [Record(run(1))]
    assert next_actions(state_of(run(1)), LIMITS, run=1) == [ExtractEntities(CONTENT, "sms", "US")]


def test_a_resumed_task_starts_a_run_where_it_stood() -> None:
    state = state_of(run(1), EXTRACTED, ev.ProgressReported(message="m", percent=15))
    assert next_actions(state, LIMITS) == [Record(run(2, "entity_extraction", 15))]


def test_a_task_that_had_all_its_runs_is_failed_where_it_stood() -> None:
    state = state_of(run(1), EXTRACTED, run(2, "entity_extraction", 10))
    (action,) = next_actions(state, Limits(analysis_max_tries=2))
    assert isinstance(action, Record) and isinstance(action.event, ev.TaskFailed)
    assert (
        "started 2 times" in action.event.error and "analysis_max_tries is 2" in action.event.error
    )
    assert action.event.percent == 10


def test_the_checks_are_announced_once_per_run_then_all_calls_start_at_once() -> None:
    assert next_actions(state_of(run(1), EXTRACTED), LIMITS, run=1) == [
        Record(announced(), check_cancelled=True)
    ]
    actions = next_actions(state_of(run(1), EXTRACTED, announced()), LIMITS, run=1)
    assert actions == [CallTool(call, 1, True, 0.0) for call in PLAN]
    assert len(PLAN) >= 3


def test_calls_in_flight_count_against_the_concurrency() -> None:
    limits = Limits(tool_concurrency=2)
    first = state_of(run(1), EXTRACTED, announced())
    assert [a.call_id for a in next_actions(first, limits, run=1)] == [c.call_id for c in PLAN[:2]]
    one_running = state_of(run(1), EXTRACTED, announced(), started(PLAN[0]))
    assert [a.call_id for a in next_actions(one_running, limits, run=1)] == [PLAN[1].call_id]
    both = state_of(run(1), EXTRACTED, announced(), started(PLAN[0]), started(PLAN[1]))
    assert next_actions(both, limits, run=1) == [], "nothing to do but wait"


def test_a_failure_worth_retrying_is_retried_with_exponential_backoff() -> None:
    call = PLAN[0]
    events = [run(1), EXTRACTED, announced(), *(completed(c) for c in PLAN[1:])]
    once = state_of(*events, started(call), failed(call, 1, again=True))
    assert next_actions(once, LIMITS, run=1) == [CallTool(call, 2, True, 0.25)]
    twice = state_of(
        *events,
        started(call),
        failed(call, 1, again=True),
        started(call, 2),
        failed(call, 2, again=True),
    )
    assert next_actions(twice, LIMITS, run=1) == [CallTool(call, 3, False, 0.5)]


def test_a_completed_or_given_up_call_is_never_made_again() -> None:
    done = state_of(run(1), EXTRACTED, *(completed(c) for c in PLAN))
    resumed = state_of(run(1), EXTRACTED, *(completed(c) for c in PLAN[1:]), run(2))
    given_up = state_of(
        run(1), EXTRACTED, *(completed(c) for c in PLAN[1:]), failed(PLAN[0], 1, again=False)
    )
    assert next_actions(done, LIMITS, run=1) == [ReachVerdict()]
    assert next_actions(given_up, LIMITS, run=1) == [ReachVerdict()]
    (announce,) = next_actions(resumed, LIMITS, run=2)
    assert isinstance(announce, Record) and "Running 1 checks" in str(announce.event)
    with_announce = state_of(
        run(1), EXTRACTED, *(completed(c) for c in PLAN[1:]), run(2), announced()
    )
    assert next_actions(with_announce, LIMITS, run=2) == [CallTool(PLAN[0], 1, True, 0.0)]


def test_an_attempt_cut_short_by_a_crash_counts_and_a_spent_call_is_given_up() -> None:
    call = PLAN[0]
    others = [completed(c) for c in PLAN[1:]]
    cut_once = state_of(run(1), EXTRACTED, *others, started(call), run(2), announced())
    assert next_actions(cut_once, LIMITS, run=2) == [CallTool(call, 2, True, 0.0)]
    spent = state_of(
        run(1), EXTRACTED, *others, started(call), run(2), started(call, 2), run(3), announced()
    )
    (action,) = next_actions(spent, Limits(tool_max_attempts=2), run=3)
    assert isinstance(action, Record) and action.call_id == call.call_id
    assert isinstance(action.event, ev.ToolCallFailed)
    assert (action.event.attempt, action.event.will_retry) == (2, False)
    assert "tool_max_attempts" in action.event.error


def test_a_recorded_verdict_only_needs_its_completion() -> None:
    verdict = ev.VerdictReached(verdict="scam", score=0.9, confidence=0.8)
    state = state_of(run(1), EXTRACTED, verdict, run(2))
    assert next_actions(state, LIMITS, run=2) == [Record(ev.TaskCompleted(verdict="scam"))]


def test_without_evidence_the_task_fails_at_the_reasoning_step() -> None:
    # The worker records an extraction before anything else, so only a state made by hand
    # lacks it; the decision stands all the same.
    state = state_of(run(1), EXTRACTED, *(failed(c, 1, again=False) for c in PLAN))
    assert next_actions(state, LIMITS, run=1) == [ReachVerdict()], "an extraction is evidence"
    bare = replace(state, analysis=replace(state.analysis, entities=None))
    assert not bare.analysis.has_evidence
    with_entities_unknown = next_actions(bare, LIMITS, run=1)
    assert with_entities_unknown == [ExtractEntities(CONTENT, "sms", "US")]


@pytest.mark.parametrize(
    "end",
    [ev.TaskCompleted(), ev.TaskFailed(error="x"), ev.TaskCancelled(reason="no")],
    ids=["completed", "failed", "cancelled"],
)
def test_nothing_is_done_for_a_finished_task(end: ev.DomainEvent) -> None:
    assert next_actions(state_of(run(1), end), LIMITS) == []
    assert next_actions(state_of(run(1), end), LIMITS, run=1) == []
