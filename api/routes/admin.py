"""Admin actions over HTTP (the same as `scamtrail projections rebuild` / `tasks prune`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.application.admin import age_from_text
from api.application.caller import Caller
from api.caller import require
from api.services import Services, services

router = APIRouter(prefix="/admin", tags=["admin"])

Svc = Annotated[Services, Depends(services)]
Admin = Annotated[Caller, Depends(require("admin"))]


class Rebuilt(BaseModel):
    tasks: int
    events: int
    changed: int
    removed: int
    timeline_entries: int = Field(
        description="Timeline entries written: missing, or rendered differently."
    )


class Pruned(BaseModel):
    pruned: int


@router.post("/projections/rebuild")
async def rebuild(svc: Svc, caller: Admin) -> Rebuilt:
    """Recompute the caller's tenant's task rows and timeline entries from the log. (Every
    tenant at once is an operator's job: `scamtrail projections rebuild`.)"""
    report = await svc.application.admin.rebuild_tenant(caller)
    return Rebuilt(
        tasks=report.tasks,
        events=report.events,
        changed=report.changed,
        removed=report.removed,
        timeline_entries=report.entries,
    )


@router.post("/tasks/prune")
async def prune(
    svc: Svc,
    caller: Admin,
    older_than: Annotated[str, Query(pattern=r"^\d{1,6}[dhm]$", examples=["90d"])],
) -> Pruned:
    """Delete the caller's tenant's tasks that finished longer ago than `older_than`."""
    age = age_from_text(older_than)  # e.g. longer than a century: InvalidRequest, a 422
    return Pruned(pruned=await svc.application.admin.prune(caller, age))
