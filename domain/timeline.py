"""Event → timeline entry: one event as GET /tasks/{id}/timeline shows it (the api's
`TimelineEntry`), built from its progress message plus who recorded it and how long a tool
call took. A pure function: the read path, the relay (which stores entries as a projection,
infrastructure/timeline.py) and the MCP timeline resource all call `timeline_entry`.
"""

from __future__ import annotations

from typing import Any

from domain import events as ev
from domain.log import RecordedEvent
from domain.progress import progress_message

# The version of `timeline_entry`'s output. Stored entries carry the format that rendered
# them, and a read serves only entries of this one: change what an entry says, raise this, and
# old entries are rendered again from the log (and rewritten by `scamtrail rebuild`).
TIMELINE_FORMAT = 1

_TIMED = (ev.ToolCallCompleted, ev.ToolCallFailed)


def timeline_entry(
    recorded: RecordedEvent, message: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`TimelineEntry`'s fields, in its order, as a plain dict. `message` is the event's
    `progress_message` when the caller has it already (the relay renders both)."""
    message = message or progress_message(recorded)
    event = recorded.event
    return {
        "seq": recorded.version,
        "event_type": recorded.type,
        "event_id": message["event_id"],  # formatted once per event, not twice
        "step": message["step"],
        "tool": message["tool"],
        "message": message["message"],
        "error": message["error"],
        "recorded_at": message["timestamp"],  # the recorded_at, as the message formats it
        "actor": recorded.metadata.actor,
        "duration_ms": event.duration_ms if isinstance(event, _TIMED) else None,
        "data": message["data"],
    }
