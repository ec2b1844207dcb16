"""`scamtrail migrate` and `scamtrail seed`: the database's schema and its seed data."""

from __future__ import annotations

import asyncio
import time

import typer
from rich.console import Console

from api.cli.stack import stack_settings
from api.errors import EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_UNREACHABLE
from infrastructure.database import ensure_database, migrate_sync
from infrastructure.repositories import open_repositories
from infrastructure.seed import SeedCounts
from infrastructure.settings import Settings

console = Console(stderr=True)


def where(url: str) -> str:
    return url.split("@")[-1]  # never print credentials


def _first_line(error: object) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def migrate() -> None:
    """Create the database if needed and apply every migration."""
    migrate_database(stack_settings("database_url"))


def migrate_database(settings: Settings) -> None:
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    at = where(settings.database_url)
    try:
        created = asyncio.run(ensure_database(settings.database_url))
        migrate_sync(settings.database_url)
    except OSError as error:
        console.print(f"[red]PostgreSQL at {at} is unreachable:[/] {error}")
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except (asyncpg.PostgresError, DBAPIError) as error:
        # DBAPIError: alembic's run, through SQLAlchemy; the server's own error is underneath.
        cause = error.orig if isinstance(error, DBAPIError) else error
        sqlstate = str(getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", ""))
        if sqlstate.startswith("28"):  # class 28: invalid authorization (role, password)
            console.print(
                f"[red]PostgreSQL at {at} refused the role:[/] {_first_line(cause)}:"
                f" check the user and password in SCAMTRAIL_DATABASE_URL"
            )
            raise typer.Exit(EXIT_BAD_INPUT) from None
        console.print(f"[red]PostgreSQL at {at} refused to migrate:[/] {_first_line(cause)}")
        raise typer.Exit(EXIT_REFUSED) from None
    verb = "created and migrated" if created else "migrated"
    console.print(f"[green]database {at} {verb}[/]")


def seed() -> None:
    """Migrate if needed, then load the seed scam indicators and reports (safe to repeat)."""
    seed_database(stack_settings("database_url"))


def seed_database(settings: Settings) -> None:
    migrate_database(settings)

    async def load() -> SeedCounts:
        async with open_repositories(settings, pool_size=1) as repositories:
            return await repositories.load_seed()

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
