"""One analysis, as durable steps. The worker keeps no state of its own: it folds the task's
stream, sees what is done, and does the rest. Re-running it after a crash is always safe."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain import events as ev
from domain.extraction import extract_entities
from domain.log import RecordedEvent
from domain.planning import PlannedCall, plan_tool_calls
from domain.reasoning import has_evidence, reason
from domain.storable import clean_text, unstorable
from domain.task import TaskState, fold
from domain.tools import Tool
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from workers.task_writer import ProgressPublisher, TaskGone, TaskWasCancelled, TaskWriter

log = logging.getLogger(__name__)


@dataclass
class Agent:
    """What an analysis needs: the log, the tools by name, and the settings."""

    log: TaskLog
    tools: Mapping[str, Tool]
    settings: Settings
    # Called with the call id right before each real tool invocation (fault tests count them).
    ledger: Callable[[str], Awaitable[object]] | None = None
    # The LLM reasoner when one is configured; else the rule-based one (domain.reasoning).
    reasoner: Callable[[Sequence[RecordedEvent]], Awaitable[ev.VerdictReached]] | None = None


async def run_analysis(agent: Agent, task_id: str) -> str:
    """Run (or resume) the analysis of `task_id`; returns the task's final status."""
    stream = await agent.log.store.read_stream(task_id)
    state = fold(stream)
    if state is None:
        log.warning("analysis of %s skipped: no such task", task_id)
        return "unknown"
    if state.finished:
        return state.status
    writer, gone = TaskWriter(agent.log, stream), False
    try:
        if await _start_run(agent, writer, state):
            await _analyse(agent, writer)
    except* TaskGone:  # before TaskWasCancelled, which it is a kind of; once for all calls
        log.warning("analysis of %s stopped: the task is gone (pruned)", task_id)
        gone = True
    except* TaskWasCancelled:  # from any of the concurrent tool calls, or between steps
        log.info("analysis of %s stopped: the task ended elsewhere (cancelled)", task_id)
    if gone:
        return "gone"
    final = fold(writer.stream)
    assert final is not None
    return final.status


def recorded_runs(stream: Sequence[RecordedEvent]) -> int:
    """How many runs of the analysis have started: the log's count, whatever arq remembers."""
    return sum(isinstance(r.event, ev.AnalysisStarted) for r in stream)


async def _start_run(agent: Agent, writer: TaskWriter, state: TaskState) -> bool:
    """Record the start of one more run, or fail the task if it had all its runs (each crashed,
    timed out or failed: nothing else leaves a task unfinished); False then."""
    runs, most = recorded_runs(writer.stream), agent.settings.analysis_max_tries
    if runs >= most:
        log.error(
            "analysis of %s started %d times, never finished: failing it", writer.task_id, runs
        )
        await writer.append(ev.TaskFailed(error=runs_exhausted(runs, most)))
        return False
    await writer.append(
        ev.AnalysisStarted(
            run=runs + 1, max_runs=most, step=state.current_step, percent=state.percent
        )
    )
    return True


def runs_exhausted(runs: int, most: int, last: str = "") -> str:
    """TaskFailed's message once a task has had its analysis_max_tries runs."""
    how = last or "each one crashed, ran out of time or failed on an internal error"
    return (
        f"The analysis was started {runs} times (analysis_max_tries is {most}) and never "
        f"finished: {how}. The worker's log has the details; resubmit the message once the "
        "cause is fixed."
    )


async def _analyse(agent: Agent, writer: TaskWriter) -> None:
    submitted = writer.stream[0].event
    assert isinstance(submitted, ev.TaskSubmitted)
    entities = _recorded_entities(writer)
    if entities is None:
        # CPU-bound (up to ~0.2 s for 64 KB): in a thread, so the loop that the api, relay and
        # other analyses share keeps serving while one submitter's message is read.
        entities = await asyncio.to_thread(
            extract_entities,
            submitted.content,
            submitted.kind,
            default_region=agent.settings.default_region,
        )
        await writer.append(ev.EntitiesExtracted(entities=entities))

    await writer.check_cancelled()
    plan = plan_tool_calls(
        entities,
        kind=submitted.kind,
        client_metadata=submitted.client_metadata,
        tenant=writer.stream[0].metadata.tenant,
    )
    state = fold(writer.stream)
    assert state is not None
    # Left to do: calls neither completed nor given up on; nothing once the verdict is recorded
    # (a run resumed between the verdict and the completion only completes).
    gave_up = {
        r.event.call_id
        for r in writer.stream
        if isinstance(r.event, ev.ToolCallFailed) and not r.event.will_retry
    }
    done = state.completed_calls.keys() | gave_up
    pending = [] if state.verdict else [call for call in plan if call.call_id not in done]
    if pending:
        tools = ", ".join(sorted({call.tool for call in pending}))
        await ProgressPublisher(writer).publish(
            f"Running {len(pending)} checks ({tools})", 15, step="entity_extraction"
        )
    started = Counter(
        r.event.call_id for r in writer.stream if isinstance(r.event, ev.ToolCallStarted)
    )
    slots = asyncio.Semaphore(agent.settings.tool_concurrency)

    unrecorded: list[Exception] = []

    async def call_in_slot(call: PlannedCall) -> None:
        async with slots:
            try:
                await _call_tool(agent, writer, call, started[call.call_id])
            except TaskWasCancelled:
                raise  # the task ended (or is gone): stop every call
            except Exception as error:
                # An append that failed for this call alone (the log refused or lost it) must
                # not cancel the other calls: they finish and record their results, then the
                # run fails and the next one redoes only this call.
                log.error("tool call %s could not be recorded: %r", call.call_id, error)
                unrecorded.append(error)

    async with asyncio.TaskGroup() as calls:
        for call in pending:
            calls.create_task(call_in_slot(call))
    if unrecorded:
        raise ExceptionGroup("tool calls whose outcome could not be recorded", unrecorded)

    await writer.check_cancelled()
    if state.verdict is None:
        if not has_evidence(writer.stream):
            await writer.append(
                ev.TaskFailed(
                    error="No evidence to reason on: entity extraction and every tool failed. "
                    "Check the worker's logs and the tools' availability, then resubmit.",
                    step="reasoning",
                )
            )
            return
        if agent.reasoner is not None:
            verdict = await agent.reasoner(writer.stream)
        else:  # the rule-based reasoner is CPU work over the whole stream: a thread, as above
            verdict = await asyncio.to_thread(reason, list(writer.stream))
        await writer.append(verdict)
        await writer.append(ev.TaskCompleted(verdict=verdict.verdict))
    else:  # the verdict was recorded before a crash; only the completion is missing
        await writer.append(ev.TaskCompleted(verdict=state.verdict))


def _recorded_entities(writer: TaskWriter) -> tuple[ev.Entity, ...] | None:
    for recorded in writer.stream:
        if isinstance(recorded.event, ev.EntitiesExtracted):
            return recorded.event.entities
    return None


async def _call_tool(agent: Agent, writer: TaskWriter, call: PlannedCall, tried: int) -> None:
    """Call one tool with a timeout and bounded retries; every attempt is an event. A call that
    started before a crash (`tried` > 0) continues its attempt count."""
    settings = agent.settings
    tool = agent.tools.get(call.tool)
    # tool_max_attempts in all, across runs: an attempt that a crash or a run's timeout cut
    # short counts (else each resumed run would make one more, without end).
    first, last = tried + 1, settings.tool_max_attempts
    if first > last:
        await writer.append(
            ev.ToolCallFailed(
                call_id=call.call_id,
                tool=call.tool,
                step=call.step,
                error=f"attempt {tried} never finished (the run making it crashed or ran out of "
                f"time), and {last} attempts in all are allowed (tool_max_attempts)",
                attempt=tried,
                will_retry=False,
            )
        )
        return
    for attempt in range(first, last + 1):
        await writer.append(
            ev.ToolCallStarted(
                call_id=call.call_id,
                tool=call.tool,
                step=call.step,
                input=call.input,
                attempt=attempt,
            )
        )
        began = time.monotonic()
        if agent.ledger is not None:
            await agent.ledger(call.call_id)
        outcome, timed_out, retryable = await _attempt(tool, call, settings)
        elapsed_ms = (time.monotonic() - began) * 1000
        if isinstance(outcome, dict):
            await writer.append(
                ev.ToolCallCompleted(
                    call_id=call.call_id,
                    tool=call.tool,
                    step=call.step,
                    output=outcome,
                    attempt=attempt,
                    duration_ms=elapsed_ms,
                )
            )
            return
        retry = attempt < last and retryable
        await writer.append(
            ev.ToolCallFailed(
                call_id=call.call_id,
                tool=call.tool,
                step=call.step,
                error=clean_text(outcome),  # an exception's text can quote a bad reply
                attempt=attempt,
                timed_out=timed_out,
                will_retry=retry,
                duration_ms=elapsed_ms,
            )
        )
        if not retry:
            return
        await asyncio.sleep(settings.tool_retry_backoff_s * 2 ** (attempt - first))


async def _attempt(
    tool: Tool | None, call: PlannedCall, settings: Settings
) -> tuple[dict[str, Any] | str, bool, bool]:
    """(output, False, _) on success, else (error message, timed_out, worth retrying)."""
    if tool is None:
        return f"tool {call.tool!r} is not configured on this worker", False, False
    try:
        async with asyncio.timeout(settings.tool_timeout_s):
            if settings.tool_latency_s:
                await asyncio.sleep(settings.tool_latency_s)
            output = await tool(call.input)
    except TimeoutError:
        return f"no answer within {settings.tool_timeout_s:g} s", True, True
    except Exception as error:  # any tool failure is recorded, never fatal to the task
        log.warning("tool call %s failed: %r", call.call_id, error)
        return f"{type(error).__name__}: {error}", False, True
    # An output the log cannot hold would fail the append, and with it the whole run: it is
    # this call's failure instead. Not retried: the same question gets the same answer.
    problem = unstorable(output) if isinstance(output, dict) else "the output is not an object"
    if problem is not None:
        log.warning(
            "tool call %s answered with an output the log cannot store: %s", call.call_id, problem
        )
        return f"the tool's output cannot be recorded: {problem}", False, False
    return output, False, False
