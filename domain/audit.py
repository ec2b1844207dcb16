"""The audit of a verdict: "why this verdict?", answered from the task's stream alone.

Every reason comes with the full events it cites (tool inputs and outputs as they were recorded),
so an analyst reading it months later sees what the agent saw."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain import events as ev
from domain.log import RecordedEvent
from domain.progress import iso_timestamp, progress_message
from domain.task import Analysis, TaskState, fold


def cited_event(recorded: RecordedEvent) -> dict[str, Any]:
    message = progress_message(recorded)
    return {
        "seq": recorded.version,
        "event_type": recorded.type,
        "step": message["step"],
        "tool": message["tool"],
        "recorded_at": iso_timestamp(recorded.recorded_at),
        "actor": recorded.metadata.actor,
        "data": message["data"],
    }


def build_audit(stream: Sequence[RecordedEvent]) -> dict[str, Any]:
    """The audit of a task's stream, as its fold (domain.task) reads the events, citing each
    event by `seq` with its data as recorded."""
    state = fold(stream)
    assert state is not None, "a task's stream starts with TaskSubmitted"
    by_seq = {r.version: r for r in stream}
    reviews = [r for r in stream if isinstance(r.event, ev.VerdictReviewed)]
    analysis = state.analysis
    return {
        "task_id": state.task_id,
        "verdict": _verdict(state, bool(reviews)),
        "reasons": _reasons(analysis.reached, by_seq),
        "entities": [e.model_dump(mode="json") for e in analysis.entities or ()],
        "tool_failures": _tool_failures(analysis),
        "reviews": [_review(r) for r in reviews],
    }


def _verdict(state: TaskState, reviewed: bool) -> dict[str, Any] | None:
    if state.analysis.reached is None:
        return None
    seq, reached = state.analysis.reached
    return {
        "agent": reached.verdict,
        "score": reached.score,
        "confidence": reached.confidence,
        "seq": seq,
        "final": state.reviewed_verdict or reached.verdict,
        "reviewed": reviewed,
    }


def _reasons(
    reached: tuple[int, ev.VerdictReached] | None, by_seq: dict[int, RecordedEvent]
) -> list[Any]:
    if reached is None:
        return []
    return [
        {
            "code": reason.code,
            "text": reason.text,
            "weight": reason.weight,
            "evidence": [cited_event(by_seq[seq]) for seq in reason.evidence if seq in by_seq],
        }
        for reason in reached[1].reasons
    ]


def _tool_failures(analysis: Analysis) -> list[dict[str, Any]]:
    """Calls that never completed, with every failed attempt: what the reasoner had to do
    without. Each lowered the verdict's confidence."""
    failed = [c for c in analysis.calls.values() if c.completion is None and c.failures]
    failed.sort(key=lambda call: call.failures[0][0])  # in the order they first failed
    failures = []
    for call in failed:
        last = call.failures[-1][1]
        failures.append(
            {
                "call_id": call.call_id,
                "tool": last.tool,
                "step": last.step,
                "attempts": len(call.failures),
                "timed_out": any(failure.timed_out for _, failure in call.failures),
                "last_error": last.error,
                "seqs": [seq for seq, _ in call.failures],
                "effect": "not used as evidence; lowers the verdict's confidence",
            }
        )
    return failures


def _review(recorded: RecordedEvent) -> dict[str, Any]:
    review = recorded.event
    assert isinstance(review, ev.VerdictReviewed)
    return {
        "seq": recorded.version,
        "reviewer": recorded.metadata.actor,
        "decision": review.decision,
        "verdict": review.verdict,
        "note": review.note,
        "recorded_at": iso_timestamp(recorded.recorded_at),
    }
