"""Admin commands: `scamtrail projections rebuild`, `scamtrail tasks prune`. They act as the
operator, on every tenant, through the same use cases as the api's admin routes."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from api.cli.operator import operator
from api.cli.stack import stack_settings

if TYPE_CHECKING:
    from infrastructure.indicator_projection import IndicatorRebuild
    from infrastructure.projection_rebuild import RebuildReport

# The use cases and repositories are imported by the commands that use them: every `scamtrail`
# command loads this module, and the relay and the worker should not wait on the whole
# application's imports to start.

projections = typer.Typer(help="Projections of the event log.", no_args_is_help=True)
tasks = typer.Typer(help="Tasks: list, watch live, retention.", no_args_is_help=True)
console = Console(stderr=True)


def parse_age(text: str) -> timedelta:
    """age_from_text for a command-line option: a bad age is a usage error (exit 2)."""
    from api.application.admin import age_from_text

    try:
        return age_from_text(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


@projections.command("rebuild")
def rebuild(batch: int = typer.Option(500, min=1, max=10_000, help="Tasks per batch.")) -> None:
    """Recompute every task row and timeline entry, and the known indicators, from the log;
    report how many task rows and entries changed."""
    from api.application.admin import Admin
    from infrastructure.repositories import open_repositories

    settings = stack_settings("database_url")

    async def run(progress: Progress) -> tuple[RebuildReport, IndicatorRebuild]:
        bar = progress.add_task("rebuilding", total=None)
        async with open_repositories(settings, pool_size=2) as repositories:
            return await Admin(repositories.projections).rebuild_all(
                operator(), batch=batch, progress=lambda n: progress.advance(bar, n)
            )

    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} tasks"))
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        report, indicators = asyncio.run(run(progress))
    seconds = time.perf_counter() - started
    console.print(
        f"[green]rebuilt {report.tasks} tasks from {report.events} events in {seconds:.1f} s:"
        f" {report.changed} rows changed, {report.removed} orphan rows removed,"
        f" {report.entries} timeline entries written; {indicators.rows}"
        f" indicators from {indicators.events} events of {indicators.streams} indicator"
        " streams[/]"
    )


@tasks.command("prune")
def prune(
    older_than: str = typer.Option(..., help="Age of finished tasks to delete, e.g. 90d."),
) -> None:
    """Delete whole streams of tasks that finished longer ago than --older-than."""
    from api.application.admin import Admin
    from infrastructure.repositories import open_repositories

    age = parse_age(older_than)
    settings = stack_settings("database_url")

    async def run() -> int:
        async with open_repositories(settings, pool_size=1) as repositories:
            return await Admin(repositories.projections).prune(operator(), age)

    console.print(f"[green]pruned {asyncio.run(run())} tasks finished before now - {age}[/]")
