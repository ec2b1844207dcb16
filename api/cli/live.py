"""Following one task's progress socket from the command line, and drawing it with rich."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import websockets
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn

from api.cli.http import ApiClient, ClientError
from api.errors import EXIT_BAD_INPUT, EXIT_UNREACHABLE, exit_code_for_close
from domain.task import FINISHED as TERMINAL_STEPS

RECONNECTS = 5  # consecutive failed connects before the api counts as gone
MAX_NAMED = 100  # tasks a reconnecting tenant socket names (the api's default WS_MAX_TASKS)

Handler = Callable[[dict[str, Any]], None]


async def follow(api: ApiClient, task_id: str, on_event: Handler) -> str:
    """Hand every event of the task to `on_event`, once and in order, until it ends; return
    its last step (completed, failed or cancelled). A dropped socket resumes with `?after=`."""
    after, failures = 0, 0
    while True:
        code: int | None = None
        last_error: Exception | None = None
        try:
            async with websockets.connect(api.websocket_url(task_id, after), open_timeout=10) as ws:
                async for raw in ws:
                    message = json.loads(raw)
                    if "seq" not in message:
                        _check_refusal(message)
                        continue  # `connected` or a heartbeat
                    if message["seq"] <= after:
                        continue  # already shown before a reconnect
                    after, failures = message["seq"], 0  # progress: the socket works
                    on_event(message)
                    if message.get("step") in TERMINAL_STEPS:
                        return str(message["step"])
                code = ws.close_code
        except websockets.InvalidStatus as error:
            status = error.response.status_code
            # A 5xx is the api failing (or a proxy without a backend), not the request.
            exit_code = EXIT_UNREACHABLE if status >= 500 else EXIT_BAD_INPUT
            raise ClientError(f"the progress socket was refused ({status})", exit_code) from None
        except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosedError) as error:
            last_error = error
        refused = exit_code_for_close(code)
        if refused is not None:  # a refusal for good; other closes are worth a reconnect
            raise ClientError(f"the progress socket was closed ({code})", refused)
        # The server closed (idle timeout, restart) or the socket broke: resume after `after`,
        # but a socket that keeps failing without a single new event means the api is gone.
        failures += 1
        if failures >= RECONNECTS:
            why = last_error or f"closed with {code}"
            raise ClientError(f"lost the progress socket of {task_id}: {why}", EXIT_UNREACHABLE)
        await asyncio.sleep(0.2 * failures)


async def watch_tenant(
    api: ApiClient,
    on_event: Handler,
    notify: Callable[[str], None] = lambda _: None,
    *,
    patience: float = 30.0,
) -> None:
    """Hand every event of the tenant's tasks to `on_event` until cancelled (Ctrl-C); `notify`
    gets a line when the first socket is live, when it is lost and when it is back.

    A socket the server closes (idle, restart) is opened again; an api that went away is tried
    again for `patience` seconds, then given up with exit 3 (at the start, RECONNECTS failed
    connects are enough: a wrong --url should not keep anyone waiting). A socket opened again
    names the tasks whose events may have gone by meanwhile (`CatchUp`), so their history
    comes with it; an event seen before a reconnect is not repeated."""
    seen: dict[str, int] = {}  # the last seq handed on, per task
    catch_up = CatchUp()
    named: list[str] = []  # the tasks the current socket names
    opened = 0  # sockets the server said `connected` on
    failures = 0  # sockets in a row that brought no message at all
    lost_at = 0.0  # when the last socket that worked was lost
    loop = asyncio.get_running_loop()

    def connected() -> None:
        nonlocal opened, failures
        if opened == 0:
            notify(f"following the tenant's tasks at {api.url}; Ctrl-C stops")
        elif failures > 1:
            notify(f"reconnected to {api.url}; catching up on {len(named)} task(s) from the log")
        opened += 1
        failures = 0

    def shown(message: dict[str, Any]) -> None:
        catch_up.saw(message)
        on_event(message)

    while True:
        named = await catch_up.tasks(api) if opened else []
        why = await _tenant_socket(api, seen, shown, connected, named)
        if failures == 0:
            lost_at = loop.time()
            catch_up.lost()
        failures += 1
        if opened == 0 and failures >= RECONNECTS:
            raise ClientError(
                f"cannot reach the scamtrail api at {api.url} ({why}); is it running?",
                EXIT_UNREACHABLE,
            )
        if opened and failures >= 2:  # the socket was lost and a reconnect failed
            if loop.time() - lost_at >= patience:
                raise ClientError(
                    f"lost the scamtrail api at {api.url} for {patience:.0f} s ({why})",
                    EXIT_UNREACHABLE,
                )
            if failures == 2:
                notify(f"lost the api at {api.url} ({why}); reconnecting for {patience:.0f} s")
        await asyncio.sleep(min(0.2 * failures, 1.0))


class CatchUp:
    """What a tenant socket opened again names besides the tenant (`?ids=`), so that the events
    that went by while no socket was open come with its history: the tasks seen that had not
    finished, and those submitted since shortly before the last socket was lost. What was shown
    already is dropped by seq, so naming a task too many costs a replay, never a repeat."""

    SLACK = timedelta(seconds=30)  # clocks of the api and this machine may disagree

    def __init__(self) -> None:
        self.unfinished: dict[str, None] = {}  # an ordered set, the most recent last
        self.lost_at: datetime | None = None

    def saw(self, message: dict[str, Any]) -> None:
        task = message.get("task_id")
        if task:
            self.unfinished.pop(task, None)
            if message.get("step") not in TERMINAL_STEPS:
                self.unfinished[task] = None

    def lost(self) -> None:
        self.lost_at = datetime.now(UTC)

    async def tasks(self, api: ApiClient) -> list[str]:
        """The tasks to name, at most MAX_NAMED: those submitted in the gap first."""
        submitted: list[str] = []
        if self.lost_at is not None:
            since = (self.lost_at - self.SLACK).isoformat()
            params = {"submitted_after": since, "limit": MAX_NAMED}
            try:
                page = await api.call("GET", "/tasks", params=params)
                submitted = [task["task_id"] for task in page["tasks"]]
            except ClientError:
                pass  # the api is not back yet: the socket's own attempt says so
        return list(dict.fromkeys([*submitted, *reversed(self.unfinished)]))[:MAX_NAMED]


async def _tenant_socket(
    api: ApiClient,
    seen: dict[str, int],
    on_event: Handler,
    connected: Callable[[], None],
    named: list[str],
) -> object:
    """One tenant socket, until it closes or breaks: why it ended. A refusal for good (a 4xx
    answer, a 44xx close) raises ClientError; a server error is worth another try."""
    code: int | None = None
    try:
        async with websockets.connect(api.tenant_socket_url(named), open_timeout=10) as ws:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("step") == "connected" and "seq" not in message:
                    connected()
                else:
                    _hand_on(message, seen, on_event)
            code, why = ws.close_code, f"closed with {ws.close_code}"
    except websockets.InvalidStatus as error:
        status = error.response.status_code
        if status < 500:
            raise ClientError(f"the tasks socket was refused ({status})", EXIT_BAD_INPUT) from None
        why = f"refused with {status}"  # the api failing, or a proxy without a backend
    except websockets.ConnectionClosedError as error:
        code, why = (error.rcvd.code if error.rcvd else None), str(error)
    except (OSError, websockets.InvalidHandshake) as error:
        why = str(error) or type(error).__name__
    refused = exit_code_for_close(code)
    if refused is not None:
        raise ClientError(f"the tasks socket was closed ({code})", refused)
    return why


def _hand_on(message: dict[str, Any], seen: dict[str, int], on_event: Handler) -> None:
    if "seq" not in message:
        _check_refusal(message)  # or `connected`, or a heartbeat
    elif message["seq"] > seen.get(message["task_id"], 0):
        seen[message["task_id"]] = message["seq"]
        on_event(message)


def event_line(message: dict[str, Any]) -> str:
    """One event as one plain line: time, task id (whole), step, tool, message."""
    mark = "✗" if message.get("error") else "·"
    when = str(message.get("timestamp") or "")[11:23]
    tool = f" [{message['tool']}]" if message.get("tool") else ""
    text = message.get("message") or ""
    return f"{when} {message.get('task_id')} {mark} {message.get('step')}{tool} {text}"


def _check_refusal(message: dict[str, Any]) -> None:
    """The server's refusal is the wire's error message without a seq, then a 44xx close."""
    if message.get("step") == "failed" and message.get("error"):
        text = f"the progress socket was refused: {message.get('message')}"
        raise ClientError(text, EXIT_BAD_INPUT)


class LiveView:
    """A progress bar with the step list printed above it as events arrive."""

    def __init__(self, console: Console) -> None:
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn())
        self.progress = Progress(
            *columns, TextColumn("{task.percentage:>3.0f}%"), console=console, transient=True
        )
        self._bar: TaskID | None = None

    def __enter__(self) -> LiveView:
        self.progress.start()
        self._bar = self.progress.add_task("submitted", total=100)
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def show(self, message: dict[str, Any]) -> None:
        assert self._bar is not None
        text = escape(str(message.get("message") or message.get("step")))
        percent = message.get("percent") or 0
        self.progress.update(self._bar, completed=percent, description=text)
        if message.get("event_type") == "ToolCallStarted":
            return  # shown on the bar; its outcome gets the line in the list
        mark = "[red]✗[/]" if message.get("error") else "[green]✓[/]"
        tool = f" [dim]{escape(message['tool'])}[/]" if message.get("tool") else ""
        self.progress.console.print(f"{mark} [bold]{escape(str(message['step']))}[/]{tool} {text}")
