"""A task and its timeline as MCP resources, read through the task use cases (api/application)
as the REST api reads them, with the same tenant scope.

- `scamtrail://tasks/{task_id}`: the task's document, as `get_task` returns it (status,
  verdict, score, confidence, the reasons with the seqs of the events they cite)
- `scamtrail://tasks/{task_id}/timeline{?after,limit}`: its events with seq > `after` (0 by
  default), at most `limit` (TIMELINE_PAGE by default, at most TIMELINE_MAX); `next` is the URI
  of the next page, null when this page reached the end of the log

Refusals are MCP errors a client can act on: a malformed URI, id or cursor is INVALID_PARAMS
naming what is wrong; a task the caller may not see is INVALID_PARAMS "not found", exactly as
an id that names nothing; a missing role or an expired token is INVALID_REQUEST.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.shared.uri_template import UriTemplate
from mcp_types import INVALID_PARAMS, INVALID_REQUEST
from pydantic import BaseModel, Field

from api.application.caller import Caller, Forbidden
from api.application.tasks import Tasks
from api.errors import REFUSED
from api.mcp.auth import CallerOf
from api.schemas import TaskView, TimelinePage, timeline_page
from domain import events as ev
from domain.errors import TaskNotFound
from domain.log import RecordedEvent
from domain.task import TaskState
from infrastructure.event_store import MAX_VERSION

TASK_TEMPLATE = "scamtrail://tasks/{task_id}"
TIMELINE_TEMPLATE = "scamtrail://tasks/{task_id}/timeline{?after,limit}"
TIMELINE_PAGE = 100  # events per timeline page unless the URI asks for fewer
TIMELINE_MAX = 500  # the most a URI may ask for
JSON = "application/json"

_TASK = UriTemplate.parse(TASK_TEMPLATE)
_TIMELINE = UriTemplate.parse(TIMELINE_TEMPLATE)
_DIGITS = re.compile(r"[0-9]{1,10}")


class CitedReason(BaseModel):
    code: str
    text: str
    weight: float = Field(description="How much this reason moved the score.")
    seqs: list[int] = Field(description="The seq of each event this reason rests on.")


class TaskDocument(TaskView):
    """A task as `get_task` and `scamtrail://tasks/{id}` give it: its state and the reasons of
    its verdict."""

    reasons: list[CitedReason] = Field(
        description="The reasons of the latest verdict, each with the seqs it cites."
    )

    @classmethod
    def of_stream(cls, state: TaskState, stream: list[RecordedEvent]) -> TaskDocument:
        return cls.model_validate({**TaskView.of(state).model_dump(), "reasons": reasons(stream)})


class TimelineResource(TimelinePage):
    next: str | None = Field(description="The URI of the next page; null at the end of the log.")


@dataclass(frozen=True)
class Target:
    """What a resource URI names: a task, or a page of its timeline."""

    task_id: str
    timeline: bool = False
    after: int = 0
    limit: int = TIMELINE_PAGE


def reasons(stream: list[RecordedEvent]) -> list[CitedReason]:
    """The reasons of the task's latest verdict, each with the seqs it cites."""
    verdicts = [r.event for r in stream if isinstance(r.event, ev.VerdictReached)]
    if not verdicts:
        return []
    return [
        CitedReason(code=r.code, text=r.text, weight=r.weight, seqs=list(r.evidence))
        for r in verdicts[-1].reasons
    ]


def parse_uri(uri: str) -> Target:
    """The target of a scamtrail resource URI; INVALID_PARAMS, saying why, for anything else."""
    found = _TASK.match(uri)
    if found is not None:
        return target(found, timeline=False)
    found = _TIMELINE.match(uri)
    if found is None:
        raise _invalid(f"unknown resource {uri!r}: use {TASK_TEMPLATE} or {TIMELINE_TEMPLATE}")
    return target(found, timeline=True)


def target(params: Mapping[str, object], *, timeline: bool) -> Target:
    """The target a template's parameters name, each checked; INVALID_PARAMS otherwise."""
    task = task_id(params.get("task_id"))
    if not timeline:
        return Target(task)
    after = _bounded("after", params.get("after"), 0, MAX_VERSION, default=0)
    limit = _bounded("limit", params.get("limit"), 1, TIMELINE_MAX, default=TIMELINE_PAGE)
    return Target(task, timeline=True, after=after, limit=limit)


def task_id(value: object) -> str:
    """A task id as the api makes them (a UUID), normalised; INVALID_PARAMS otherwise."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise _invalid(f"task id {value!r} is not a task id (a UUID)") from None


def _bounded(name: str, value: object, least: int, most: int, *, default: int) -> int:
    if value is None:
        return default
    number = int(value) if isinstance(value, str) and _DIGITS.fullmatch(value) else -1
    if not least <= number <= most:
        raise _invalid(f"{name} must be a whole number from {least} to {most}, not {value!r}")
    return number


def timeline_uri(task: str, after: int, limit: int) -> str:
    extra = "" if limit == TIMELINE_PAGE else f"&limit={limit}"
    return f"scamtrail://tasks/{task}/timeline?after={after}{extra}"


def _invalid(message: str) -> MCPError:
    return MCPError(INVALID_PARAMS, message)


@contextmanager
def refusals() -> Iterator[None]:
    """The use cases' refusals as MCP errors; a task out of scope reads as not found."""
    try:
        yield
    except TaskNotFound as error:
        raise _invalid(f"not found: no task {error.task_id!r} visible to this token") from None
    except Forbidden as error:
        raise MCPError(INVALID_REQUEST, f"forbidden: this token {error}") from None
    except REFUSED as error:
        raise _invalid(str(error)) from None


def resource_caller(caller_of: CallerOf, ctx: Context[Any, Any]) -> Caller:
    """The request's caller; a refused or expired token is INVALID_REQUEST."""
    try:
        return caller_of(ctx)
    except ToolError as error:
        raise MCPError(INVALID_REQUEST, str(error)) from None


class TaskResources:
    """The resource templates' readers, over the task use cases."""

    def __init__(self, tasks: Tasks, caller_of: CallerOf) -> None:
        self._tasks, self._caller_of = tasks, caller_of

    def register(self, server: MCPServer) -> None:
        server.resource(
            TASK_TEMPLATE, name="task", title="A scam analysis task", mime_type=JSON,
            description="The task's status, verdict, score, confidence and reasons (each with"
            " the seqs of the events it cites), as get_task returns it. Subscribe to hear of"
            " each new event.",
        )(self.task)  # fmt: skip
        server.resource(
            TIMELINE_TEMPLATE, name="task_timeline", title="A task's events", mime_type=JSON,
            description=f"The task's events with seq > after (default 0), at most limit"
            f" (default {TIMELINE_PAGE}, at most {TIMELINE_MAX}); `next` is the next page's"
            " URI. Subscribe to hear of each new event.",
        )(self.timeline)  # fmt: skip

    async def task(self, task_id: str, ctx: Context) -> str:
        """The task's document (JSON)."""
        task = target({"task_id": task_id}, timeline=False)
        caller = resource_caller(self._caller_of, ctx)
        with refusals():
            state, stream = await self._tasks.events(caller, task.task_id)
        return TaskDocument.of_stream(state, stream).model_dump_json()

    async def timeline(
        self, task_id: str, ctx: Context, after: str | None = None, limit: str | None = None
    ) -> str:
        """One page of the task's events (JSON)."""
        page = target({"task_id": task_id, "after": after, "limit": limit}, timeline=True)
        caller = resource_caller(self._caller_of, ctx)
        with refusals():
            entries = await self._tasks.timeline(
                caller, page.task_id, after=page.after, limit=page.limit
            )
        next_after = entries.next_after(page.limit)
        # TimelineResource, written out as GET /timeline writes its page.
        after_uri = (
            None if next_after is None else timeline_uri(page.task_id, next_after, page.limit)
        )
        return timeline_page(page.task_id, entries, page.limit, next=after_uri)
