"""The `scamtrail` command: one module per family of commands.

- `processes`: `api`, `relay`, `worker` (one process each); `up` (all of them, for development)
- `database`: `migrate`, `seed`
- `admin`: `projections rebuild`, `tasks prune` (the operator's use cases, in process)
- `indicators`: `indicators import` (a threat feed, in process)
- `client`: `analyze`, `timeline`, `tasks list`, `tasks watch` (a client of a running api,
  over `http` and the progress sockets followed by `live`)
- `status`: `status` (what runs where; `stack` finds the `scamtrail up` of this directory)
- `auth`: `token` (a developer token)
- `mcp`: `mcp` (an MCP server over stdio, for desktop assistants; api/mcp)

Exit codes are the refusals' (api/errors.py) plus 4, a task that failed, and 5, `up` already
running here.
"""

from __future__ import annotations

import logging

import typer

from api.cli import admin, auth, client, database, indicators, mcp, processes, status, up

app = typer.Typer(help="scamtrail: an event-sourced scam-analysis agent.", no_args_is_help=True)
app.add_typer(admin.projections, name="projections")
app.add_typer(admin.tasks, name="tasks")
app.add_typer(indicators.indicators, name="indicators")
app.command(name="analyze")(client.analyze)
app.command(name="timeline")(client.timeline)
admin.tasks.command("list")(client.list_tasks)
admin.tasks.command("watch")(client.watch)
app.command(name="status")(status.status)
app.command(name="token")(auth.token)
app.command(name="migrate")(database.migrate)
app.command(name="up")(up.up)
app.command(name="api")(processes.api)
app.command(name="relay")(processes.relay)
app.command(name="worker")(processes.worker)
app.command(name="seed")(database.seed)
app.command(name="mcp")(mcp.mcp)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app()
