"""The event catalogue: everything that can happen to a task or to the known scam indicators,
in the past tense.

Events are frozen pydantic models holding only their payload. Identity (event id), position
(stream, version) and context (tenant, actor, correlation) live on the envelope: `NewEvent` on the
way in, `RecordedEvent` on the way out (see `domain.log`).

Each class is registered under its class name; that name is what the log stores in its `type`
column, so renaming a class is a schema change (keep the old name in `EVENT_TYPES`).

A task event's timeline entry holds its payload as rendered when stored (domain/timeline.py):
adding, renaming or defaulting a field changes entries rendered from then on, so raise
`TIMELINE_FORMAT` with it, and stored entries are rendered again from the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import UnknownEventType

Kind = Literal["sms", "email", "url", "phone", "text"]
Verdict = Literal["scam", "suspicious", "safe"]

# The wire format's step names (DESIGN.md, wire format); `cancelled` is ours, and so is
# `remote_tool`: a call of a configured MCP server's tool (domain.tools).
Step = Literal[
    "entity_extraction",
    "scam_db",
    "exa_search",
    "domain_reputation",
    "phone_validator",
    "remote_tool",
    "reasoning",
    "completed",
    "failed",
    "cancelled",
]


class DomainEvent(BaseModel):
    """Base of every event. Subclasses are registered by class name in `EVENT_TYPES`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.type_name = cls.__name__


class Entity(BaseModel):
    """Found in the content: a phone number, URL, domain, e-mail, amount of money, or signal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["phone", "url", "domain", "email", "amount", "signal"]
    value: str
    details: dict[str, Any] = Field(default_factory=dict)


class Reason(BaseModel):
    """One reason behind a verdict, citing the `seq` (stream version) of the events it rests on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    text: str
    weight: float
    evidence: tuple[int, ...] = ()


class TaskSubmitted(DomainEvent):
    content: str
    kind: Kind
    client_metadata: dict[str, Any] = Field(default_factory=dict)


class AnalysisStarted(DomainEvent):
    """A worker began a run of the analysis: the first, or a resume after a crash, a timeout or
    an error. The log, not the queue, counts the runs: arq forgets a job's tries when it drops
    the job and the sweep re-enqueues it, so these bound a task's runs (analysis_max_tries).
    `step` and `percent` are where the task stood, so a client's progress never goes back."""

    run: int = Field(ge=1)
    max_runs: int = Field(ge=1)
    step: str | None = None
    percent: int = Field(default=0, ge=0, le=100)


class EntitiesExtracted(DomainEvent):
    entities: tuple[Entity, ...] = ()


class ToolCallStarted(DomainEvent):
    call_id: str
    tool: str
    step: Step
    input: dict[str, Any]
    attempt: int = Field(default=1, ge=1)


class ToolCallCompleted(DomainEvent):
    """A tool's full output as it was at that moment: what keeps the audit honest months later."""

    call_id: str
    tool: str
    step: Step
    output: dict[str, Any]
    attempt: int = Field(default=1, ge=1)
    duration_ms: float = Field(default=0.0, ge=0)


class ToolCallFailed(DomainEvent):
    call_id: str
    tool: str
    step: Step
    error: str
    attempt: int = Field(default=1, ge=1)
    timed_out: bool = False
    will_retry: bool = False
    duration_ms: float = Field(default=0.0, ge=0)


class ProgressReported(DomainEvent):
    """Free-form progress as an agent reports it: `publish(message, percent, step, tool)`."""

    message: str
    percent: int = Field(ge=0, le=100)
    step: str | None = None
    tool: str | None = None


class VerdictReached(DomainEvent):
    verdict: Verdict
    score: float = Field(ge=0, le=1)
    confidence: float = Field(ge=0, le=1)
    reasons: tuple[Reason, ...] = ()
    # Which reasoner decided: "rules" (domain.reasoning) or "llm:<model>".
    reasoner: str = "rules"


class TaskCompleted(DomainEvent):
    verdict: Verdict | None = None


class TaskFailed(DomainEvent):
    """The task cannot finish; `error` is a message a person can act on. `percent` is where
    the task stood: a task that ended without completing stays there (only completion is 100)."""

    error: str
    step: Step | None = None
    percent: int = Field(default=0, ge=0, le=100)


class TaskCancelled(DomainEvent):
    """Someone withdrew the task; `percent` is where it stood, as for TaskFailed."""

    reason: str | None = None
    percent: int = Field(default=0, ge=0, le=100)


class VerdictReviewed(DomainEvent):
    """An analyst confirms or overrides the agent's verdict."""

    decision: Literal["confirm", "override"]
    verdict: Verdict
    note: str = ""


IndicatorKind = Literal["phone", "domain", "email", "url"]
# A threat feed's entry as the log stores it: (kind, normalised value, category). Tuples, not
# objects: an import records tens of thousands of them.
FeedEntry = tuple[IndicatorKind, str, str]


class IndicatorAsserted(DomainEvent):
    """Someone reports an indicator as a scam's, in the scope of the stream it is appended to:
    one tenant's own indicators, or the global ones every tenant's lookups see
    (domain.indicators). `report_count` reports are added; the newest category wins. `value` is
    in its normal form (infrastructure.indicators.normalise_indicator)."""

    kind: IndicatorKind
    value: str = Field(min_length=1, max_length=2048)
    category: str = Field(min_length=1, max_length=64)
    report_count: int = Field(default=1, ge=0)
    source: str = Field(default="analyst", min_length=1, max_length=100)
    # When the reports were seen; the time the event was recorded when absent.
    seen_at: datetime | None = None


class IndicatorRetracted(DomainEvent):
    """The stream's assertion of an indicator is withdrawn: lookups no longer find it there."""

    kind: IndicatorKind
    value: str = Field(min_length=1, max_length=2048)
    reason: str = Field(default="", max_length=500)


class IndicatorsImported(DomainEvent):
    """One batch of a threat feed's entries, imported into the global indicators at
    `imported_at`; they stop matching at `expires_at` unless imported again. Which rows a feed
    may refresh or take over is decided by infrastructure/feeds.py's rules."""

    source: str = Field(min_length=1, max_length=100)
    imported_at: datetime
    expires_at: datetime | None = None
    entries: tuple[FeedEntry, ...]


class KnownIndicator(BaseModel):
    """An indicator as a whole, with its history so far: what the seed data holds, and what the
    rows written before indicators were events held (migration 0009)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: IndicatorKind
    value: str
    category: str
    report_count: int = Field(ge=0)
    first_seen: datetime
    last_seen: datetime
    source: str
    imported_at: datetime | None = None
    expires_at: datetime | None = None


class IndicatorsLoaded(DomainEvent):
    """Indicators loaded whole into the global set; a value the set holds already is left as it
    is, so loading the same data again changes nothing."""

    indicators: tuple[KnownIndicator, ...]


class UnreadableEvent(DomainEvent):
    """Stands in for a stored event this code cannot decode (a type from a newer version, a
    payload that no longer validates), so a reader of the whole log can pass it on by `seq`
    instead of stopping. Never stored, never registered."""

    original_type: str
    error: str


EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.type_name: cls
    for cls in (
        TaskSubmitted,
        AnalysisStarted,
        EntitiesExtracted,
        ToolCallStarted,
        ToolCallCompleted,
        ToolCallFailed,
        ProgressReported,
        VerdictReached,
        TaskCompleted,
        TaskFailed,
        TaskCancelled,
        VerdictReviewed,
        IndicatorAsserted,
        IndicatorRetracted,
        IndicatorsImported,
        IndicatorsLoaded,
    )
}


def event_class(type_name: str) -> type[DomainEvent]:
    """The event class stored under `type_name`; `UnknownEventType` if there is none."""
    try:
        return EVENT_TYPES[type_name]
    except KeyError:
        raise UnknownEventType(type_name) from None


def decode_event(type_name: str, data: dict[str, Any]) -> DomainEvent:
    """Rebuild a domain event from its stored type name and JSON data."""
    return event_class(type_name).model_validate(data)
