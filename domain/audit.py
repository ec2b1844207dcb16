"""The audit of a verdict: "why this verdict?", answered from the task's stream alone.

Every reason comes with the full events it cites (tool inputs and outputs as they were recorded),
so an analyst reading it months later sees what the agent saw."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain import events as ev
from domain.log import RecordedEvent
from domain.progress import iso_timestamp, progress_message


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
    by_seq = {r.version: r for r in stream}
    verdicts = [r for r in stream if isinstance(r.event, ev.VerdictReached)]
    verdict = verdicts[-1] if verdicts else None
    reviews = [r for r in stream if isinstance(r.event, ev.VerdictReviewed)]
    return {
        "task_id": stream[0].stream_id,
        "verdict": _verdict(verdict, reviews),
        "reasons": _reasons(verdict, by_seq),
        "entities": _entities(stream),
        "tool_failures": _tool_failures(stream),
        "reviews": [_review(r) for r in reviews],
    }


def _verdict(
    verdict: RecordedEvent | None, reviews: Sequence[RecordedEvent]
) -> dict[str, Any] | None:
    if verdict is None:
        return None
    reached = verdict.event
    assert isinstance(reached, ev.VerdictReached)
    final = reviews[-1].event if reviews else None
    return {
        "agent": reached.verdict,
        "score": reached.score,
        "confidence": reached.confidence,
        "seq": verdict.version,
        "final": final.verdict if isinstance(final, ev.VerdictReviewed) else reached.verdict,
        "reviewed": bool(reviews),
    }


def _reasons(verdict: RecordedEvent | None, by_seq: dict[int, RecordedEvent]) -> list[Any]:
    if verdict is None:
        return []
    assert isinstance(verdict.event, ev.VerdictReached)
    return [
        {
            "code": reason.code,
            "text": reason.text,
            "weight": reason.weight,
            "evidence": [cited_event(by_seq[seq]) for seq in reason.evidence if seq in by_seq],
        }
        for reason in verdict.event.reasons
    ]


def _entities(stream: Sequence[RecordedEvent]) -> list[dict[str, Any]]:
    for recorded in stream:
        if isinstance(recorded.event, ev.EntitiesExtracted):
            return [e.model_dump(mode="json") for e in recorded.event.entities]
    return []


def _tool_failures(stream: Sequence[RecordedEvent]) -> list[dict[str, Any]]:
    """Calls that never completed, with every failed attempt: what the reasoner had to do
    without. Each lowered the verdict's confidence."""
    completed = {r.event.call_id for r in stream if isinstance(r.event, ev.ToolCallCompleted)}
    attempts: dict[str, list[RecordedEvent]] = {}
    for recorded in stream:
        event = recorded.event
        if isinstance(event, ev.ToolCallFailed) and event.call_id not in completed:
            attempts.setdefault(event.call_id, []).append(recorded)
    failures = []
    for call_id, failed in attempts.items():
        last = failed[-1].event
        assert isinstance(last, ev.ToolCallFailed)
        failures.append(
            {
                "call_id": call_id,
                "tool": last.tool,
                "step": last.step,
                "attempts": len(failed),
                "timed_out": any(
                    isinstance(r.event, ev.ToolCallFailed) and r.event.timed_out for r in failed
                ),
                "last_error": last.error,
                "seqs": [r.version for r in failed],
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
