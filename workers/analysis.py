"""One analysis, as durable steps. The worker keeps no state of its own: it folds the task's
stream, asks `domain.decider.next_actions` what is left, performs it, appends the outcome, and
asks again. Re-running it after a crash is always safe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from domain import events as ev
from domain.decider import (
    Action,
    CallTool,
    ExtractEntities,
    ReachVerdict,
    Record,
    concluded,
    decided_after,
    next_actions,
)
from domain.extraction import extract_entities
from domain.log import RecordedEvent
from domain.reasoning import reason
from domain.task import fold
from domain.tools import Tool
from infrastructure.event_log import TaskStreams
from infrastructure.settings import Settings
from workers.task_writer import TaskGone, TaskWasCancelled, TaskWriter
from workers.tool_calls import make_attempt

log = logging.getLogger(__name__)

Reasoner = Callable[[Sequence[RecordedEvent]], Awaitable[ev.VerdictReached]]

# Extraction and the rules are CPU work (extraction up to ~0.2 s for 64 KB): past these sizes
# they run in a thread, so the loop that other analyses share keeps serving meanwhile. Below,
# they take a millisecond or two, little more than handing them to a thread and back costs.
_INLINE_CHARS = 500
_INLINE_EVENTS = 40

_T = TypeVar("_T")


async def _cpu_bound(in_a_thread: bool, work: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    if in_a_thread:
        return await asyncio.to_thread(work, *args, **kwargs)
    return work(*args, **kwargs)


@dataclass
class Agent:
    """What an analysis needs: the log, the tools by name, and the settings."""

    log: TaskStreams
    tools: Mapping[str, Tool]
    settings: Settings
    # The LLM reasoner when one is configured; else the rule-based one (domain.reasoning).
    reasoner: Reasoner | None = None


async def run_analysis(agent: Agent, task_id: str) -> str:
    """Run (or resume) the analysis of `task_id`; returns the task's final status, or "gone"
    when the task was pruned meanwhile."""
    stream = await agent.log.store.read_stream(task_id)
    state = fold(stream)
    if state is None:
        log.warning("analysis of %s skipped: no such task", task_id)
        return "unknown"
    if state.finished:
        return state.status
    writer = TaskWriter(agent.log, stream, state=state)
    try:
        await AnalysisRun(agent, writer).until_done()
    except TaskGone:
        log.warning("analysis of %s stopped: the task is gone (pruned)", task_id)
        return "gone"
    except TaskWasCancelled:
        log.info("analysis of %s stopped: the task ended elsewhere (cancelled)", task_id)
    return writer.state.status


class AnalysisRun:
    """One run of one task's analysis: decide, perform, append, until nothing is left. Tool
    calls run side by side (as many as the decider allows, never more than tool_concurrency
    tasks, a call waiting out its backoff included); every other step runs alone."""

    def __init__(self, agent: Agent, writer: TaskWriter) -> None:
        self.agent, self.writer = agent, writer
        self.run: int | None = None  # the run this worker recorded
        self.calls: dict[str, asyncio.Task[None]] = {}  # tool calls under way, by call id
        self.unrecorded: list[Exception] = []

    async def until_done(self) -> None:
        """Perform every action the decider gives. `TaskWasCancelled` or `TaskGone` from any
        step or call stops the run (the other calls are cancelled); a call whose outcome could
        not be appended does not: the run finishes the others, then fails, and the next run
        redoes only that call."""
        try:
            while await self._next_step():
                pass
        finally:
            await self._stop_calls()
        if self.unrecorded:
            raise ExceptionGroup("tool calls whose outcome could not be recorded", self.unrecorded)
        if not self.writer.state.finished:
            raise RuntimeError(f"analysis of {self.writer.task_id}: nothing left to do, unfinished")

    async def _next_step(self) -> bool:
        """Decide and act once; False when there is nothing left to do or wait for."""
        actions = next_actions(self.writer.state, self.agent.settings, self.run)
        steps = [a for a in actions if a.call_id is None]
        if steps and not self.calls:
            await self._perform(steps[0])
            return True
        self._start_calls([a for a in actions if a.call_id is not None])
        if not self.calls:
            return False
        done, _ = await asyncio.wait(self.calls.values(), return_when=asyncio.FIRST_COMPLETED)
        for call_id, task in list(self.calls.items()):
            if task in done:
                del self.calls[call_id]
                task.result()  # TaskWasCancelled or TaskGone: stop the run
        return True

    async def _perform(self, action: Action) -> None:
        match action:
            case Record(event=event, check_cancelled=True):
                # Not taken if others appended meanwhile: decide again on what they wrote.
                if await self.writer.append_unless_overtaken(event):
                    self._recorded(event)
            case Record(event=event):
                await self.writer.append(event)
                self._recorded(event)
            case ExtractEntities(content=content, kind=kind, default_region=region):
                entities = await _cpu_bound(
                    len(content) > _INLINE_CHARS,
                    extract_entities,
                    content,
                    kind,
                    default_region=region,
                )
                extracted = ev.EntitiesExtracted(entities=entities)
                settings, writer = self.agent.settings, self.writer
                then = decided_after(writer.state, writer.as_next(extracted), settings, self.run)
                if then is None:
                    await writer.append(extracted)
                elif await writer.append_unless_overtaken(extracted, then.event):
                    self._recorded(then.event)
            case ReachVerdict():
                # A model's answer costs far more than reading the log: not asked for a task
                # that was cancelled meanwhile. The rules cost less than that read, and the
                # append below is not taken for such a task anyway.
                if self.agent.reasoner is not None and await self.writer.check_cancelled():
                    return
                await self.writer.append_unless_overtaken(*concluded(await self._verdict()))

    def _recorded(self, event: ev.DomainEvent) -> None:
        if isinstance(event, ev.AnalysisStarted):
            self.run = event.run
        elif isinstance(event, ev.TaskFailed):
            log.error("analysis of %s failed: %s", self.writer.task_id, event.error)

    async def _verdict(self) -> ev.VerdictReached:
        if self.agent.reasoner is not None:
            return await self.agent.reasoner(self.writer.stream)
        # The rule-based reasoner is CPU work over the whole stream: a thread for a long one.
        stream = list(self.writer.stream)
        return await _cpu_bound(len(stream) > _INLINE_EVENTS, reason, stream)

    def _start_calls(self, actions: list[Action]) -> None:
        room = self.agent.settings.tool_concurrency - len(self.calls)
        for action in actions:
            call_id = action.call_id
            if call_id is None or call_id in self.calls or room <= 0:
                continue
            self.calls[call_id] = asyncio.create_task(self._call(call_id, action))
            room -= 1

    async def _call(self, call_id: str, action: Action) -> None:
        try:
            if isinstance(action, CallTool):
                timeout_s = self.agent.settings.tool_timeout_s
                await make_attempt(self.writer, self.agent.tools, timeout_s, action)
            elif isinstance(action, Record):  # a call given up: its attempts are spent
                await self.writer.append(action.event)
        except (TaskWasCancelled, TaskGone):
            raise  # the task ended, or is gone: stop every call
        except Exception as error:
            # An append that failed for this call alone (the log refused or lost it) must not
            # cancel the other calls: they finish and record their results, then the run
            # fails and the next one redoes only this call.
            log.error("tool call %s could not be recorded: %r", call_id, error)
            self.unrecorded.append(error)

    async def _stop_calls(self) -> None:
        for task in self.calls.values():
            task.cancel()
        await asyncio.gather(*self.calls.values(), return_exceptions=True)
        self.calls.clear()
