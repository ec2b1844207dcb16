"""Event → progress message: the wire format clients see (DESIGN.md, Wire format).

Every message keeps the original wire fields — step, tool, message, percent, timestamp, error —
so the first JavaScript and Swift clients work unmodified, and adds seq, task_id, event_id,
event_type and data. A pure function: the relay, the WebSocket history and SSE all call
`progress_message`. Timeline entries are built from these messages and stored: a change to what
a message says is a change of `domain.timeline.TIMELINE_FORMAT`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain import events as ev
from domain.log import RecordedEvent
from domain.search_relevance import PROVIDER_NAMES

# TERMINAL_EVENT_TYPES: the events after which a task's progress stream ends (its socket
# closes with 1000), as the fold declares them; re-exported for the relay and the sockets.
from domain.task import TERMINAL_EVENT_TYPES as TERMINAL_EVENT_TYPES
from domain.task import event_percent

_TOOL_LABELS = {
    "scam_database": "Checking scam database",
    "web_search": "Searching the web for reports",
    "domain_reputation": "Checking domain reputation",
    "phone_validator": "Validating phone number",
}


def iso_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a `Z`, as the seed sends it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def progress_message(recorded: RecordedEvent) -> dict[str, Any]:
    step, tool, text, error = _describe(recorded.event)
    return {
        "step": step,
        "tool": tool,
        "message": text,
        "percent": event_percent(recorded.event),  # what the task's projection folds, too
        "timestamp": iso_timestamp(recorded.recorded_at),
        "error": error,
        "seq": recorded.version,
        "task_id": recorded.stream_id,
        "event_id": str(recorded.event_id),
        "event_type": recorded.type,
        "data": recorded.event.model_dump(mode="json"),
    }


def heartbeat_message(now: datetime) -> dict[str, Any]:
    return {"heartbeat": True, "timestamp": iso_timestamp(now)}


def connected_message(task_ids: list[str], now: datetime, *, after: int = 0) -> dict[str, Any]:
    """The first message on a socket (`connected`); history follows it."""
    what = ", ".join(task_ids) if task_ids else "your tenant's tasks"
    return {
        "step": "connected",
        "tool": None,
        "message": f"Connected to progress of {what}",
        "percent": 0,
        "timestamp": iso_timestamp(now),
        "error": False,
        "task_id": task_ids[0] if len(task_ids) == 1 else None,
        "after": after,
    }


def error_message(text: str, now: datetime) -> dict[str, Any]:
    """The wire's error message: `{"step": "failed", "error": true, "message": ...}`."""
    return {
        "step": "failed",
        "tool": None,
        "message": text,
        "percent": 0,
        "timestamp": iso_timestamp(now),
        "error": True,
    }


def _target(call_input: dict[str, Any]) -> str:
    value = call_input.get("value") or call_input.get("query") or call_input.get("domain")
    return f" for {value}" if value else ""


def _answered(tool: str, output: dict[str, Any]) -> str:
    """What a call gave: for a web search, how many results from which provider ("2 results
    from local reports", "5 results from Exa"); for any other tool, "done"."""
    provider = PROVIDER_NAMES.get(str(output.get("provider")))
    if tool != "web_search" or provider is None:
        return "done"
    results = output.get("results")
    count = len(results) if isinstance(results, list) else 0
    return f"{count} result{'' if count == 1 else 's'} from {provider}"


Described = tuple[str, str | None, str, bool]  # (step, tool, message, error)


def _describe(event: ev.DomainEvent) -> Described:
    """(step, tool, message, error) for one event; its percent is `event_percent`'s."""
    if isinstance(event, ev.ToolCallStarted | ev.ToolCallCompleted | ev.ToolCallFailed):
        return _describe_call(event)
    return _describe_step(event) or _describe_other(event)


def _describe_step(event: ev.DomainEvent) -> Described | None:
    match event:
        case ev.TaskSubmitted(kind=kind):
            return "entity_extraction", None, f"Received {kind}; extracting entities...", False
        case ev.AnalysisStarted(run=1):
            return "entity_extraction", None, "Analysis started", False
        case ev.AnalysisStarted(run=run, max_runs=most, step=step):
            text = f"Resuming the analysis (run {run} of {most})"
            return step or "entity_extraction", None, text, False
        case ev.EntitiesExtracted(entities=entities):
            kinds = sorted({e.kind for e in entities})
            found = f"Found {len(entities)} entities ({', '.join(kinds)})" if entities else ""
            return "entity_extraction", None, found or "No entities found", False
        case ev.ProgressReported(message=text, step=step, tool=tool):
            return step or "reasoning", tool, text, False
        case ev.VerdictReached(verdict=verdict, score=score):
            return "reasoning", None, f"Verdict: {verdict} (score {score:.2f})", False
        case ev.TaskCompleted(verdict=verdict):
            done = f"Analysis complete: {verdict}" if verdict else "Analysis complete"
            return "completed", None, done, False
        case ev.TaskFailed(error=error):
            return "failed", None, error, True
        case ev.TaskCancelled(reason=reason):
            return "cancelled", None, f"Cancelled: {reason}" if reason else "Cancelled", False
        case ev.VerdictReviewed(decision=decision, verdict=verdict):
            did = "confirmed" if decision == "confirm" else "overrode"
            return "reviewed", None, f"Analyst {did} the verdict: {verdict}", False
    return None


def _describe_call(
    event: ev.ToolCallStarted | ev.ToolCallCompleted | ev.ToolCallFailed,
) -> Described:
    label = _TOOL_LABELS.get(event.tool, f"Calling {event.tool}")
    match event:
        case ev.ToolCallStarted(input=call_input, attempt=attempt):
            again = f" (attempt {attempt})" if attempt > 1 else ""
            return event.step, event.tool, f"{label}{_target(call_input)}...{again}", False
        case ev.ToolCallCompleted(duration_ms=ms, output=output):
            text = f"{label}: {_answered(event.tool, output)} in {ms:.0f} ms"
            return event.step, event.tool, text, False
    suffix = "; retrying" if event.will_retry else ""
    return event.step, event.tool, f"{event.tool} failed: {event.error}{suffix}", True


def _describe_other(event: ev.DomainEvent) -> Described:
    match event:
        # Indicator events are never sent to a progress socket (domain.indicators); described
        # all the same, so whatever builds a message for one gets a sensible one.
        case ev.IndicatorAsserted(kind=kind, value=value, category=category):
            return "indicators", None, f"Indicator asserted: {kind} {value} ({category})", False
        case ev.IndicatorRetracted(kind=kind, value=value):
            return "indicators", None, f"Indicator retracted: {kind} {value}", False
        case ev.IndicatorsImported(source=source, entries=entries):
            text = f"{len(entries)} indicators imported from {source}"
            return "indicators", None, text, False
        case ev.IndicatorsLoaded(indicators=indicators):
            return "indicators", None, f"{len(indicators)} indicators loaded", False
        case ev.UnreadableEvent(original_type=original):
            text = f"An event this server cannot read ({original}); the timeline has it."
            return "reasoning", None, text, True
    return "reasoning", None, event.type_name, False
