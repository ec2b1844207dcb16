"""What the worker does next for a task: a pure decision over its folded state.

The worker loops: fold the stream (`domain.task.evolve`), ask `next_actions`, perform what it
says, append the outcome, and ask again. An action either records a decision as it stands
(`Record`) or asks for work whose outcome the worker records: reading the message
(`ExtractEntities`), one attempt of one tool call (`CallTool`), the verdict (`ReachVerdict`).
Everything the decision rests on is in the log, so a worker that crashed is replaced by one that
folds the same stream and takes the same decisions: a completed call is never made again, and
runs and attempts are counted across crashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from domain import events as ev
from domain.log import RecordedEvent
from domain.planning import PlannedCall, plan_tool_calls
from domain.task import Call, TaskState, evolve
from domain.tools import RemoteTool

# Where the task stands once its checks are announced: extraction done, tools about to run.
CHECKS_PERCENT = 15
NO_EVIDENCE = (
    "No evidence to reason on: entity extraction and every tool failed. "
    "Check the worker's logs and the tools' availability, then resubmit."
)


class Limits(Protocol):
    """The settings a decision reads (infrastructure.settings.Settings has them all)."""

    @property
    def analysis_max_tries(self) -> int: ...
    @property
    def tool_max_attempts(self) -> int: ...
    @property
    def tool_concurrency(self) -> int: ...
    @property
    def tool_retry_backoff_s(self) -> float: ...
    @property
    def default_region(self) -> str: ...
    @property
    def mcp_tools(self) -> Sequence[RemoteTool]: ...


@dataclass(frozen=True)
class Record:
    """Append `event`, as decided. With `check_cancelled`, only if nothing was appended since
    the state it was decided on: a step that ends a phase of the analysis (its checks, its
    reasoning) is not taken for a task cancelled, or moved on by another run, meanwhile."""

    event: ev.DomainEvent
    check_cancelled: bool = False

    @property
    def call_id(self) -> str | None:
        """The tool call a give-up records (tool calls are performed side by side)."""
        return self.event.call_id if isinstance(self.event, ev.ToolCallFailed) else None


@dataclass(frozen=True)
class ExtractEntities:
    """Read the message (CPU work) and record what it holds: EntitiesExtracted."""

    content: str
    kind: ev.Kind
    default_region: str
    check_cancelled = False
    call_id = None


@dataclass(frozen=True)
class CallTool:
    """One attempt of one tool call, after waiting `backoff_s`: ToolCallStarted, then
    ToolCallCompleted or ToolCallFailed. A failure is retried (will_retry) only if
    `may_retry` and the failure is one worth retrying (a timeout, an error; not an answer the
    log cannot store, nor a tool this worker does not have)."""

    call: PlannedCall
    attempt: int
    may_retry: bool
    backoff_s: float = 0.0
    check_cancelled = False

    @property
    def call_id(self) -> str:
        return self.call.call_id


@dataclass(frozen=True)
class ReachVerdict:
    """Weigh the evidence (the LLM reasoner when configured, else the rules) and record
    VerdictReached with the task's completion (`concluded`)."""

    check_cancelled = True
    call_id = None


def concluded(verdict: ev.VerdictReached) -> tuple[ev.VerdictReached, ev.TaskCompleted]:
    """What ReachVerdict records, in one append: nothing is left to decide between a verdict
    and the completion it brings. (A stream whose verdict was recorded alone, by an earlier
    version, still gets its completion from `next_actions`.)"""
    return verdict, ev.TaskCompleted(verdict=verdict.verdict)


Action = Record | ExtractEntities | CallTool | ReachVerdict


def next_actions(state: TaskState, settings: Limits, run: int | None = None) -> list[Action]:
    """What to do next. `run` is the run this worker recorded (None until it has started one:
    a worker's first action starts its run, or fails a task that had all its runs). Tool
    calls come several at once; anything else comes alone. Nothing once the task has finished,
    nor while the calls under way are all there is to wait for."""
    if state.finished:
        return []
    if run is None:
        return [_start_run(state, settings)]
    if state.verdict is not None:  # recorded before a crash: only the completion is missing
        return [Record(ev.TaskCompleted(verdict=state.verdict))]
    analysis = state.analysis
    if analysis.entities is None:
        submitted = analysis.submission
        assert submitted is not None, "the worker folds the whole stream"
        return [ExtractEntities(submitted.content, submitted.kind, settings.default_region)]
    left = unsettled_calls(state, settings.mcp_tools)
    if left and analysis.progress_run != run:
        tools = ", ".join(sorted({call.tool for call in left}))
        announced = ev.ProgressReported(
            message=f"Running {len(left)} checks ({tools})",
            percent=CHECKS_PERCENT,
            step="entity_extraction",
        )
        return [Record(announced, check_cancelled=True)]
    if left:
        return _tool_calls(state, settings, run, left)
    if not analysis.has_evidence:
        failed = ev.TaskFailed(error=NO_EVIDENCE, step="reasoning", percent=state.percent)
        return [Record(failed, check_cancelled=True)]
    return [ReachVerdict()]


def decided_after(
    state: TaskState, recorded: RecordedEvent, settings: Limits, run: int | None
) -> Record | None:
    """The `Record` that `next_actions` will give once `recorded` is in the stream, when that
    is all it will give: the worker may append both together, one round trip where there
    would be two with nothing done in between (the checks announced with the entities they
    check). None when the next step is work, or tool calls."""
    actions = next_actions(evolve(state, recorded), settings, run)
    if len(actions) == 1 and isinstance(actions[0], Record):
        return actions[0]
    return None


def unsettled_calls(state: TaskState, remote_tools: Sequence[RemoteTool] = ()) -> list[PlannedCall]:
    """The planned calls neither completed nor given up, in plan order. Planning is
    deterministic, so the plan of a resumed run names the same calls, given the same remote
    tools: every worker of a deployment is configured alike (SCAMTRAIL_MCP_TOOLS)."""
    analysis = state.analysis
    if analysis.entities is None or analysis.submission is None:
        return []
    plan = plan_tool_calls(
        analysis.entities,
        kind=analysis.submission.kind,
        client_metadata=analysis.submission.client_metadata,
        tenant=state.tenant,
        remote_tools=remote_tools,
    )
    calls = analysis.calls
    return [p for p in plan if p.call_id not in calls or not calls[p.call_id].settled]


def runs_exhausted(runs: int, most: int, last: str = "") -> str:
    """TaskFailed's message once a task has had its analysis_max_tries runs."""
    how = last or "each one crashed, ran out of time or failed on an internal error"
    return (
        f"The analysis was started {runs} times (analysis_max_tries is {most}) and never "
        f"finished: {how}. The worker's log has the details; resubmit the message once the "
        "cause is fixed."
    )


def _start_run(state: TaskState, settings: Limits) -> Record:
    """One more run, or the task's failure if it had all its runs (each crashed, timed out or
    failed: nothing else leaves a task unfinished)."""
    runs, most = state.analysis.runs, settings.analysis_max_tries
    if runs >= most:
        return Record(ev.TaskFailed(error=runs_exhausted(runs, most), percent=state.percent))
    return Record(
        ev.AnalysisStarted(
            run=runs + 1, max_runs=most, step=state.current_step, percent=state.percent
        )
    )


def _tool_calls(
    state: TaskState, settings: Limits, run: int, left: list[PlannedCall]
) -> list[Action]:
    """The next attempt of each call that is due, at most `tool_concurrency` in flight; a call
    whose attempts are all spent (tool_max_attempts across runs: an attempt a crash or a run's
    timeout cut short counts, else each resumed run would make one more) is given up."""
    calls, most = state.analysis.calls, settings.tool_max_attempts
    due = [p for p in left if not _in_flight(calls.get(p.call_id), run)]
    room = settings.tool_concurrency - (len(left) - len(due))
    actions: list[Action] = []
    for planned in due:
        known = calls.get(planned.call_id)
        tried = known.attempts if known else 0
        if tried >= most:
            actions.append(Record(_given_up(planned, tried, most)))
        elif room > 0:
            attempt = tried + 1
            backoff = _backoff_s(known, run, settings.tool_retry_backoff_s)
            actions.append(CallTool(planned, attempt, attempt < most, backoff))
            room -= 1
    return actions


def _in_flight(call: Call | None, run: int) -> bool:
    """Started in this run with no outcome recorded yet."""
    return call is not None and call.outcome == "started" and call.run == run


def _backoff_s(call: Call | None, run: int, base_s: float) -> float:
    """Exponential backoff between the attempts of one run; none before a run's first."""
    tried = call.run_attempts if call is not None and call.run == run else 0
    return 0.0 if tried == 0 else base_s * 2 ** (tried - 1)


def _given_up(call: PlannedCall, tried: int, most: int) -> ev.ToolCallFailed:
    return ev.ToolCallFailed(
        call_id=call.call_id,
        tool=call.tool,
        step=call.step,
        error=f"attempt {tried} never finished (the run making it crashed or ran out of "
        f"time), and {most} attempts in all are allowed (tool_max_attempts)",
        attempt=tried,
        will_retry=False,
    )
