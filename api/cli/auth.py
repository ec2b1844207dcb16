"""`scamtrail token`: a developer token, signed with the configured or the developer secret."""

from __future__ import annotations

import typer
from rich.console import Console

from api import dev_auth
from api.application.caller import ROLES
from api.cli.admin import parse_age
from api.dev_auth import CannotSign, dev_token
from api.errors import EXIT_BAD_INPUT
from infrastructure.settings import Settings, load_settings

console = Console(stderr=True)


def token(
    role: list[str] = typer.Option(  # noqa: B008 (typer reads the default)
        ["submitter"], help="A role: submitter, analyst or admin (repeat for several)."
    ),
    tenant: str = typer.Option("demo", help="The tenant the token acts for."),
    sub: str = typer.Option("dev", help="The user (`sub` claim)."),
    ttl: str = typer.Option("12h", help="Lifetime, e.g. 12h, 30m, 7d."),
) -> None:
    """Print a bearer token (stdout only, so `$(scamtrail token)` works)."""
    unknown = set(role) - ROLES
    if unknown:
        raise typer.BadParameter(f"unknown roles: {', '.join(sorted(unknown))}")
    settings = load_settings()
    if not dev_auth.may_sign_here(settings):
        console.print(f"[red]{dev_auth.NO_DEV_SECRET}[/]", soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    lifetime = parse_age(ttl)
    if lifetime.total_seconds() > settings.max_token_lifetime_s:
        most = settings.max_token_lifetime_s
        console.print(
            f"[red]--ttl {ttl} is longer than the api accepts (SCAMTRAIL_MAX_TOKEN_LIFETIME_S,"
            f" {most:g} s); it would refuse the token[/]"
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        print(dev_token(settings, role, tenant, sub, lifetime))
    except CannotSign as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(EXIT_BAD_INPUT) from None


def print_dev_token(settings: Settings) -> None:
    """For `scamtrail up`: a 12 h analyst+submitter token for tenant `demo`, on the console."""
    if settings.auth_disabled:
        console.print("[yellow]auth is disabled (SCAMTRAIL_AUTH_DISABLED): no token needed[/]")
        return
    try:
        value = dev_token(settings, ["analyst", "submitter"], "demo", "dev")
    except CannotSign as error:
        console.print(f"[yellow]no developer token: {error}[/]")
        return
    console.print("developer token (analyst+submitter, tenant demo, 12 h):")
    console.print(value, soft_wrap=True, markup=False, highlight=False)
