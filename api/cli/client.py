"""Client commands: `scamtrail analyze`, `scamtrail timeline`, `scamtrail tasks list`,
`scamtrail tasks watch`.

They talk to a running api over HTTP and its WebSocket, like any other client. Exit codes:
0 done, 2 bad input (arguments, or a request the api refused), 3 api unreachable (or lost), 4
task failed, 130 stopped with Ctrl-C (how `tasks watch` ends).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Column, Table

from api.cli.http import (
    EXIT_DONE,
    EXIT_TASK_FAILED,
    ApiClient,
    ClientError,
    Connection,
    default_url,
)
from api.cli.live import LiveView, event_line, follow, watch_tenant
from api.errors import EXIT_BAD_INPUT, EXIT_UNREACHABLE
from domain import events as ev

out = Console(soft_wrap=True)  # results: what a pipe gets, one line per line
err = Console(stderr=True)  # progress and errors

Url = typer.Option(
    None,
    "--url",
    help="The api (default: http://127.0.0.1:$SCAMTRAIL_PORT, else the `scamtrail up` running"
    " in this directory, else http://127.0.0.1:8000).",
)
Token = typer.Option(None, "--token", envvar="SCAMTRAIL_TOKEN", help="Bearer token.")
KINDS: tuple[str, ...] = get_args(ev.Kind)
Json = typer.Option(False, "--json", help="JSON lines instead of tables.")


def analyze(
    ctx: typer.Context,
    content: str = typer.Argument(
        ..., help="The suspicious message, URL or number; - reads stdin."
    ),
    kind: str = typer.Option("text", help=f"What it is: {', '.join(KINDS)}."),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print one JSON result document at the end: task id, status, verdict, score,"
        " confidence, and the reasons with the seqs of their events.",
    ),
    events: bool = typer.Option(
        False, "--events", help="Print every progress event as a JSON line as it arrives."
    ),
    wait: float = typer.Option(300.0, min=1, help="Seconds to wait for the verdict."),
    url: str | None = Url,
    token: str | None = Token,
) -> None:
    """Submit a message, follow its analysis live, then show the verdict and its reasons."""
    text = sys.stdin.read() if content == "-" else content

    async def run(api: ApiClient) -> int:
        if kind not in KINDS:
            raise ClientError(f"--kind must be one of {', '.join(KINDS)}", EXIT_BAD_INPUT)
        if not text.strip():
            raise ClientError("the content to analyze is blank", EXIT_BAD_INPUT)
        accepted = await api.call("POST", "/tasks", json={"content": text, "kind": kind})
        task_id = str(accepted["task_id"])
        try:
            async with asyncio.timeout(wait):
                step = await _follow_shown(api, task_id, events=events, quiet=as_json)
        except TimeoutError:
            raise ClientError(
                f"task {task_id} did not finish within {wait:.0f} s: is a worker running?",
                EXIT_UNREACHABLE,
            ) from None
        if as_json:
            result = await task_result(api, task_id)
            print(json.dumps(result), flush=True)
            return EXIT_DONE if result["status"] == "completed" else EXIT_TASK_FAILED
        if events:
            return EXIT_DONE if step == "completed" else EXIT_TASK_FAILED
        return await _show_outcome(api, task_id)

    _run(ctx, url, token, run)


async def _follow_shown(api: ApiClient, task_id: str, *, events: bool, quiet: bool) -> str:
    """Follow the task to its end: its events as JSON lines on stdout (`--events`), nothing
    (`--json` alone: stdout is the result document), or the live view on stderr."""
    if events:
        return await follow(api, task_id, lambda m: print(json.dumps(m), flush=True))
    if quiet:
        return await follow(api, task_id, lambda _: None)
    err.print(f"task [bold]{task_id}[/] submitted")
    with LiveView(err) as view:
        return await follow(api, task_id, view.show)


async def task_result(api: ApiClient, task_id: str) -> dict[str, Any]:
    """The `analyze --json` document: the task's outcome, each reason with the seqs of the
    events it rests on (`scamtrail timeline` shows them)."""
    task = await api.call("GET", f"/tasks/{task_id}")
    audit = await api.call("GET", f"/tasks/{task_id}/audit")
    verdict = audit.get("verdict") or {}
    return {
        "task_id": task_id,
        "status": task["status"],
        "verdict": verdict.get("final"),
        "agent_verdict": verdict.get("agent"),
        "reviewed": bool(verdict.get("reviewed")),
        "score": verdict.get("score"),
        "confidence": verdict.get("confidence"),
        "verdict_seq": verdict.get("seq"),
        "reasons": [
            {
                "code": reason["code"],
                "text": reason["text"],
                "weight": reason["weight"],
                "seqs": [cited["seq"] for cited in reason.get("evidence", [])],
            }
            for reason in audit.get("reasons", [])
        ],
        "error": task.get("error"),
    }


async def _show_outcome(api: ApiClient, task_id: str) -> int:
    task = await api.call("GET", f"/tasks/{task_id}")
    if task["status"] != "completed":
        why = f": {task['error']}" if task.get("error") else ""
        err.print(f"[red]task {task_id} {task['status']}{escape(why)}[/]")
        return EXIT_TASK_FAILED
    audit = await api.call("GET", f"/tasks/{task_id}/audit")
    verdict = audit.get("verdict") or {}
    final = str(verdict.get("final"))
    colour = {"scam": "red", "suspicious": "yellow", "safe": "green"}.get(final, "")
    out.print(
        f"verdict: [bold {colour}]{final}[/] (score {verdict.get('score', 0):.2f},"
        f" confidence {verdict.get('confidence', 0):.2f})  task {task_id}"
    )
    for reason in audit.get("reasons", []):
        out.print(
            f"  • {escape(reason['text'])} [dim]({reason['code']}, {reason['weight']:+.2f})[/]"
        )
    if not audit.get("reasons"):
        out.print("  [dim]no reasons recorded[/]")
    out.print(f"[dim]every step: scamtrail timeline {task_id}[/]")
    return EXIT_DONE


def timeline(
    ctx: typer.Context,
    task_id: str = typer.Argument(..., help="The task's id."),
    as_json: bool = Json,
    url: str | None = Url,
    token: str | None = Token,
) -> None:
    """Every event of a task, in order."""

    async def run(api: ApiClient) -> int:
        entries: list[dict[str, Any]] = []
        after: int | None = 0
        while after is not None:  # a page at a time, by seq
            page = await api.call("GET", f"/tasks/{task_id}/timeline", params={"after": after})
            entries += page["events"]
            after = page["next_after"]
        table = Table("seq", "time", "step", "tool", "message", title=f"task {task_id}")
        for entry in entries:
            if as_json:
                print(json.dumps(entry))
            else:
                style = "red" if entry["error"] else None
                row = (entry["recorded_at"][11:23], entry["step"], entry["tool"] or "")
                table.add_row(str(entry["seq"]), *row, escape(entry["message"]), style=style)
        if not as_json:
            print_whole(table)
        return EXIT_DONE

    _run(ctx, url, token, run)


def list_tasks(
    ctx: typer.Context,
    status: str | None = typer.Option(None, help="Only tasks in this status, e.g. completed."),
    limit: int = typer.Option(20, min=1, max=200, help="How many, newest first."),
    as_json: bool = Json,
    url: str | None = Url,
    token: str | None = Token,
) -> None:
    """The newest tasks with their status and verdict (from the api)."""

    async def run(api: ApiClient) -> int:
        params: dict[str, Any] = {"limit": limit, **({"status": status} if status else {})}
        tasks = (await api.call("GET", "/tasks", params=params))["tasks"]
        table = Table(Column("task", no_wrap=True), "kind", "status", "verdict", "submitted")
        for task in tasks:
            if as_json:
                print(json.dumps(task))
            else:
                row = (task["kind"], task["status"], task["final_verdict"] or "")
                submitted = task["submitted_at"][:19].replace("T", " ")
                table.add_row(task["task_id"], *row, submitted)
        if not as_json and tasks:
            print_whole(table)
        elif not as_json:
            out.print("[dim]no tasks yet[/]")
        return EXIT_DONE

    _run(ctx, url, token, run)


def watch(
    ctx: typer.Context,
    as_json: bool = Json,
    patience: float = typer.Option(
        30.0, min=0, help="Seconds to keep reconnecting to an api that went away (a restart)."
    ),
    url: str | None = Url,
    token: str | None = Token,
) -> None:
    """Follow every task of the token's tenant live, one line per event, until Ctrl-C
    (exit 130; an analyst's token). An api that goes away is waited for (--patience), then
    the watch ends with exit 3."""

    def show(message: dict[str, Any]) -> None:
        print(json.dumps(message) if as_json else event_line(message), flush=True)

    def notify(text: str) -> None:
        err.print(f"[dim]{escape(text)}[/]", soft_wrap=True)

    async def run(api: ApiClient) -> int:
        await watch_tenant(api, show, notify, patience=patience)
        return EXIT_DONE

    _run(ctx, url, token, run)


def print_whole(table: Table) -> None:
    """The table at its natural width, past the terminal's (or a pipe's 80 columns) if need be:
    a cut task id is of no use to the next command."""
    needed = Measurement.get(out, out.options.update(width=10_000), table).maximum
    if needed <= out.width:
        out.print(table)
    else:
        Console(file=out.file, width=needed, soft_wrap=True, force_terminal=out.is_terminal).print(
            table
        )


def _run(
    ctx: typer.Context,
    url: str | None,
    token: str | None,
    body: Callable[[ApiClient], Awaitable[int]],
) -> None:
    """Run a command against the api; every failure is one line on stderr and an exit code."""
    connection = ctx.obj if isinstance(ctx.obj, Connection) else Connection()

    # `scamtrail` logs at INFO for the servers; a client's output is its own lines only.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def main() -> int:
        async with ApiClient(url or default_url(), token, connection.transport) as api:
            return await body(api)

    try:
        code = asyncio.run(main())
    except ClientError as error:
        err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)  # one line, unwrapped
        code = error.code
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)
