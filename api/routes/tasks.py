"""Submit, read and cancel tasks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, status

from api.application.caller import Caller
from api.caller import require
from api.schemas import CancelTask, ReviewTask, SubmitTask, TaskAccepted, TaskView, links
from api.services import Services, services

router = APIRouter(prefix="/tasks", tags=["tasks"])


Svc = Annotated[Services, Depends(services)]
Submitter = Annotated[Caller, Depends(require("submitter"))]
Reader = Annotated[Caller, Depends(require("submitter", "analyst"))]
Analyst = Annotated[Caller, Depends(require("analyst"))]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskAccepted,
    responses={
        409: {"description": "Idempotency-Key reused"},
        413: {"description": "Too big"},
        429: {"description": "The tenant's submissions per minute are used up; see Retry-After"},
    },
)
async def submit(
    body: SubmitTask,
    response: Response,
    svc: Svc,
    caller: Submitter,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> TaskAccepted:
    """Submit a message for analysis. Progress streams at `links.websocket`."""
    submitted = await svc.application.tasks.submit(
        caller, body.content, body.kind, body.metadata, idempotency_key
    )
    response.headers["Location"] = f"/tasks/{submitted.task_id}"
    return TaskAccepted(
        task_id=submitted.task_id,
        status=submitted.status,
        created=submitted.created,
        links=links(submitted.task_id),
    )


@router.get("/{task_id}", response_model=TaskView, responses={404: {"description": "No task"}})
async def get_task(task_id: str, svc: Svc, caller: Reader) -> TaskView:
    """The task's current state (a projection of its events)."""
    return TaskView.of(await svc.application.tasks.visible(caller, task_id))


@router.post(
    "/{task_id}/cancel",
    response_model=TaskView,
    responses={404: {"description": "No task"}, 409: {"description": "Already finished"}},
)
async def cancel(
    task_id: str, svc: Svc, caller: Reader, body: CancelTask | None = None
) -> TaskView:
    """Cancel an unfinished task; the worker stops before its next step."""
    reason = body.reason if body else None
    return TaskView.of(await svc.application.tasks.cancel(caller, task_id, reason))


@router.post(
    "/{task_id}/reviews",
    response_model=TaskView,
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"description": "No task"},
        409: {"description": "No verdict to review, or max_reviews_per_task reached"},
    },
)
async def review(task_id: str, body: ReviewTask, svc: Svc, caller: Analyst) -> TaskView:
    """An analyst confirms or overrides the agent's verdict, with a note. Concurrent reviews of
    one task all land; a task holds at most `max_reviews_per_task` of them."""
    state = await svc.application.tasks.review(
        caller, task_id, body.decision, body.verdict, body.note
    )
    return TaskView.of(state)
