"""The MCP server: scamtrail's task use cases (api/application/tasks.py) as tools with output
schemas. Each tool acts for the caller its transport names (api/mcp/auth.py) with the same
roles and tenant scoping as the REST api: another tenant's task is "not found", a missing role
is a tool error naming the role needed.

`analyze_message` submits as `POST /tasks` does, follows the task's events as the progress
sockets do (api/streaming.py: history, then live, each event once and in order) and sends each
as an MCP progress notification: `progress` is the event's `percent` (of `total` 100),
`message` its message, and `_meta["scamtrail/progress"]` its `step`, `tool`, `seq`, `error`,
`event_type` and `timestamp`, all from `domain.progress.progress_message`, the WebSocket's own.
A client that cancels the call cancels the task, if it is still running.

The server also serves a task and its timeline as resources (api/mcp/resources.py) and
notifies their subscribers of each new event (api/mcp/subscriptions.py: `resources/subscribe`;
api/mcp/listen.py: `subscriptions/listen`, protocol 2026-07-28).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import aclosing, contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ProgressNotification, ProgressNotificationParams, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from api.application.caller import Caller, Forbidden
from api.errors import REFUSED
from api.mcp.auth import CallerOf
from api.mcp.listen import TaskListen
from api.mcp.resources import CitedReason, TaskDocument, TaskResources, reasons
from api.mcp.subscriptions import HubFeed, LogFeed, Subscriptions, TaskFeed
from api.metrics import StreamMetrics
from api.schemas import Audit, SubmitTask, TaskPage, TaskView
from api.services import Services
from api.streaming import Close, Follow, progress_stream
from domain import events as ev
from domain.audit import build_audit
from domain.errors import TaskAlreadyFinished, TaskNotFound
from domain.progress import TERMINAL_EVENT_TYPES, progress_message
from domain.task import Status
from infrastructure.task_queries import TaskFilter

log = logging.getLogger(__name__)

PROGRESS_META = "scamtrail/progress"  # the key of the wire fields in a progress notification
_WIRE_FIELDS = ("step", "tool", "seq", "error", "event_type", "timestamp")
_FINISHED = "task finished"  # api.streaming's close reason once the task's last event went out
LOG_POLL_S = 0.2  # how often a task is read when it is followed from the log


class Analysis(BaseModel):
    task_id: str
    status: Status
    verdict: ev.Verdict | None
    score: float | None = Field(description="The calibrated chance that this is a scam.")
    confidence: float | None
    reasons: list[CitedReason]
    error: str | None = Field(description="Why the analysis failed, if it did.")
    timeline: str = Field(description="Where the task's events are: GET this path.")


@contextmanager
def _logging_left_alone() -> Iterator[None]:
    """The SDK's server configures logging as it is built: a rich handler on the root logger at
    INFO, where the process had none. Logging is the process's choice (`api.cli.main`); in a
    process that made none (the app served by another ASGI server, a benchmark) that handler
    would render every INFO line of every library with rich, on the request path."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def build_server(
    services: Services, metrics: StreamMetrics, caller_of: CallerOf, *, live: bool = True
) -> MCPServer:
    """The MCP server over one process's services; `caller_of` names each call's caller.
    `live`: follow tasks (analyze_message, subscriptions) through the process's Redis
    subscription (the api); otherwise by reading the log (`scamtrail mcp`, a process that may
    not hold the relay's Pub/Sub key)."""
    with _logging_left_alone():
        server: MCPServer = MCPServer(
            "scamtrail",
            version="0.1.0",
            instructions=(
                "Scam analysis with an audit trail. analyze_message submits a message and returns"
                " the verdict with reasons citing the events (seq) they rest on; get_audit says"
                " why."
            ),
        )
    tools = _Tools(services, metrics, caller_of, live)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    server.add_tool(tools.analyze_message, name="analyze_message",
                    annotations=ToolAnnotations(open_world_hint=True))  # fmt: skip
    server.add_tool(tools.get_task, name="get_task", annotations=read_only)
    server.add_tool(tools.get_audit, name="get_audit", annotations=read_only)
    server.add_tool(tools.list_tasks, name="list_tasks", annotations=read_only)
    server.add_tool(tools.review_task, name="review_task")
    server.add_tool(tools.cancel_task, name="cancel_task",
                    annotations=ToolAnnotations(destructive_hint=True))  # fmt: skip
    tasks = services.application.tasks
    TaskResources(tasks, caller_of).register(server)
    feed: TaskFeed = (
        HubFeed(services.store, services.hub) if live else LogFeed(services.store, LOG_POLL_S)
    )
    Subscriptions(tasks, caller_of, services.store, feed).register(server)
    TaskListen(tasks, caller_of, services.store, feed).register(server)
    return server


@contextmanager
def _refusals() -> Iterator[None]:
    """The use cases' refusals as tool errors a model can act on."""
    try:
        yield
    except TaskNotFound as error:
        raise ToolError(f"not found: no task {error.task_id!r} visible to this token") from None
    except Forbidden as error:
        raise ToolError(f"forbidden: this token {error}") from None
    except REFUSED as error:
        raise ToolError(str(error)) from None


class _Tools:
    def __init__(
        self, services: Services, metrics: StreamMetrics, caller_of: CallerOf, live: bool
    ) -> None:
        self._services, self._metrics, self._caller_of = services, metrics, caller_of
        self._live = live
        self._tasks = services.application.tasks

    async def analyze_message(
        self,
        content: Annotated[str, Field(description="The suspicious SMS, e-mail, URL or number.")],
        ctx: Context,
        kind: ev.Kind = "text",
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Context, e.g. sender_region.")
        ] = None,
    ) -> Analysis:
        """Analyse a message for scams and wait for the verdict, reporting progress from the
        task's events. Returns the verdict, calibrated score and confidence, and the reasons
        with the event seqs they cite. Cancelling this call cancels the analysis."""
        caller = self._caller_of(ctx)
        body = _submission(content, kind, metadata or {})
        # Shielded: a cancellation that arrives while the task is being recorded is taken
        # below, once its id is known, and cancels it.
        with _refusals(), anyio.CancelScope(shield=True):
            submitted = await self._tasks.submit(
                caller, body.content, body.kind, body.metadata, None
            )
        try:
            if self._live:
                await self._follow(ctx, submitted.task_id)
            else:
                await self._follow_log(ctx, caller, submitted.task_id)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._cancel_left_task(caller, submitted.task_id)
            raise
        return await self._analysis(caller, submitted.task_id)

    async def _analysis(self, caller: Caller, task_id: str) -> Analysis:
        with _refusals():
            state, stream = await self._tasks.events(caller, task_id)
        return Analysis(
            task_id=state.task_id,
            status=state.status,
            verdict=state.verdict,
            score=state.score,
            confidence=state.confidence,
            reasons=reasons(stream),
            error=state.error,
            timeline=f"/tasks/{state.task_id}/timeline",
        )

    async def _follow(self, ctx: Context, task_id: str) -> None:
        """Send the task's events as progress until its last one; a stream that closes for
        another reason (idle) is followed again after the last seq sent."""
        services, after = self._services, 0
        while True:
            follow = Follow([task_id], {task_id: after})
            stream = progress_stream(
                services.store, services.hub, services.settings, self._metrics, follow
            )
            async with aclosing(stream) as items:
                async for item in items:
                    if isinstance(item, Close):
                        if item.reason == _FINISHED:
                            return
                        if item.code == 1001:
                            raise ToolError(f"the server is shutting down; get_task {task_id}")
                        break
                    if item.kind == "event" and item.seq is not None:
                        after = item.seq
                        await _report(ctx, json.loads(item.text))
            await anyio.sleep(LOG_POLL_S)  # closed early (idle, the log unreachable): again

    async def _follow_log(self, ctx: Context, caller: Caller, task_id: str) -> None:
        """Send the task's events as progress, read from the log every LOG_POLL_S, until its
        last one."""
        after = 0
        while True:
            with _refusals():
                _, page = await self._tasks.events(caller, task_id, after=after, limit=500)
            for recorded in page:
                after = recorded.version
                await _report(ctx, progress_message(recorded))
                if recorded.type in TERMINAL_EVENT_TYPES:
                    return
            if not page:
                await anyio.sleep(LOG_POLL_S)

    async def _cancel_left_task(self, caller: Caller, task_id: str) -> None:
        try:
            await self._tasks.cancel(caller, task_id, "the MCP client cancelled analyze_message")
        except TaskAlreadyFinished:
            pass
        except Exception:
            log.exception("task %s: could not cancel it after its MCP call was cancelled", task_id)

    async def get_task(self, task_id: str, ctx: Context) -> TaskDocument:
        """A task's current state: status, step, percent, verdict, score, confidence, and the
        reasons of its verdict with the seqs of the events they cite (as the resource
        scamtrail://tasks/{task_id})."""
        with _refusals():
            state, stream = await self._tasks.events(self._caller_of(ctx), task_id)
        return TaskDocument.of_stream(state, stream)

    async def get_audit(self, task_id: str, ctx: Context) -> Audit:
        """Why a task's verdict was reached: each reason with the full events it cites (the
        evidence), the entities found, the tools that failed, the analysts' reviews."""
        with _refusals():
            state, stream = await self._tasks.events(self._caller_of(ctx), task_id)
        return Audit.model_validate({**build_audit(stream), "status": state.status})

    async def list_tasks(
        self,
        ctx: Context,
        status: Status | None = None,
        verdict: Annotated[ev.Verdict | None, Field(description="The final verdict.")] = None,
        reviewed: bool | None = None,
        submitted_after: datetime | None = None,
        submitted_before: datetime | None = None,
        q: Annotated[str | None, Field(min_length=1, max_length=200)] = None,
        cursor: Annotated[str | None, Field(max_length=500)] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
    ) -> TaskPage:
        """The caller's tasks, newest first, filtered as GET /tasks; pass `next_cursor` back
        as `cursor` for the next page."""
        where = TaskFilter(status, verdict, reviewed, submitted_after, submitted_before, q)
        with _refusals():
            states, next_cursor = await self._tasks.page(
                self._caller_of(ctx), where, cursor=cursor, limit=limit
            )
        return TaskPage(tasks=[TaskView.of(s) for s in states], next_cursor=next_cursor)

    async def review_task(
        self,
        task_id: str,
        decision: Literal["confirm", "override"],
        ctx: Context,
        verdict: Annotated[ev.Verdict | None, Field(description="Required to override.")] = None,
        note: Annotated[str, Field(max_length=4000)] = "",
    ) -> TaskView:
        """An analyst confirms or overrides a finished task's verdict (analysts only)."""
        with _refusals():
            state = await self._tasks.review(self._caller_of(ctx), task_id, decision, verdict, note)
        return TaskView.of(state)

    async def cancel_task(
        self,
        task_id: str,
        ctx: Context,
        reason: Annotated[str | None, Field(max_length=500)] = None,
    ) -> TaskView:
        """Cancel an unfinished task; its worker stops before its next step."""
        with _refusals():
            return TaskView.of(await self._tasks.cancel(self._caller_of(ctx), task_id, reason))


def _submission(content: str, kind: ev.Kind, metadata: dict[str, Any]) -> SubmitTask:
    """The submission as POST /tasks validates it (non-blank, storable); a tool error if not."""
    try:
        return SubmitTask(content=content, kind=kind, metadata=metadata)
    except ValidationError as error:
        where = (".".join(str(part) for part in e["loc"]) for e in error.errors())
        problems = "; ".join(
            f"{at}: {e['msg']}" for at, e in zip(where, error.errors(), strict=True)
        )
        raise ToolError(f"invalid message: {problems}") from None


async def _report(ctx: Context, message: dict[str, Any]) -> None:
    """One progress message as an MCP progress notification, if the call asked for them."""
    meta = ctx.request_context.meta or {}
    token = meta.get("progress_token", meta.get("progressToken"))
    if token is None or isinstance(token, bool):
        return
    params = ProgressNotificationParams.model_validate(
        {
            "progressToken": token,
            "progress": message["percent"],
            "total": 100,
            "message": message["message"],
            "_meta": {PROGRESS_META: {name: message[name] for name in _WIRE_FIELDS}},
        }
    )
    await ctx.session.send_notification(
        ProgressNotification(params=params), related_request_id=ctx.request_id
    )
