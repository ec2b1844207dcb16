"""Submit, read and cancel tasks."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Response, status

from api import commands
from api.caller import Caller, require
from api.limits import check_submission_rate
from api.schemas import CancelTask, ReviewTask, SubmitTask, TaskAccepted, TaskView
from api.services import Services, services
from domain import events as ev
from infrastructure.task_log import TaskLog
from infrastructure.task_queries import tenant_task

router = APIRouter(prefix="/tasks", tags=["tasks"])


Svc = Annotated[Services, Depends(services)]
Submitter = Annotated[Caller, Depends(require("submitter"))]
Reader = Annotated[Caller, Depends(require("submitter", "analyst"))]
Analyst = Annotated[Caller, Depends(require("analyst"))]


def _task_log(svc: Services) -> TaskLog:
    return TaskLog(svc.store)


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
    size = len(body.content.encode())
    if size > svc.settings.max_content_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"content is {size} bytes; the limit is {svc.settings.max_content_bytes}",
        )
    # The metadata is stored in the same event and replayed to every reader and through Redis:
    # it is bounded as a whole, serialised, not only by its number of keys.
    metadata_size = len(json.dumps(body.metadata, ensure_ascii=False).encode())
    if metadata_size > svc.settings.max_metadata_bytes:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"metadata is {metadata_size} bytes as JSON; the limit is"
            f" {svc.settings.max_metadata_bytes}",
        )
    await check_submission_rate(svc.redis, caller.tenant, svc.settings.submissions_per_minute)
    submission = ev.TaskSubmitted(
        content=body.content, kind=body.kind, client_metadata=body.metadata
    )
    task_id, created = await commands.submit_task(
        _task_log(svc), svc.jobs, svc.settings.queue, caller, submission, idempotency_key
    )
    response.headers["Location"] = f"/tasks/{task_id}"
    # Read as the submitter: a status is only ever reported for the caller's own task.
    state = await tenant_task(svc.engine, caller.tenant, task_id, submitted_by=caller.actor)
    return TaskAccepted(
        task_id=task_id,
        status=state.status if state else "submitted",
        created=created,
        links=commands.links(task_id),
    )


@router.get("/{task_id}", response_model=TaskView, responses={404: {"description": "No task"}})
async def get_task(task_id: str, svc: Svc, caller: Reader) -> TaskView:
    """The task's current state (a projection of its events)."""
    return TaskView.of(await commands.visible_task(_task_log(svc), caller, task_id))


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
    return TaskView.of(await commands.cancel_task(_task_log(svc), caller, task_id, reason))


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
    state = await commands.review_task(
        _task_log(svc),
        caller,
        task_id,
        body.decision,
        body.verdict,
        body.note,
        max_reviews=svc.settings.max_reviews_per_task,
    )
    return TaskView.of(state)
