"""One attempt of one tool call, as `domain.decider.CallTool` asks for it: every attempt is
recorded as it starts and as it ends, whatever the tool does."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from domain import events as ev
from domain.decider import CallTool
from domain.planning import PlannedCall
from domain.storable import clean_text, unstorable
from domain.tools import Tool, UnusableAnswer
from workers.task_writer import TaskWriter

log = logging.getLogger(__name__)


async def make_attempt(
    writer: TaskWriter, tools: Mapping[str, Tool], timeout_s: float, action: CallTool
) -> None:
    """Wait the backoff, record the start, call the tool within `timeout_s`, record the
    outcome (a failure with will_retry when the decision allows a retry and the failure is worth
    one)."""
    call = action.call
    if action.backoff_s:
        await asyncio.sleep(action.backoff_s)
    await writer.append(
        ev.ToolCallStarted(
            call_id=call.call_id,
            tool=call.tool,
            step=call.step,
            input=call.input,
            attempt=action.attempt,
        )
    )
    began = time.monotonic()
    outcome, timed_out, retryable = await _attempt(tools.get(call.tool), call, timeout_s)
    elapsed_ms = (time.monotonic() - began) * 1000
    if isinstance(outcome, dict):
        await writer.append(
            ev.ToolCallCompleted(
                call_id=call.call_id,
                tool=call.tool,
                step=call.step,
                output=outcome,
                attempt=action.attempt,
                duration_ms=elapsed_ms,
            )
        )
        return
    await writer.append(
        ev.ToolCallFailed(
            call_id=call.call_id,
            tool=call.tool,
            step=call.step,
            error=clean_text(outcome),  # an exception's text can quote a bad reply
            attempt=action.attempt,
            timed_out=timed_out,
            will_retry=action.may_retry and retryable,
            duration_ms=elapsed_ms,
        )
    )


async def _attempt(
    tool: Tool | None, call: PlannedCall, timeout_s: float
) -> tuple[dict[str, Any] | str, bool, bool]:
    """(output, False, _) on success, else (error message, timed_out, worth retrying)."""
    if tool is None:
        return f"tool {call.tool!r} is not configured on this worker", False, False
    try:
        async with asyncio.timeout(timeout_s):
            output = await tool(call.input)
    except TimeoutError:
        return f"no answer within {timeout_s:g} s", True, True
    except UnusableAnswer as error:  # an answer, not as the contract says: the same next time
        log.warning("tool call %s answered unusably: %s", call.call_id, error)
        return f"the tool's answer cannot be used: {error}", False, False
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
