"""`scamtrail mcp`: scamtrail as an MCP server over stdio, for a desktop assistant.

The process acts for the user `SCAMTRAIL_TOKEN` names, verified as the api verifies bearer
tokens; without one, or with one the api would refuse, it says so on stderr and exits 2. It
talks to PostgreSQL and Redis itself (the settings, or the `up` running here), like the api.
Nothing but the protocol goes to stdout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import typer
from rich.console import Console
from rich.markup import escape

from api.cli.stack import stack_settings
from api.errors import EXIT_BAD_INPUT

if TYPE_CHECKING:
    from api.application.caller import Caller
    from infrastructure.settings import Settings

# The MCP SDK and the services are imported when the command runs: every `scamtrail` command
# loads this module, and most never serve MCP.

console = Console(stderr=True)


def mcp() -> None:
    """Serve MCP over stdio (token: SCAMTRAIL_TOKEN), for desktop assistants."""
    from api.application.caller import NotAuthenticated
    from api.mcp.auth import environment_caller

    settings = stack_settings("database_url", "redis_url")
    try:
        caller = environment_caller(settings)
    except NotAuthenticated as error:
        console.print(f"[red]scamtrail mcp: {escape(str(error))}[/]", soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    anyio.run(_serve, settings, caller)


async def _serve(settings: Settings, caller: Caller) -> None:
    from api.mcp.auth import fixed_caller
    from api.mcp.server import build_server
    from api.metrics import StreamMetrics
    from api.services import open_services

    async with open_services(settings) as services:
        server = build_server(services, StreamMetrics(), fixed_caller(caller), live=False)
        await server.run_stdio_async()
