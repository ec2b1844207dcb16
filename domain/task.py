"""A task's state: a pure fold over its stream. Nothing here does I/O.

The worker folds the stream to decide what to do next (`domain.decider`); projections fold it to
answer reads; progress messages, the evidence the reasoner weighs and the audit read what it
folds. All of them use `evolve`, so none can disagree about what an event means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from domain import events as ev
from domain.errors import InvalidReview, TaskAlreadyFinished, TaskNotReviewable
from domain.log import RecordedEvent

Status = Literal["submitted", "running", "completed", "failed", "cancelled"]
# A task ends with one of these events, and its status (and its last progress step, which
# bears the same name) is then one of FINISHED. Declared here only.
TERMINAL_EVENTS = (ev.TaskCompleted, ev.TaskFailed, ev.TaskCancelled)
TERMINAL_EVENT_TYPES = frozenset(cls.type_name for cls in TERMINAL_EVENTS)
FINISHED: frozenset[Status] = frozenset({"completed", "failed", "cancelled"})

PREVIEW_CHARS = 280

# Where a task stands, in percent, once a step has reported (the wire format's numbers: entity
# extraction 10, tools between 20 and 80, reasoning 90, completed 100).
STEP_PERCENT: dict[str, int] = {
    "entity_extraction": 10,
    "scam_db": 30,
    "exa_search": 45,
    "domain_reputation": 60,
    "phone_validator": 75,
    "reasoning": 90,
    "completed": 100,
}
_OTHER_TOOL_PERCENT = 20


def event_percent(event: ev.DomainEvent) -> int:
    """The percent a client's progress message for `event` says. A task's percent is the
    highest of these so far: it never goes back, and only completion reaches 100 — a task
    that fails or is cancelled stays where it stood (its event records where that was)."""
    match event:
        case (
            ev.AnalysisStarted(percent=percent)
            | ev.ProgressReported(percent=percent)
            | ev.TaskFailed(percent=percent)
            | ev.TaskCancelled(percent=percent)
        ):
            return percent
        case ev.EntitiesExtracted():
            return STEP_PERCENT["entity_extraction"]
        case ev.ToolCallStarted(step=step):  # a little short of the step, which is under way
            return max(STEP_PERCENT.get(step, _OTHER_TOOL_PERCENT) - 5, 15)
        case ev.ToolCallCompleted(step=step) | ev.ToolCallFailed(step=step):
            return STEP_PERCENT.get(step, _OTHER_TOOL_PERCENT)
        case ev.VerdictReached():
            return STEP_PERCENT["reasoning"]
        case ev.TaskCompleted() | ev.VerdictReviewed():
            return 100
    return 0


CallOutcome = Literal["started", "completed", "failed", "gave_up"]


@dataclass(frozen=True)
class Call:
    """One tool call as its events tell it. `outcome` is how its last attempt ended: `started`
    (no end recorded: still running, or cut short by a crash or a run's timeout), `failed`
    (another attempt is due: will_retry), `gave_up` (failed for good) or `completed`."""

    call_id: str
    tool: str
    step: ev.Step
    input: dict[str, Any]  # what its first attempt was asked
    attempts: int = 0  # attempts started, across all runs
    outcome: CallOutcome = "started"
    run: int = 0  # the run in which its last attempt started
    run_attempts: int = 0  # attempts started in that run
    completion: tuple[int, ev.ToolCallCompleted] | None = None  # (version, event): the first
    failures: tuple[tuple[int, ev.ToolCallFailed], ...] = ()  # (version, event): every one

    @property
    def settled(self) -> bool:
        """Nothing more will be tried: it completed, or was given up."""
        return self.outcome in ("completed", "gave_up")


@dataclass(frozen=True)
class Analysis:
    """What the analysis has done so far, for the worker's decisions, the reasoner's evidence
    and the audit. Folded from the stream; the projection row does not keep it, so a state read
    back from the row has this empty default."""

    submission: ev.TaskSubmitted | None = None
    runs: int = 0  # AnalysisStarted events: the log, not the queue, counts the runs
    entities: tuple[ev.Entity, ...] | None = None  # None until extracted
    extraction_version: int | None = None
    calls: Mapping[str, Call] = field(default_factory=dict)
    progress_run: int = 0  # the run in which progress was last reported
    reached: tuple[int, ev.VerdictReached] | None = None  # (version, event): the last verdict

    @property
    def has_evidence(self) -> bool:
        """False when nothing is left to reason on: no extraction and no tool that answered."""
        return self.entities is not None or any(c.completion for c in self.calls.values())


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
    analysis: Analysis = field(default_factory=Analysis)

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
            analysis=Analysis(submission=event),
        )
    if isinstance(event, ev.VerdictReviewed):
        return _changed(state, version=recorded.version, reviewed_verdict=event.verdict)
    if state.finished:
        return _changed(state, version=recorded.version)
    return _changed(
        state,
        version=recorded.version,
        percent=max(state.percent, event_percent(event)),
        analysis=_analysed(state.analysis, event, recorded.version),
        **_running(state, event, recorded),
    )


def _running(state: TaskState, event: ev.DomainEvent, recorded: RecordedEvent) -> dict[str, Any]:
    """What one event changes in an unfinished task, besides its version, percent and analysis."""
    match event:
        case ev.AnalysisStarted():  # a worker has it; the step stays where it was
            return {"status": "running"}
        case ev.EntitiesExtracted():
            return _at_step("entity_extraction")
        case ev.ToolCallStarted(call_id=call_id, step=step):
            return _at_step(step, started_calls=state.started_calls | {call_id})
        case ev.ToolCallCompleted(call_id=call_id, step=step):
            completed = {**state.completed_calls, call_id: recorded.version}
            return _at_step(step, completed_calls=completed)
        case ev.ToolCallFailed(step=step):
            return _at_step(step, failed_attempts=state.failed_attempts + 1)
        case ev.ProgressReported(step=step):
            return {"status": "running", "current_step": step or state.current_step}
        case ev.VerdictReached(verdict=verdict, score=score, confidence=confidence):
            return _at_step("reasoning", verdict=verdict, score=score, confidence=confidence)
        case ev.TaskCompleted():
            return _finish("completed", recorded)
        case ev.TaskFailed(error=error):
            return {**_finish("failed", recorded), "error": error}
        case ev.TaskCancelled():
            return _finish("cancelled", recorded)
    return {}


def _analysed(analysis: Analysis, event: ev.DomainEvent, version: int) -> Analysis:
    match event:
        case ev.AnalysisStarted():
            return _changed(analysis, runs=analysis.runs + 1)
        case ev.EntitiesExtracted(entities=entities) if analysis.entities is None:
            return _changed(analysis, entities=entities, extraction_version=version)
        case ev.ToolCallStarted() | ev.ToolCallCompleted() | ev.ToolCallFailed():
            call = _call_after(analysis.calls.get(event.call_id), event, version, analysis.runs)
            return _changed(analysis, calls={**analysis.calls, event.call_id: call})
        case ev.ProgressReported():
            return _changed(analysis, progress_run=analysis.runs)
        case ev.VerdictReached():
            return _changed(analysis, reached=(version, event))
    return analysis


def _call_after(
    call: Call | None,
    event: ev.ToolCallStarted | ev.ToolCallCompleted | ev.ToolCallFailed,
    version: int,
    run: int,
) -> Call:
    if call is None:
        asked = event.input if isinstance(event, ev.ToolCallStarted) else {}
        call = Call(event.call_id, event.tool, event.step, asked)
    completed = call.outcome == "completed"  # a later event does not undo a completion
    match event:
        case ev.ToolCallStarted():
            in_run = call.run_attempts + 1 if call.run == run else 1
            outcome: CallOutcome = "completed" if completed else "started"
            return _changed(
                call, attempts=call.attempts + 1, outcome=outcome, run=run, run_attempts=in_run
            )
        case ev.ToolCallCompleted():
            first = call.completion or (version, event)
            return _changed(call, outcome="completed", completion=first)
        case ev.ToolCallFailed(will_retry=again):
            outcome = "completed" if completed else "failed" if again else "gave_up"
            return _changed(call, outcome=outcome, failures=(*call.failures, (version, event)))
    return call


def _at_step(step: str, **changes: Any) -> dict[str, Any]:
    return {"status": "running", "current_step": step, **changes}


def _finish(status: Status, recorded: RecordedEvent) -> dict[str, Any]:
    return {"status": status, "current_step": status, "finished_at": recorded.recorded_at}


_T = TypeVar("_T", TaskState, Analysis, Call)


def _changed(value: _T, **changes: Any) -> _T:
    """`dataclasses.replace` without running `__init__` again, which the frozen classes make
    slow: the projection and the worker evolve a state for every event they append."""
    new = object.__new__(type(value))
    new.__dict__.update(value.__dict__, **changes)
    return new


def fold(stream: Iterable[RecordedEvent], state: TaskState | None = None) -> TaskState | None:
    """Fold a stream (or the rest of one, given the state so far) into the task's state."""
    for recorded in stream:
        state = evolve(state, recorded)
    return state


def cancel(state: TaskState, reason: str | None) -> ev.TaskCancelled:
    """The decision to cancel: only an unfinished task can be cancelled; it stays at the
    percent it had reached."""
    if state.finished:
        raise TaskAlreadyFinished(state.task_id, state.status, "cancel")
    return ev.TaskCancelled(reason=reason, percent=state.percent)


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
