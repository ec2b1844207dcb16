"""`scamtrail up`: the whole system on one machine, for development."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

import httpx
import typer
from rich.console import Console

from api import dev_auth
from api.cli import auth, database, stack
from api.errors import EXIT_BAD_INPUT
from infrastructure.settings import Settings, load_settings

console = Console(stderr=True)
log = logging.getLogger(__name__)
EXIT_ALREADY_RUNNING = 5  # another `up` owns this directory's embedded services
ANSWER_WITHIN_S = 60.0  # the api answers in a few seconds; past this, `up` says it is waiting


def _note(text: str) -> None:
    console.print(f"[dim]{text}[/]")


def up(
    port: int | None = typer.Option(None, help="Port of the api (default: SCAMTRAIL_PORT)."),
    host: str = typer.Option("127.0.0.1", help="Interface the api listens on."),
) -> None:
    """Start the system: migrate, load the seed data into an empty database, then run the api,
    the relay and a worker, each as a child process of this one (api/up_processes.py).

    Without SCAMTRAIL_DATABASE_URL / SCAMTRAIL_REDIS_URL it starts an embedded PostgreSQL /
    Redis first, their data in ./.scamtrail/ (a restart keeps every task)."""
    from infrastructure.embedded import AlreadyRunning, embedded_services

    overrides: dict[str, object] = {"port": port} if port else {}
    check_port_free(host, load_settings(**overrides).port)
    with contextlib.ExitStack() as services:
        try:
            urls = services.enter_context(embedded_services(stack.ROOT, say=_note))
        except AlreadyRunning as error:
            console.print(f"[red]{error}[/]")
            raise typer.Exit(EXIT_ALREADY_RUNNING) from None
        settings = load_settings(**overrides, **urls)
        if urls:  # the commands of a second terminal find these services (api/cli/stack.py)
            here = stack.Stack(os.getpid(), stack.client_url(host, settings.port), urls)
            services.enter_context(stack.recorded(stack.ROOT, here))
        database.seed_database(settings)
        _note("starting the api, the relay and a worker")
        asyncio.run(whole_system(settings, host))  # inside: the embedded services outlive it


def announce(settings: Settings, host: str) -> None:
    """The banner: where everything is, and a token to try it with."""
    console.print(
        f"[green]scamtrail is up:[/] http://{host}:{settings.port}/ (console),"
        f" http://{host}:{settings.port}/docs (api),"
        f" ws://{host}:{settings.port}/ws/agent-progress/<task_id> (progress). Ctrl-C stops it."
    )
    if dev_auth.up_may_print_token(settings):
        auth.print_dev_token(settings)
    else:
        console.print(dev_auth.MINT_HINT, soft_wrap=True, markup=False, highlight=False)


async def announce_when_answering(settings: Settings, host: str) -> None:
    """The banner once the api answers /healthz, so that a request made right after it is
    served, not refused. If it takes past ANSWER_WITHIN_S, say so, and keep waiting."""
    local = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    url = f"http://{'[' + local + ']' if ':' in local else local}:{settings.port}/healthz"
    loop = asyncio.get_running_loop()
    warn_at = loop.time() + ANSWER_WITHIN_S
    async with httpx.AsyncClient(timeout=1) as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    break
            if warn_at and loop.time() > warn_at:
                console.print(
                    f"[yellow]the api has not answered {url} within {ANSWER_WITHIN_S:.0f} s;"
                    " still waiting (its log above says why)[/]"
                )
                warn_at = 0
            await asyncio.sleep(0.1)
    announce(settings, host)


def check_port_free(host: str, port: int) -> None:
    """Refuse, in one line and before anything starts, a port another server listens on: the
    api would otherwise fail only after `up` said it was up and printed a token."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds it
        try:
            probe.bind((host, port))
        except OSError as error:
            other = port + 1 if port < 65535 else 8001
            console.print(
                f"[red]port {port} on {host} is taken ({error.strerror}): pick another with"
                f" `scamtrail up --port {other}` or SCAMTRAIL_PORT={other}[/]",
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_BAD_INPUT) from None


async def whole_system(settings: Settings, host: str) -> None:
    """api + relay + one worker, each its own process, stopped together by Ctrl-C. One that
    ends by itself stops the others, and `up` with them (exit 1)."""
    from api.up_processes import part_commands, part_environment, supervise

    banner = asyncio.create_task(announce_when_answering(settings, host))
    try:
        ended = await supervise(part_commands(host, settings.port), part_environment(settings))
    finally:
        banner.cancel()
    if ended is not None:
        how = f"signal {-ended.code}" if ended.code < 0 else f"exit code {ended.code}"
        log.error("the %s ended (%s) while scamtrail was up: stopped the rest", ended.name, how)
        console.print(f"[red]the {ended.name} ended unexpectedly ({how}): scamtrail stopped[/]")
        raise typer.Exit(1)
