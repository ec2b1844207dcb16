"""Admin commands: `scamtrail projections rebuild`, `scamtrail tasks prune`."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from infrastructure.database import create_engine
from infrastructure.indicator_projection import IndicatorRebuild, rebuild_indicators
from infrastructure.projection_rebuild import (
    RebuildReport,
    prune_finished_tasks,
    rebuild_projections,
)
from infrastructure.settings import load_settings

projections = typer.Typer(help="Projections of the event log.", no_args_is_help=True)
tasks = typer.Typer(help="Tasks: list and retention.", no_args_is_help=True)
console = Console(stderr=True)

_AGE = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_LONGEST = timedelta(days=100 * 365)


def age_from_text(text: str) -> timedelta:
    """'90d', '12h' or '30m'; ValueError for anything else or longer than _LONGEST."""
    match = _AGE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not an age like 90d, 12h or 30m")
    try:
        age = timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:  # timedelta ends at 999999999 days
        age = _LONGEST + _LONGEST
    if age > _LONGEST:  # "now - age" must stay a date, for Python and for PostgreSQL
        raise ValueError(f"{text!r} is longer than {_LONGEST.days}d")
    return age


def parse_age(text: str) -> timedelta:
    """age_from_text for a command-line option: a bad age is a usage error (exit 2)."""
    try:
        return age_from_text(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


@projections.command("rebuild")
def rebuild(batch: int = typer.Option(500, min=1, max=10_000, help="Tasks per batch.")) -> None:
    """Recompute every task row, and the known indicators, from the log; report how many task
    rows changed."""
    settings = load_settings()

    async def run(progress: Progress) -> tuple[RebuildReport, IndicatorRebuild]:
        engine = create_engine(settings, pool_size=2)
        bar = progress.add_task("rebuilding", total=None)
        try:
            rebuilt = await rebuild_projections(
                engine, batch=batch, progress=lambda n: progress.advance(bar, n)
            )
            return rebuilt, await rebuild_indicators(engine)
        finally:
            await engine.dispose()

    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} tasks"))
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        report, indicators = asyncio.run(run(progress))
    seconds = time.perf_counter() - started
    console.print(
        f"[green]rebuilt {report.tasks} tasks from {report.events} events in {seconds:.1f} s:"
        f" {report.changed} rows changed, {report.removed} orphan rows removed; {indicators.rows}"
        f" indicators from {indicators.events} events of {indicators.streams} indicator"
        " streams[/]"
    )


@tasks.command("prune")
def prune(
    older_than: str = typer.Option(..., help="Age of finished tasks to delete, e.g. 90d."),
) -> None:
    """Delete whole streams of tasks that finished longer ago than --older-than."""
    age = parse_age(older_than)
    settings = load_settings()

    async def run() -> int:
        engine = create_engine(settings, pool_size=1)
        try:
            return await prune_finished_tasks(engine, age)
        finally:
            await engine.dispose()

    console.print(f"[green]pruned {asyncio.run(run())} tasks finished before now - {age}[/]")
