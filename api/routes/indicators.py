"""Known scam indicators: analysts add them, any authenticated caller can look one up."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from api.caller import ROLES, Caller, require
from api.schemas import storable
from api.services import Services, services
from infrastructure.indicators import IndicatorKind, IndicatorRepository, normalise_indicator

router = APIRouter(prefix="/indicators", tags=["indicators"])


class NewIndicator(BaseModel):
    kind: IndicatorKind
    value: str = Field(min_length=1, max_length=2048, examples=["+1 (800) 555-0199"])
    category: str = Field(
        min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$", examples=["toll_road"]
    )
    report_count: int = Field(default=1, ge=1, le=1_000_000, description="Reports to add.")
    source: str = Field(default="analyst", min_length=1, max_length=100)

    # Before normalising: PostgreSQL cannot store a NUL or a lone surrogate (a 422, not a 500).
    _storable = field_validator("value", "source")(storable)

    @field_validator("value")
    @classmethod
    def _normalise(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")  # absent when the kind itself was invalid
        return normalise_indicator(kind, value) if kind else value


class IndicatorView(BaseModel):
    id: int
    kind: IndicatorKind
    value: str = Field(description="Normalised: E.164 phone, lowercase domain or e-mail.")
    category: str
    report_count: int
    first_seen: datetime
    last_seen: datetime
    source: str


class Matches(BaseModel):
    matches: list[dict[str, Any]] = Field(
        description="Known indicators matching the value, most specific first; empty: not known."
    )


Svc = Annotated[Services, Depends(services)]
Analyst = Annotated[Caller, Depends(require("analyst"))]
Anyone = Annotated[Caller, Depends(require(*sorted(ROLES)))]  # any role; not a bare token


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_indicator(body: NewIndicator, svc: Svc, _: Analyst) -> IndicatorView:
    """Record reports of an indicator; adding a known one adds to its count."""
    stored = await IndicatorRepository(svc.engine).add_indicator(
        body.kind,
        body.value,
        body.category,
        report_count=body.report_count,
        source=body.source,
    )
    return IndicatorView.model_validate(stored, from_attributes=True)


@router.get("")
async def lookup_indicator(
    kind: IndicatorKind,
    value: Annotated[str, Query(min_length=1, max_length=2048)],
    svc: Svc,
    _: Anyone,
) -> Matches:
    """Known indicators matching a value; a domain also matches its parent domains."""
    try:
        matches = await IndicatorRepository(svc.engine).lookup(kind, value)
    except ValueError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    return Matches(matches=matches)
