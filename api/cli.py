"""The `scamtrail` command. It grows with the issues (DESIGN.md, Processes)."""

from __future__ import annotations

import asyncio
import logging

import typer
from rich.console import Console

from infrastructure.database import ensure_database, migrate_sync
from infrastructure.settings import load_settings

app = typer.Typer(help="scamtrail: an event-sourced scam-analysis agent.", no_args_is_help=True)
console = Console(stderr=True)


def _where(url: str) -> str:
    return url.split("@")[-1]  # never print credentials


@app.command()
def migrate() -> None:
    """Create the database if needed and apply every migration."""
    settings = load_settings()
    try:
        created = asyncio.run(ensure_database(settings.database_url))
        migrate_sync(settings.database_url)
    except OSError as error:
        console.print(
            f"[red]PostgreSQL at {_where(settings.database_url)} is unreachable:[/] {error}"
        )
        raise typer.Exit(3) from None
    verb = "created and migrated" if created else "migrated"
    console.print(f"[green]database {_where(settings.database_url)} {verb}[/]")


@app.command()
def up() -> None:
    """Start the system. For now: migrate the database and say what comes next."""
    migrate()
    console.print(
        "The event log is ready. The api, worker and relay processes arrive with the next "
        "issues; until then, `make test` shows what works."
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app()
