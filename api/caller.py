"""Who is calling over HTTP or a socket: the `Caller` (api/application/caller.py) from the
request's bearer token (api/auth.py).

Routes take a `Caller` through `require(...)`: a missing or bad token is 401 (WebSocket close
4401), a valid token without the role is 403 (4403), answered before the body is read. Tenant
and submitter scoping happen in the queries (infrastructure/task_queries.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Protocol

from fastapi import Depends, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.application.caller import ROLES, Caller, NotAuthenticated, check_roles

# The identity it yields, for callers of this module.
__all__ = ["BEARER_PROTOCOL", "Caller", "NotAuthenticated", "caller_for", "require", "socket_token"]

# The value a browser offers in Sec-WebSocket-Protocol before its token: `["bearer", token]`.
BEARER_PROTOCOL = "bearer"


class _Verifier(Protocol):
    def verify(self, token: str) -> Caller: ...


_bearer = HTTPBearer(auto_error=False, description="A JWT: `Authorization: Bearer <token>`.")


def caller_for(verifier: _Verifier | None, token: str | None) -> Caller:
    if verifier is None:  # auth switched off (settings.auth_disabled); the start logged it
        return Caller("public", "anonymous", ROLES)
    if not token:
        raise NotAuthenticated("no bearer token")
    return verifier.verify(token)


def socket_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """(token, subprotocol to accept) from the Authorization header, the Sec-WebSocket-Protocol
    offer `bearer, <token>` (browsers), or `?token=` (browsers too)."""
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip(), None
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    if BEARER_PROTOCOL in offered and offered.index(BEARER_PROTOCOL) + 1 < len(offered):
        return offered[offered.index(BEARER_PROTOCOL) + 1], BEARER_PROTOCOL
    return websocket.query_params.get("token"), None


def require(*roles: str, query_token: bool = False) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the caller, if it holds any of `roles`. `query_token` also accepts
    `?token=`, for EventSource (SSE), which cannot send headers."""
    unknown = set(roles) - ROLES
    assert roles and not unknown, f"unknown roles {unknown}"

    # async, though it awaits nothing: FastAPI runs a plain `def` dependency in a worker thread,
    # a hand-off and back on every request for a check of microseconds.
    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Caller:
        token = credentials.credentials if credentials else None
        if token is None and query_token:
            token = request.query_params.get("token")
        return check_roles(caller_for(request.app.state.verifier, token), roles)

    return dependency
