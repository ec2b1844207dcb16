"""Admin actions over HTTP (the same as `scamtrail projections rebuild` / `tasks prune`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.caller import Caller, require
from api.cli_admin import age_from_text
from api.services import Services, services
from domain.errors import InvalidAppend
from infrastructure.projection_rebuild import prune_finished_tasks, rebuild_projections

router = APIRouter(prefix="/admin", tags=["admin"])

Svc = Annotated[Services, Depends(services)]
Admin = Annotated[Caller, Depends(require("admin"))]


class Rebuilt(BaseModel):
    tasks: int
    events: int
    changed: int
    removed: int


class Pruned(BaseModel):
    pruned: int


@router.post("/projections/rebuild")
async def rebuild(svc: Svc, caller: Admin) -> Rebuilt:
    """Recompute the caller's tenant's task rows from the log. (Every tenant at once is an
    operator's job: `scamtrail projections rebuild`.)"""
    report = await rebuild_projections(svc.engine, tenant=caller.tenant)
    return Rebuilt(
        tasks=report.tasks, events=report.events, changed=report.changed, removed=report.removed
    )


@router.post("/tasks/prune")
async def prune(
    svc: Svc,
    caller: Admin,
    older_than: Annotated[str, Query(pattern=r"^\d{1,6}[dhm]$", examples=["90d"])],
) -> Pruned:
    """Delete the caller's tenant's tasks that finished longer ago than `older_than`."""
    try:
        age = age_from_text(older_than)
    except ValueError as error:  # e.g. longer than a century: 422, not 500 (found by fuzzing)
        raise InvalidAppend(str(error)) from None
    return Pruned(pruned=await prune_finished_tasks(svc.engine, age, tenant=caller.tenant))
