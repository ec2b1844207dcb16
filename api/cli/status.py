"""`scamtrail status`: what runs where, as the commands in this directory would reach it.

One line each for the `scamtrail up` running here, the api (does it answer /readyz), PostgreSQL
and Redis (their URLs with any password hidden, where each URL comes from, whether it answers).
Exit 0 when everything answers, 3 otherwise.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, replace

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from api.cli.http import default_url
from api.cli.stack import ENV, ROOT, Stack, hide_password, running
from api.errors import EXIT_UNREACHABLE
from infrastructure.database import database_answers
from infrastructure.redis_client import redis_answers
from infrastructure.settings import Settings

PROBE_TIMEOUT_S = 3.0
out = Console(soft_wrap=True)


@dataclass(frozen=True)
class Place:
    """One service: its URL, where the URL came from, and its answer (None: it answered)."""

    name: str
    url: str
    source: str
    problem: str | None

    def line(self) -> str:
        answer = "[green]answers[/]" if self.problem is None else f"[red]{escape(self.problem)}[/]"
        where = escape(hide_password(self.url))
        return f"{self.name:<9} {where} [dim]({escape(self.source)})[/] {answer}"


def status(
    url: str | None = typer.Option(None, "--url", help="The api (default: as `analyze` finds it)."),
) -> None:
    """Say what runs where: the `scamtrail up` of this directory, the api, PostgreSQL, Redis."""
    stack = running()
    if stack is not None:
        out.print(f"up        running here (pid {stack.pid}), data in {ROOT.resolve()}")
    else:
        out.print("up        [dim]no `scamtrail up` is running in this directory[/]")
    places = [
        Place("api", url or default_url(), _api_source(url, stack), None),
        Place("database", *_url(stack, "database_url"), None),
        Place("redis", *_url(stack, "redis_url"), None),
    ]
    places = asyncio.run(_probe_all(places))
    for place in places:
        out.print(place.line())
    if any(place.problem for place in places):
        raise typer.Exit(EXIT_UNREACHABLE)


def _url(stack: Stack | None, name: str) -> tuple[str, str]:
    """A service's URL and where it comes from: its variable, the `up` here, or the default."""
    if os.environ.get(ENV[name]):
        return str(getattr(Settings(), name)), ENV[name]
    if stack is not None and name in stack.urls:
        return stack.urls[name], "embedded, started by `scamtrail up`"
    return str(Settings.model_fields[name].default), "default: nothing set, no `up` here"


def _api_source(url: str | None, stack: Stack | None) -> str:
    if url:
        return "--url"
    if os.environ.get("SCAMTRAIL_PORT"):
        return "SCAMTRAIL_PORT"
    return "started by `scamtrail up`" if stack else "default: no `up` here"


async def _probe_all(places: list[Place]) -> list[Place]:
    api, database, redis = places
    answers = await asyncio.gather(_api(api.url), _database(database.url), _redis(redis.url))
    return [replace(place, problem=answer) for place, answer in zip(places, answers, strict=True)]


async def _api(url: str) -> str | None:
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as http:
            response = await http.get(f"{url.rstrip('/')}/readyz")
    except httpx.HTTPError as error:
        return f"does not answer ({type(error).__name__})"
    if response.status_code == 200:
        return None
    try:
        reasons = "; ".join(response.json().get("reasons") or []) or "no reason given"
    except (ValueError, AttributeError):
        reasons = f"HTTP {response.status_code}"
    return f"answers, but is not ready: {reasons}"


async def _database(url: str) -> str | None:
    why = await database_answers(url, PROBE_TIMEOUT_S)
    return None if why is None else f"does not answer ({why})"


async def _redis(url: str) -> str | None:
    why = await redis_answers(url, PROBE_TIMEOUT_S)
    return None if why is None else f"does not answer ({why})"
