"""The analyst's dashboard: verdicts over time, what they rested on, how the tools behaved."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.application.caller import Caller
from api.caller import require
from api.services import Services, services
from infrastructure.dashboard_queries import MAX_DAYS, MAX_TASKS

router = APIRouter(tags=["dashboard"])

Svc = Annotated[Services, Depends(services)]
Analyst = Annotated[Caller, Depends(require("analyst"))]


class DayOutcomes(BaseModel):
    day: date
    scam: int
    suspicious: int
    safe: int
    none: int = Field(description="Tasks without a verdict: running, failed or cancelled.")


class ToolStats(BaseModel):
    tool: str
    completed: int = Field(description="Calls that answered.")
    failed: int = Field(description="Failed attempts (each retry counts).")
    timed_out: int = Field(description="Failed attempts that timed out.")
    p50_ms: float | None
    p95_ms: float | None


class Indicator(BaseModel):
    kind: str
    value: str
    tasks: int = Field(description="Tasks whose scam-database lookup matched it.")


class Counted(BaseModel):
    name: str
    tasks: int


class DashboardView(BaseModel):
    days: int
    since: datetime
    tasks: int
    reviewed: int
    overridden: int = Field(description="Reviews whose verdict differs from the agent's.")
    outcomes: dict[str, int] = Field(description="Tasks by final verdict, `none` for no verdict.")
    by_day: list[DayOutcomes]
    tools: list[ToolStats]
    top_indicators: list[Indicator]
    top_brands: list[Counted] = Field(description="Brands the messages claimed to come from.")
    top_reasons: list[Counted] = Field(description="The codes of the reasons verdicts cite.")
    sampled: bool = Field(
        description=f"The tool, indicator, brand and reason figures cover only the newest "
        f"{MAX_TASKS} tasks of the window."
    )


@router.get("/dashboard", response_model=DashboardView)
async def tenant_dashboard(
    svc: Svc,
    caller: Analyst,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="Days up to today (UTC).")] = 7,
) -> DashboardView:
    """The caller's tenant's last `days` days: tasks by final verdict per day, the top 10
    scam-database indicators, brands and reasons, and each tool's latency and failures."""
    figures = await svc.application.dashboard(caller, days)
    return DashboardView(
        days=figures.days,
        since=figures.since,
        tasks=figures.tasks,
        reviewed=figures.reviewed,
        overridden=figures.overridden,
        outcomes=figures.outcomes,
        by_day=[DayOutcomes(day=d.day, **d.outcomes) for d in figures.by_day],
        tools=[ToolStats(**vars(t)) for t in figures.tools],
        top_indicators=[Indicator(kind=k, value=v, tasks=n) for k, v, n in figures.indicators],
        top_brands=[Counted(name=b, tasks=n) for b, n in figures.brands],
        top_reasons=[Counted(name=c, tasks=n) for c, n in figures.reasons],
        sampled=figures.sampled,
    )
