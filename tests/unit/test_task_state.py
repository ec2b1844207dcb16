from __future__ import annotations

from datetime import timedelta

import pytest

from domain import events as ev
from domain.task import TaskState, fold
from tests.factories import T0, recorded_stream

pytestmark = pytest.mark.unit


SUBMITTED = ev.TaskSubmitted(content="URGENT pay now", kind="sms")
STARTED = ev.ToolCallStarted(
    call_id="scam_db:+15550100", tool="scam_database", step="scam_db", input={}
)
DONE = ev.ToolCallCompleted(
    call_id="scam_db:+15550100", tool="scam_database", step="scam_db", output={}
)
VERDICT = ev.VerdictReached(verdict="scam", score=0.9, confidence=0.8)


def folded(*events: ev.DomainEvent) -> TaskState:
    state = fold(recorded_stream(*events))
    assert state is not None
    return state


def test_a_new_task_is_submitted() -> None:
    state = folded(SUBMITTED)
    assert (state.status, state.percent, state.tenant, state.version) == ("submitted", 0, "acme", 1)
    assert state.submitted_at == T0 + timedelta(seconds=1)


def test_progress_follows_the_steps_and_never_goes_back() -> None:
    state = folded(SUBMITTED, ev.EntitiesExtracted(), STARTED, DONE)
    assert (state.status, state.current_step, state.percent) == ("running", "scam_db", 30)
    state = folded(SUBMITTED, ev.ProgressReported(message="x", percent=50), ev.EntitiesExtracted())
    assert state.percent == 50


def test_a_started_call_without_result_is_unfinished_and_a_completed_one_is_remembered() -> None:
    assert folded(SUBMITTED, STARTED).unfinished_calls == {"scam_db:+15550100"}
    state = folded(SUBMITTED, STARTED, DONE)
    assert state.unfinished_calls == frozenset()
    assert state.completed_calls == {"scam_db:+15550100": 3}


def test_completion_carries_the_verdict_and_a_review_overrides_it() -> None:
    state = folded(SUBMITTED, VERDICT, ev.TaskCompleted(verdict="scam"))
    assert (state.status, state.percent, state.verdict, state.finished) == (
        "completed",
        100,
        "scam",
        True,
    )
    assert state.finished_at == T0 + timedelta(seconds=3)
    reviewed = folded(
        SUBMITTED,
        VERDICT,
        ev.TaskCompleted(),
        ev.VerdictReviewed(decision="override", verdict="safe"),
    )
    assert (reviewed.verdict, reviewed.reviewed_verdict) == ("scam", "safe")


def test_nothing_but_reviews_changes_a_finished_task() -> None:
    state = folded(SUBMITTED, ev.TaskCancelled(reason="user"), ev.EntitiesExtracted(), VERDICT)
    assert (state.status, state.verdict, state.version) == ("cancelled", None, 4)


def test_a_failed_task_keeps_its_error() -> None:
    state = folded(SUBMITTED, ev.TaskFailed(error="no tool answered", step="reasoning"))
    assert (state.status, state.error, state.current_step) == (
        "failed",
        "no tool answered",
        "failed",
    )


def test_a_stream_must_start_with_task_submitted() -> None:
    with pytest.raises(ValueError, match="starts with EntitiesExtracted"):
        fold(recorded_stream(ev.EntitiesExtracted()))
