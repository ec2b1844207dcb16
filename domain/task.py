"""A task's state: a pure fold over its stream. Nothing here does I/O.

The worker folds the stream to know what is done; projections fold it to answer reads. Both use
`evolve`, so the two can never disagree about what an event means.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from domain import events as ev
from domain.errors import InvalidReview, TaskAlreadyFinished, TaskNotReviewable
from domain.log import RecordedEvent

Status = Literal["submitted", "running", "completed", "failed", "cancelled"]
FINISHED: frozenset[Status] = frozenset({"completed", "failed", "cancelled"})

# Where a task stands, in percent, once a step has reported (the seed's numbers: entity extraction
# 10, tools between 20 and 80, reasoning 90, completed 100). Percent never goes backwards.
PREVIEW_CHARS = 280

STEP_PERCENT: dict[str, int] = {
    "entity_extraction": 10,
    "scam_db": 30,
    "exa_search": 45,
    "domain_reputation": 60,
    "phone_validator": 75,
    "reasoning": 90,
    "completed": 100,
}


@dataclass(frozen=True)
class TaskState:
    task_id: str
    tenant: str
    version: int
    status: Status
    kind: str
    submitted_at: datetime
    content_preview: str = ""
    submitted_by: str = ""  # the actor of TaskSubmitted: a submitter reads only its own tasks
    current_step: str | None = None
    percent: int = 0
    verdict: ev.Verdict | None = None
    score: float | None = None
    confidence: float | None = None
    reviewed_verdict: ev.Verdict | None = None
    finished_at: datetime | None = None
    error: str | None = None
    # call_id -> version of the event that completed it; a completed call is never made again.
    completed_calls: dict[str, int] = field(default_factory=dict)
    failed_attempts: int = 0
    started_calls: frozenset[str] = frozenset()

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def final_verdict(self) -> ev.Verdict | None:
        """The analyst's verdict when reviewed, else the agent's."""
        return self.reviewed_verdict or self.verdict

    @property
    def duration_ms(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.submitted_at).total_seconds() * 1000

    @property
    def unfinished_calls(self) -> frozenset[str]:
        """Calls that started but never completed: after a crash these are retried."""
        return self.started_calls - self.completed_calls.keys()


def evolve(state: TaskState | None, recorded: RecordedEvent) -> TaskState:
    """The state after one more event. Events after the task finished change only reviews."""
    event = recorded.event
    if state is None:
        if not isinstance(event, ev.TaskSubmitted):
            raise ValueError(
                f"stream {recorded.stream_id!r} starts with {recorded.type}, not TaskSubmitted"
            )
        return TaskState(
            task_id=recorded.stream_id,
            tenant=recorded.metadata.tenant,
            version=recorded.version,
            status="submitted",
            kind=event.kind,
            submitted_at=recorded.recorded_at,
            content_preview=event.content[:PREVIEW_CHARS],
            submitted_by=recorded.metadata.actor,
        )
    state = replace(state, version=recorded.version)
    if isinstance(event, ev.VerdictReviewed):
        return replace(state, reviewed_verdict=event.verdict)
    if state.finished:
        return state
    return _evolve_running(state, event, recorded)


def _evolve_running(state: TaskState, event: ev.DomainEvent, recorded: RecordedEvent) -> TaskState:
    match event:
        case ev.AnalysisStarted():  # a worker has it; the step and percent stay where they were
            return replace(state, status="running")
        case ev.EntitiesExtracted():
            return _at_step(state, "entity_extraction")
        case ev.ToolCallStarted(call_id=call_id, step=step):
            state = replace(state, started_calls=state.started_calls | {call_id})
            return _at_step(state, step, advance=False)
        case ev.ToolCallCompleted(call_id=call_id, step=step):
            completed = {**state.completed_calls, call_id: recorded.version}
            return _at_step(replace(state, completed_calls=completed), step)
        case ev.ToolCallFailed(step=step):
            return _at_step(replace(state, failed_attempts=state.failed_attempts + 1), step)
        case ev.ProgressReported(percent=percent, step=step):
            state = replace(state, status="running", percent=max(state.percent, percent))
            return replace(state, current_step=step) if step else state
        case ev.VerdictReached(verdict=verdict, score=score, confidence=confidence):
            state = replace(state, verdict=verdict, score=score, confidence=confidence)
            return _at_step(state, "reasoning")
        case ev.TaskCompleted():
            return _finish(state, "completed", recorded, step="completed")
        case ev.TaskFailed(error=error):
            return replace(_finish(state, "failed", recorded, step="failed"), error=error)
        case ev.TaskCancelled():
            return _finish(state, "cancelled", recorded, step="cancelled")
    return state


def _at_step(state: TaskState, step: str, *, advance: bool = True) -> TaskState:
    percent = max(state.percent, STEP_PERCENT.get(step, 0)) if advance else state.percent
    return replace(state, status="running", current_step=step, percent=percent)


def _finish(state: TaskState, status: Status, recorded: RecordedEvent, *, step: str) -> TaskState:
    percent = 100 if status == "completed" else state.percent
    return replace(
        state, status=status, current_step=step, percent=percent, finished_at=recorded.recorded_at
    )


def fold(stream: Iterable[RecordedEvent], state: TaskState | None = None) -> TaskState | None:
    """Fold a stream (or the rest of one, given the state so far) into the task's state."""
    for recorded in stream:
        state = evolve(state, recorded)
    return state


def cancel(state: TaskState, reason: str | None) -> ev.TaskCancelled:
    """The decision to cancel: only an unfinished task can be cancelled."""
    if state.finished:
        raise TaskAlreadyFinished(state.task_id, state.status, "cancel")
    return ev.TaskCancelled(reason=reason)


def review(
    state: TaskState,
    decision: Literal["confirm", "override"],
    verdict: ev.Verdict | None,
    note: str,
) -> ev.VerdictReviewed:
    """An analyst's review: only a completed task, with a verdict, can be reviewed. `confirm`
    keeps the agent's verdict; `override` must name a different one."""
    if state.status != "completed" or state.verdict is None:
        raise TaskNotReviewable(state.task_id, state.status)
    if decision == "confirm":
        if verdict not in (None, state.verdict):
            raise InvalidReview("confirm keeps the agent's verdict; use override to change it")
        return ev.VerdictReviewed(decision="confirm", verdict=state.verdict, note=note)
    if verdict is None or verdict == state.verdict:
        raise InvalidReview("override needs a verdict different from the agent's")
    return ev.VerdictReviewed(decision="override", verdict=verdict, note=note)
