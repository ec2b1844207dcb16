"""The `scamtrail` command. It grows with the issues (DESIGN.md, Processes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import typer
import uvicorn
from rich.console import Console

from api import cli_admin, cli_auth, cli_client, cli_indicators, dev_auth
from api.cli_http import EXIT_BAD_INPUT, EXIT_UNREACHABLE
from api.http_guard import ConnectionGuard, connection_limit, guarded_http, raise_fd_limit
from api.log_flood import install_repeat_limiter
from infrastructure.database import ensure_database, migrate_sync
from infrastructure.settings import Settings, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.limits import SocketCounter

app = typer.Typer(help="scamtrail: an event-sourced scam-analysis agent.", no_args_is_help=True)
app.add_typer(cli_admin.projections, name="projections")
app.add_typer(cli_admin.tasks, name="tasks")
app.add_typer(cli_indicators.indicators, name="indicators")
cli_client.register(app)  # analyze, timeline, tasks list
app.command(name="token")(cli_auth.token)
console = Console(stderr=True)
log = logging.getLogger(__name__)
EXIT_REFUSED = 1  # the server answered, and said no
EXIT_ALREADY_RUNNING = 5  # `up`: another `up` owns this directory's embedded services


def _note(text: str) -> None:
    console.print(f"[dim]{text}[/]")


def _where(url: str) -> str:
    return url.split("@")[-1]  # never print credentials


def _first_line(error: object) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


@app.command()
def migrate() -> None:
    """Create the database if needed and apply every migration."""
    _migrate(load_settings())


def _migrate(settings: Settings) -> None:
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    where = _where(settings.database_url)
    try:
        created = asyncio.run(ensure_database(settings.database_url))
        migrate_sync(settings.database_url)
    except OSError as error:
        console.print(f"[red]PostgreSQL at {where} is unreachable:[/] {error}")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except (asyncpg.PostgresError, DBAPIError) as error:
        # DBAPIError: alembic's run, through SQLAlchemy; the server's own error is underneath.
        cause = error.orig if isinstance(error, DBAPIError) else error
        sqlstate = str(getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", ""))
        if sqlstate.startswith("28"):  # class 28: invalid authorization (role, password)
            console.print(
                f"[red]PostgreSQL at {where} refused the role:[/] {_first_line(cause)}:"
                f" check the user and password in SCAMTRAIL_DATABASE_URL"
            )
            raise typer.Exit(EXIT_BAD_INPUT) from None
        console.print(f"[red]PostgreSQL at {where} refused to migrate:[/] {_first_line(cause)}")
        raise typer.Exit(EXIT_REFUSED) from None
    verb = "created and migrated" if created else "migrated"
    console.print(f"[green]database {_where(settings.database_url)} {verb}[/]")


@app.command()
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
    with contextlib.ExitStack() as services:
        try:
            urls = services.enter_context(embedded_services(Path(".scamtrail"), say=_note))
        except AlreadyRunning as error:
            console.print(f"[red]{error}[/]")
            raise typer.Exit(EXIT_ALREADY_RUNNING) from None
        settings = load_settings(**overrides, **urls)
        _seed(settings)
        console.print(
            f"[green]scamtrail is up:[/] http://{host}:{settings.port}/ (console),"
            f" http://{host}:{settings.port}/docs (api),"
            f" ws://{host}:{settings.port}/ws/agent-progress/<task_id> (progress). Ctrl-C stops it."
        )
        if dev_auth.up_may_print_token(settings):
            cli_auth.print_dev_token(settings)
        else:
            console.print(dev_auth.MINT_HINT, soft_wrap=True, markup=False, highlight=False)
        asyncio.run(_whole_system(settings, host))  # inside: the embedded services outlive it


@app.command()
def api(
    port: int | None = typer.Option(None, help="Port (default: SCAMTRAIL_PORT, 8000)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
) -> None:
    """Run the api (HTTP, WebSocket, SSE, /metrics) under uvicorn."""
    settings = load_settings(**({"port": port} if port else {}))
    _DrainingServer(settings, host).run()


@app.command()
def relay() -> None:
    """Run the relay: publish the log to Redis Pub/Sub. Start several; one is active."""
    from workers.relay_main import run_relay

    asyncio.run(run_relay(load_settings()))


def _uvicorn_config(app: FastAPI, settings: Settings, host: str) -> uvicorn.Config:
    guard = ConnectionGuard(
        max_connections=connection_limit(settings.max_connections, raise_fd_limit()),
        header_timeout_s=settings.header_timeout_s,
        max_header_bytes=settings.max_header_bytes,
    )
    return uvicorn.Config(
        app,
        host=host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        http=guarded_http(guard),  # httptools, with the bounds uvicorn lacks (api/http_guard.py)
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_max_size=settings.ws_max_message_bytes,  # inbound frames are ignored: keep them small
        backlog=4096,  # thousands of progress sockets may connect at once
    )


class _DrainingServer(uvicorn.Server):
    """uvicorn's shutdown closes every open WebSocket with 1012 ("service restart"), and waits
    for streaming responses (SSE) to end by themselves. A replica going away should instead say
    1001 ("going away"), so that clients reconnect at once — to another replica behind the load
    balancer — and resume with `after=<seq>`. So before uvicorn's own shutdown: stop listening,
    ask every delivery loop to close its client with 1001 (`ProgressHub.drain`), and give the
    clients a moment to answer the close before uvicorn drops what is left."""

    DRAIN_S = 5.0  # bounded: a client that never answers its close frame must not hold us

    def __init__(self, settings: Settings, host: str) -> None:
        from api.app import create_app

        # These settings, not a fresh load from the environment: under `up` they carry the
        # embedded PostgreSQL's and Redis's URLs, which no environment variable names.
        self.app = create_app(settings)
        super().__init__(_uvicorn_config(self.app, settings, host))
        install_repeat_limiter(settings.log_repeat_interval_s)  # uvicorn's handlers exist now

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        services = getattr(self.app.state, "services", None)  # None if the lifespan failed
        if services is not None and not self.force_exit:
            for server in self.servers:
                server.close()  # no new sockets while the open ones drain
            services.hub.drain()
            counter: SocketCounter = self.app.state.sockets
            for _ in range(int(self.DRAIN_S / 0.05)):  # polled: the count has no event
                if not counter.total or self.force_exit:
                    break
                await asyncio.sleep(0.05)
            if counter.total:
                log.warning("%d progress socket(s) still open after draining", counter.total)
        await super().shutdown(sockets)


async def _whole_system(settings: Settings, host: str) -> None:
    """api + relay + one worker, each its own process, stopped together by Ctrl-C. One that
    ends by itself stops the others, and `up` with them (exit 1)."""
    from api.up_processes import part_commands, part_environment, supervise

    ended = await supervise(part_commands(host, settings.port), part_environment(settings))
    if ended is not None:
        how = f"signal {-ended.code}" if ended.code < 0 else f"exit code {ended.code}"
        log.error("the %s ended (%s) while scamtrail was up: stopped the rest", ended.name, how)
        console.print(f"[red]the {ended.name} ended unexpectedly ({how}): scamtrail stopped[/]")
        raise typer.Exit(1)


@app.command()
def worker(
    burst: bool = typer.Option(False, help="Exit once the queue is empty (tests, one-off runs)."),
) -> None:
    """Run an arq worker: analyses, and the sweep that re-enqueues lost tasks."""
    from workers.jobs import run_worker

    run_worker(load_settings(), burst=burst)


@app.command()
def seed() -> None:
    """Migrate if needed, then load the seed scam indicators and reports (safe to repeat)."""
    _seed(load_settings())


def _seed(settings: Settings) -> None:
    import time

    from infrastructure.database import create_engine
    from infrastructure.seed import SeedCounts, load_seed

    _migrate(settings)

    async def load() -> SeedCounts:
        engine = create_engine(settings, pool_size=1)
        try:
            return await load_seed(engine)
        finally:
            await engine.dispose()

    started = time.perf_counter()
    counts = asyncio.run(load())
    seconds = time.perf_counter() - started
    totals = counts.totals
    console.print(
        f"[green]seeded in {seconds:.2f} s:[/] {counts.indicators_added} indicators and "
        f"{counts.reports_added} reports added; the database now holds {totals['indicators']} "
        f"indicators ({', '.join(f'{totals[k]} {k}' for k in ('phone', 'domain', 'email', 'url'))})"
        f" and {totals['reports']} reports"
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app()


if __name__ == "__main__":
    main()
