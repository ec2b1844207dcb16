"""Known scam indicators: analysts assert and retract their tenant's own, admins the global ones
every tenant sees; any authenticated caller looks one up among the global ones and its
tenant's. Every write is an event in an indicator stream (domain.indicators), rate-limited per
tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from api.application.caller import ROLES, Caller
from api.application.indicators import Assertion
from api.caller import require
from api.schemas import storable
from api.services import Services, services
from domain.events import IndicatorRetracted
from domain.indicators import Scope
from infrastructure.indicators import (
    Indicator,
    IndicatorKind,
    normalise_indicator,
)

router = APIRouter(prefix="/indicators", tags=["indicators"])

SCOPE_HELP = (
    "`tenant`: your tenant's own indicators (analysts); `global`: the ones every tenant's "
    "lookups see (admins only)."
)


class NewIndicator(BaseModel):
    kind: IndicatorKind
    value: str = Field(min_length=1, max_length=2048, examples=["+1 (800) 555-0199"])
    category: str = Field(
        min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$", examples=["toll_road"]
    )
    report_count: int = Field(default=1, ge=1, le=1_000_000, description="Reports to add.")
    source: str = Field(default="analyst", min_length=1, max_length=100)
    scope: Scope = Field(default="tenant", description=SCOPE_HELP)

    # Before normalising: PostgreSQL cannot store a NUL or a lone surrogate (a 422, not a 500).
    _storable = field_validator("value", "source")(storable)

    @field_validator("value")
    @classmethod
    def _normalise(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")  # absent when the kind itself was invalid
        return normalise_indicator(kind, value) if kind else value


class Attribution(BaseModel):
    """The event that last asserted an indicator, and who made it."""

    stream_id: str
    seq: int | None
    tenant: str | None
    actor: str | None
    at: datetime | None


class IndicatorView(BaseModel):
    id: int
    kind: IndicatorKind
    value: str = Field(description="Normalised: E.164 phone, lowercase domain or e-mail.")
    category: str
    report_count: int
    first_seen: datetime
    last_seen: datetime
    source: str
    scope: Scope
    asserted: Attribution

    @classmethod
    def of(cls, indicator: Indicator) -> IndicatorView:
        return cls(
            id=indicator.id,
            kind=indicator.kind,
            value=indicator.value,
            category=indicator.category,
            report_count=indicator.report_count,
            first_seen=indicator.first_seen,
            last_seen=indicator.last_seen,
            source=indicator.source,
            scope=indicator.scope,
            asserted=Attribution(
                stream_id=indicator.stream_id,
                seq=indicator.asserted_seq,
                tenant=indicator.asserted_tenant,
                actor=indicator.asserted_by,
                at=indicator.asserted_at,
            ),
        )


class Retraction(BaseModel):
    """A retraction as the log recorded it."""

    kind: IndicatorKind
    value: str
    scope: Scope
    stream_id: str
    seq: int = Field(description="The retraction event's version in its stream.")
    actor: str
    retracted_at: datetime


class Matches(BaseModel):
    matches: list[dict[str, Any]] = Field(
        description="Known indicators matching the value that your tenant sees (the global ones"
        " and its own), most specific first, each naming who asserted it; empty: not known."
    )


Svc = Annotated[Services, Depends(services)]
Writer = Annotated[Caller, Depends(require("analyst", "admin"))]
Anyone = Annotated[Caller, Depends(require(*sorted(ROLES)))]  # any role; not a bare token

WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "`global` scope without the admin role, or `tenant` without analyst"},
    429: {"description": "The tenant's indicator writes per minute are used up; see Retry-After"},
}


@router.post("", status_code=status.HTTP_201_CREATED, responses=WRITE_ERRORS)
async def add_indicator(body: NewIndicator, svc: Svc, caller: Writer) -> IndicatorView:
    """Record reports of an indicator in your tenant's set (or, for an admin, the global one);
    adding a known one adds to its count there. Another scope's row is never changed."""
    assertion = Assertion(
        body.kind, body.value, body.category, body.report_count, body.source, body.scope
    )
    return IndicatorView.of(await svc.application.indicators.assert_indicator(caller, assertion))


@router.delete(
    "/{kind}/{value:path}",
    responses={404: {"description": "No such indicator in that scope"}, **WRITE_ERRORS},
)
async def retract_indicator(
    kind: IndicatorKind,
    value: Annotated[str, Path(min_length=1, max_length=2048)],
    svc: Svc,
    caller: Writer,
    scope: Annotated[Scope, Query(description=SCOPE_HELP)] = "tenant",
    reason: Annotated[str, Query(max_length=500)] = "",
) -> Retraction:
    """Withdraw an assertion: your tenant's (analysts) or a global one (admins). The value may
    be written in any form a lookup takes; a URL goes percent-encoded."""
    recorded = await svc.application.indicators.retract(caller, scope, kind, value, reason)
    assert isinstance(recorded.event, IndicatorRetracted)
    return Retraction(
        kind=kind,
        value=recorded.event.value,
        scope=scope,
        stream_id=recorded.stream_id,
        seq=recorded.version,
        actor=recorded.metadata.actor,
        retracted_at=recorded.recorded_at,
    )


@router.get("")
async def lookup_indicator(
    kind: IndicatorKind,
    value: Annotated[str, Query(min_length=1, max_length=2048)],
    svc: Svc,
    caller: Anyone,
) -> Matches:
    """Known indicators matching a value among the global ones and your tenant's own; a domain
    also matches its parent domains, never a public suffix or a shared hosting platform."""
    return Matches(matches=await svc.application.indicators.lookup(caller, kind, value))
