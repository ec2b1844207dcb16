"""AnalysisStarted: a worker has the task; a resumed run tells clients where the task stood, so
their progress bar never goes back (clients show `percent` as it comes)."""

from __future__ import annotations

import pytest

from domain import events as ev
from domain.progress import progress_message
from domain.task import fold
from tests.factories import recorded_stream

pytestmark = pytest.mark.unit

SUBMITTED = ev.TaskSubmitted(content="pay now", kind="sms")


def test_a_started_run_makes_the_task_running_where_it_stood() -> None:
    first = fold(recorded_stream(SUBMITTED, ev.AnalysisStarted(run=1, max_runs=5)))
    assert first is not None
    assert (first.status, first.current_step, first.percent) == ("running", None, 0)
    resumed = fold(
        recorded_stream(
            SUBMITTED,
            ev.EntitiesExtracted(),
            ev.AnalysisStarted(run=2, max_runs=5, step="entity_extraction", percent=10),
        )
    )
    assert resumed is not None
    assert (resumed.current_step, resumed.percent) == ("entity_extraction", 10)


def test_the_message_of_a_run_keeps_the_seed_fields_and_never_goes_back() -> None:
    stream = recorded_stream(
        SUBMITTED,
        ev.AnalysisStarted(run=1, max_runs=5),
        ev.AnalysisStarted(run=2, max_runs=5, step="exa_search", percent=45),
    )
    first, resumed = (progress_message(r) for r in stream[1:])
    assert (first["step"], first["percent"], first["error"]) == ("entity_extraction", 0, False)
    assert first["message"] == "Analysis started"
    assert (resumed["step"], resumed["percent"]) == ("exa_search", 45)
    assert resumed["message"] == "Resuming the analysis (run 2 of 5)"
    assert resumed["event_type"] == "AnalysisStarted" and resumed["data"]["run"] == 2


def test_the_projection_percent_is_the_highest_the_messages_have_said() -> None:
    """What a client's progress bar shows (the highest percent so far) is the task's percent,
    at every event: the wire and the projection read the same fold."""
    started = ev.ToolCallStarted(call_id="c", tool="web_search", step="exa_search", input={})
    done = ev.ToolCallCompleted(call_id="c", tool="web_search", step="exa_search", output={})
    db = ev.ToolCallCompleted(call_id="d", tool="scam_database", step="scam_db", output={})
    for end in (
        ev.TaskCompleted(verdict="scam"),
        ev.TaskFailed(error="down", percent=45),
        ev.TaskCancelled(percent=45),
    ):
        stream = recorded_stream(
            SUBMITTED,
            ev.AnalysisStarted(run=1, max_runs=5),
            ev.EntitiesExtracted(),
            ev.ProgressReported(message="Running 2 checks", percent=15, step="entity_extraction"),
            started,
            done,
            db,  # finishes after a later step's call: its message says less, the task does not
            end,
        )
        highest = 0
        for i, recorded in enumerate(stream, start=1):
            highest = max(highest, progress_message(recorded)["percent"])
            state = fold(stream[:i])
            assert state is not None and state.percent == highest, (recorded.type, highest)
        last = progress_message(stream[-1])
        assert last["percent"] == (100 if isinstance(end, ev.TaskCompleted) else 45)
