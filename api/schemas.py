"""Request and response models of the HTTP api (they are its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pydantic_core
from pydantic import BaseModel, Field, field_validator

from domain import events as ev
from domain.storable import check_storable
from domain.task import TaskState
from infrastructure.timeline import TimelineSlice


def storable(value: Any) -> Any:
    """Refuse (422) what the log cannot hold instead of failing on it (500): see
    domain.storable (NUL, lone surrogates, NaN or infinite numbers, nesting too deep; keys as
    well as values)."""
    return check_storable(value)


def links(task_id: str) -> dict[str, str]:
    """Where a client goes next with a task: its URLs in this api."""
    return {
        "self": f"/tasks/{task_id}",
        "timeline": f"/tasks/{task_id}/timeline",
        "events": f"/tasks/{task_id}/events",
        "websocket": f"/ws/agent-progress/{task_id}",
        "cancel": f"/tasks/{task_id}/cancel",
    }


class SubmitTask(BaseModel):
    content: str = Field(min_length=1, description="The suspicious message, URL or number.")
    kind: ev.Kind = "text"
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Context from the client, e.g. sender_region for phone checks.",
        max_length=50,
    )

    _storable = field_validator("content", "metadata")(storable)

    @field_validator("content")
    @classmethod
    def _not_blank(cls, content: str) -> str:
        if not content.strip():
            raise ValueError("content is blank")
        return content


class TaskAccepted(BaseModel):
    task_id: str
    status: str
    created: bool
    links: dict[str, str]


class TaskView(BaseModel):
    task_id: str
    kind: str
    content_preview: str = Field(description="The content's first 280 characters.")
    status: str
    current_step: str | None
    percent: int
    verdict: str | None = Field(description="The agent's verdict.")
    score: float | None
    confidence: float | None
    reviewed_verdict: str | None = Field(description="An analyst's verdict, if reviewed.")
    final_verdict: str | None = Field(description="The analyst's verdict if any, else the agent's.")
    tool_calls_completed: int
    tool_call_failures: int
    error: str | None
    submitted_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    version: int
    links: dict[str, str]

    @classmethod
    def of(cls, state: TaskState) -> TaskView:
        return cls(
            task_id=state.task_id,
            kind=state.kind,
            content_preview=state.content_preview,
            status=state.status,
            current_step=state.current_step,
            percent=state.percent,
            verdict=state.verdict,
            score=state.score,
            confidence=state.confidence,
            reviewed_verdict=state.reviewed_verdict,
            final_verdict=state.final_verdict,
            tool_calls_completed=len(state.completed_calls),
            tool_call_failures=state.failed_attempts,
            error=state.error,
            submitted_at=state.submitted_at,
            finished_at=state.finished_at,
            duration_ms=state.duration_ms,
            version=state.version,
            links=links(state.task_id),
        )


class CancelTask(BaseModel):
    reason: str | None = Field(default=None, max_length=500)

    _storable = field_validator("reason")(storable)


class ReviewTask(BaseModel):
    decision: Literal["confirm", "override"]
    verdict: ev.Verdict | None = Field(
        default=None, description="Required for override: the analyst's verdict."
    )
    note: str = Field(default="", max_length=4000)

    _storable = field_validator("note")(storable)


class TaskPage(BaseModel):
    tasks: list[TaskView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class TimelineEntry(BaseModel):
    seq: int
    event_type: str
    event_id: str
    step: str
    tool: str | None
    message: str
    error: bool
    recorded_at: str
    actor: str
    duration_ms: float | None = Field(description="How long a tool call took, for tool events.")
    data: dict[str, Any]


class TimelinePage(BaseModel):
    task_id: str
    events: list[TimelineEntry]
    next_after: int | None = Field(description="Pass as `after` for the next page.")


def timeline_page(task_id: str, page: TimelineSlice, limit: int, **extra: str | None) -> str:
    """`TimelinePage` as JSON text around entries that are JSON already; `extra` fields (the
    MCP resource's `next`) go after `next_after`."""
    head = pydantic_core.to_json({"task_id": task_id}).decode()[:-1]
    tail = pydantic_core.to_json({"next_after": page.next_after(limit), **extra}).decode()[1:]
    return f'{head},"events":[{page.joined}],{tail}'


class CitedEvent(BaseModel):
    seq: int
    event_type: str
    step: str
    tool: str | None
    recorded_at: str
    actor: str
    data: dict[str, Any]


class AuditReason(BaseModel):
    code: str
    text: str
    weight: float
    evidence: list[CitedEvent]


class AuditVerdict(BaseModel):
    agent: ev.Verdict
    score: float
    confidence: float
    seq: int
    final: ev.Verdict
    reviewed: bool


class ToolFailure(BaseModel):
    call_id: str
    tool: str
    step: str
    attempts: int
    timed_out: bool
    last_error: str
    seqs: list[int]
    effect: str


class Review(BaseModel):
    seq: int
    reviewer: str
    decision: str
    verdict: ev.Verdict
    note: str
    recorded_at: str


class Audit(BaseModel):
    task_id: str
    status: str
    verdict: AuditVerdict | None
    reasons: list[AuditReason]
    entities: list[dict[str, Any]]
    tool_failures: list[ToolFailure]
    reviews: list[Review]
