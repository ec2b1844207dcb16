"""Who calls an MCP tool: a `Caller` from the api's own bearer tokens (api/auth.py), with the
same roles and tenants as the REST api.

Over stdio the token comes from `SCAMTRAIL_TOKEN`, verified once at start; over HTTP every
request carries its own (`Authorization: Bearer`), verified by `BearerGate` before the SDK sees
the request, which then holds the caller in the request's ASGI scope. Either way a tool checks
the token's expiry at each call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from starlette.types import ASGIApp, Receive, Scope, Send

from api import auth as api_auth
from api.application.caller import Caller, NotAuthenticated
from api.caller import caller_for
from api.errors import answer
from infrastructure.settings import Settings

TOKEN_VARIABLE = "SCAMTRAIL_TOKEN"
CALLER_KEY = "scamtrail.caller"  # where BearerGate leaves the caller in the ASGI scope

CallerOf = Callable[[Context[Any, Any]], Caller]  # the caller of one tool call


class _Verifier(Protocol):
    def verify(self, token: str) -> Caller: ...


def environment_caller(settings: Settings) -> Caller:
    """The caller `SCAMTRAIL_TOKEN` names; NotAuthenticated, saying what to do, otherwise."""
    verifier = None if settings.auth_disabled else api_auth.TokenVerifier.from_settings(settings)
    token = os.environ.get(TOKEN_VARIABLE, "").strip() or None
    try:
        return caller_for(verifier, token)
    except NotAuthenticated as error:
        hint = "set" if token is None else "refused"
        raise NotAuthenticated(
            f"{TOKEN_VARIABLE} {hint}: {error}. Make one with"
            " `scamtrail token --role submitter --role analyst --tenant <tenant>`."
        ) from None


def fixed_caller(caller: Caller) -> CallerOf:
    """Every call is this caller's (stdio: one user per process)."""

    def caller_of(_: Context[Any, Any]) -> Caller:
        return _unexpired(caller)

    return caller_of


def request_caller(ctx: Context[Any, Any]) -> Caller:
    """The caller BearerGate verified for the HTTP request that carries this call."""
    request = ctx.request_context.request
    scope = getattr(request, "scope", None)
    caller = scope.get(CALLER_KEY) if isinstance(scope, dict) else None
    if not isinstance(caller, Caller):
        raise ToolError("not authenticated: send Authorization: Bearer <token>")
    return _unexpired(caller)


def _unexpired(caller: Caller) -> Caller:
    if caller.expires_at is not None and caller.expires_at <= datetime.now(UTC):
        raise ToolError("not authenticated: token expired")
    return caller


def owner_of(caller: Caller) -> str:
    """The session owner recorded with stored stream messages: tenant and actor."""
    return json.dumps([caller.tenant, caller.actor])


class BearerGate:
    """ASGI: 401 (as the REST api answers it) without a valid bearer token; otherwise the
    caller goes into the scope for the tools, and an `AuthenticatedUser` naming its tenant and
    actor for the SDK, which binds each MCP session to the identity that opened it."""

    def __init__(self, app: ASGIApp, verifier: Callable[[], _Verifier | None]) -> None:
        self._app, self._verifier = app, verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scheme, _, token = _header(scope, b"authorization").partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        try:
            caller = caller_for(self._verifier(), bearer or None)
        except NotAuthenticated as error:
            await answer(error)(scope, receive, send)
            return
        expires = int(caller.expires_at.timestamp()) if caller.expires_at else None
        access = AccessToken(token="-", client_id=caller.tenant, subject=caller.actor,
                             scopes=sorted(caller.roles), expires_at=expires)  # fmt: skip
        scope[CALLER_KEY] = caller
        scope["user"] = AuthenticatedUser(access)
        await self._app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""
