"""What people read: the task list, a task's timeline, and the audit of its verdict."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.application.caller import Caller
from api.caller import require
from api.schemas import Audit, TaskPage, TaskView, TimelinePage, timeline_page
from api.services import Services, services
from domain import events as ev
from domain.audit import build_audit
from domain.task import Status
from infrastructure.event_store import MAX_VERSION
from infrastructure.task_queries import TaskFilter

router = APIRouter(prefix="/tasks", tags=["tasks"])

Svc = Annotated[Services, Depends(services)]
# A submitter reads its own tasks, an analyst every task of its tenant (Caller.submitted_by).
Who = Annotated[Caller, Depends(require("submitter", "analyst"))]


@router.get("", response_model=TaskPage)
async def task_list(
    svc: Svc,
    caller: Who,
    status: Status | None = None,
    verdict: Annotated[
        ev.Verdict | None, Query(description="The final verdict (after reviews).")
    ] = None,
    reviewed: bool | None = None,
    submitted_after: datetime | None = None,
    submitted_before: datetime | None = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Words in the content.")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TaskPage:
    """The caller's tenant's tasks, newest first, a page at a time."""
    where = TaskFilter(status, verdict, reviewed, submitted_after, submitted_before, q)
    states, next_cursor = await svc.application.tasks.page(
        caller, where, cursor=cursor, limit=limit
    )
    return TaskPage(tasks=[TaskView.of(s) for s in states], next_cursor=next_cursor)


@router.get("/{task_id}/timeline", response_model=TimelinePage)
async def timeline(
    task_id: str,
    svc: Svc,
    caller: Who,
    after: Annotated[
        int, Query(ge=0, le=MAX_VERSION, description="Return events with seq > after.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Every event of the task in order, a page at a time (by seq)."""
    page = await svc.application.tasks.timeline(caller, task_id, after=after, limit=limit)
    # TimelinePage, written out here: its entries are JSON already (the timeline projection's,
    # or rendered from validated events), and letting FastAPI validate 1,000 of them again
    # costs more than the database read.
    return Response(timeline_page(task_id, page, limit), media_type="application/json")


@router.get("/{task_id}/audit", response_model=Audit)
async def audit(task_id: str, svc: Svc, caller: Who) -> Audit:
    """Why this verdict: each reason with the full events it cites, the entities found, the
    tools that failed, and the analysts' reviews."""
    state, stream = await svc.application.tasks.events(caller, task_id)
    return Audit.model_validate({**build_audit(stream), "status": state.status})
