"""`scamtrail indicators import`: load a threat feed into the known scam indicators.

Errors end the command with one line and the exit codes of the other commands: 2 for what the
user gave (arguments, the file), 3 for a PostgreSQL that is not there, 1 for one that refused.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from api.application.admin import age_from_text
from api.application.indicators import Indicators
from api.cli.operator import operator
from api.cli.stack import stack_settings
from api.errors import EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_UNREACHABLE
from infrastructure.feeds import (
    CATEGORY,
    FEED_FORMATS,
    SOURCE,
    FeedError,
    ImportCounts,
    ParsedFeed,
    read_feed,
)
from infrastructure.repositories import open_repositories

indicators = typer.Typer(help="Known scam indicators: threat-feed imports.", no_args_is_help=True)
console = Console(stderr=True)
UNDEFINED_COLUMN = "42703"  # the schema predates migration 0007


def _fail(message: str, code: int) -> typer.Exit:
    console.print(f"[red]{escape(message)}[/]", soft_wrap=True)
    return typer.Exit(code)


@indicators.command("import")
def import_indicators(
    file: str = typer.Argument(..., help="The feed file.", show_default=False),
    source: str = typer.Option(..., help="Name of the feed, stored on every indicator."),
    feed_format: str = typer.Option(
        ..., "--format", help=f"One of {', '.join(FEED_FORMATS)}.", show_default=False
    ),
    expire_after: str | None = typer.Option(
        None, help="Stop matching this long after the import unless re-imported, e.g. 30d."
    ),
    category: str = typer.Option("phishing", help="Category of entries that carry none."),
) -> None:
    """Import a threat feed (idempotent): bad lines are skipped and counted; importing it again
    refreshes its indicators' import time and expiry."""
    if feed_format not in FEED_FORMATS:
        raise _fail(f"--format must be one of {', '.join(FEED_FORMATS)}", EXIT_BAD_INPUT)
    if not SOURCE.fullmatch(source):
        raise _fail("--source must be 1-100 letters, digits or ._:/@+-", EXIT_BAD_INPUT)
    if not CATEGORY.fullmatch(category):
        raise _fail("--category must be like phishing or toll_road", EXIT_BAD_INPUT)
    age: timedelta | None = None
    if expire_after is not None:
        try:
            age = age_from_text(expire_after)
        except ValueError as error:
            raise _fail(f"--expire-after: {error}", EXIT_BAD_INPUT) from None

    started = time.perf_counter()
    try:
        feed = read_feed(Path(file), feed_format, category=category)
    except FeedError as error:
        raise _fail(str(error), EXIT_BAD_INPUT) from None
    counts = _store(feed, source, age)
    unit = "item" if feed_format == "json" else "line"
    for bad in feed.first_bad:
        console.print(f"[dim]skipped {unit} {bad.line}: {escape(bad.reason)}[/]", soft_wrap=True)
    expiry = f", expiring {counts.expires_at:%Y-%m-%d %H:%M} UTC" if counts.expires_at else ""
    console.print(
        f"[green]imported {escape(Path(file).name)} as {escape(source)} in"
        f" {time.perf_counter() - started:.2f} s:[/] {counts.added} added,"
        f" {counts.refreshed} refreshed, {counts.kept} held by other sources,"
        f" {feed.duplicates} duplicates, {feed.bad} bad lines skipped{expiry}",
        soft_wrap=True,  # one line, whatever the terminal's width: scripts grep it
    )


def _store(feed: ParsedFeed, source: str, age: timedelta | None) -> ImportCounts:
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    settings = stack_settings("database_url")
    where = settings.database_url.split("@")[-1]  # never print credentials

    async def run() -> ImportCounts:
        async with open_repositories(settings, pool_size=1) as repositories:
            return await Indicators(repositories, rates=None).import_feed(
                operator(), feed, source=source, expire_after=age
            )

    try:
        return asyncio.run(run())
    except OSError as error:
        raise _fail(f"PostgreSQL at {where} is unreachable: {error}", EXIT_UNREACHABLE) from None
    except (asyncpg.PostgresError, DBAPIError) as error:
        cause = error.orig if isinstance(error, DBAPIError) else error
        sqlstate = str(getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", ""))
        if sqlstate == UNDEFINED_COLUMN:
            message = f"the database at {where} predates feeds: run `scamtrail migrate` first"
        else:
            text = str(cause).strip().splitlines() or [type(cause).__name__]
            message = f"PostgreSQL at {where} refused the import: {text[0]}"
        raise _fail(message, EXIT_REFUSED) from None
