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


def test_each_call_is_folded_with_its_attempts_and_outcome() -> None:
    again = ev.ToolCallFailed(
        call_id=STARTED.call_id, tool="scam_database", step="scam_db", error="x", will_retry=True
    )
    state = folded(
        SUBMITTED,
        ev.AnalysisStarted(run=1, max_runs=5),
        STARTED,
        again,
        STARTED.model_copy(update={"attempt": 2}),
    )
    call = state.analysis.calls[STARTED.call_id]
    assert (call.attempts, call.outcome, call.run, call.run_attempts) == (2, "started", 1, 2)
    assert [version for version, _ in call.failures] == [4]
    resumed = folded(
        SUBMITTED,
        ev.AnalysisStarted(run=1, max_runs=5),
        STARTED,
        ev.AnalysisStarted(run=2, max_runs=5),
        STARTED.model_copy(update={"attempt": 2}),
        DONE,
    )
    call = resumed.analysis.calls[STARTED.call_id]
    assert (resumed.analysis.runs, call.attempts, call.run, call.run_attempts) == (2, 2, 2, 1)
    assert call.settled and call.completion is not None and call.completion[0] == 6
    gave_up = folded(SUBMITTED, again.model_copy(update={"will_retry": False}))
    assert gave_up.analysis.calls[STARTED.call_id].outcome == "gave_up"


def test_the_fold_keeps_the_submission_the_entities_and_the_verdict() -> None:
    entities = (ev.Entity(kind="phone", value="+15550100"),)
    state = folded(SUBMITTED, ev.EntitiesExtracted(entities=entities), VERDICT)
    analysis = state.analysis
    assert analysis.submission == SUBMITTED and analysis.entities == entities
    assert analysis.extraction_version == 2 and analysis.reached == (3, VERDICT)
    assert analysis.has_evidence and not folded(SUBMITTED).analysis.has_evidence


def test_a_task_that_fails_or_is_cancelled_stays_at_the_percent_it_reached() -> None:
    for end in (
        ev.TaskFailed(error="no tool answered", percent=30),
        ev.TaskCancelled(reason="user", percent=30),
    ):
        state = folded(SUBMITTED, ev.EntitiesExtracted(), STARTED, DONE, end)
        assert (state.finished, state.percent) == (True, 30)
