"""Who is calling: tenant, actor and roles, from the request's bearer token (api/auth.py).

Routes take a `Caller` through `require(...)`, the one place roles are checked: a missing or bad
token is 401 (WebSocket close 4401), a valid token without the role is 403 (4403).
Tenant and submitter scoping happen in the queries (infrastructure/task_queries.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Protocol

from fastapi import Depends, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ROLES = frozenset({"submitter", "analyst", "admin"})
# The value a browser offers in Sec-WebSocket-Protocol before its token: `["bearer", token]`.
BEARER_PROTOCOL = "bearer"


class NotAuthenticated(Exception):
    """No token, or one that does not verify (expired, bad signature, wrong audience...)."""


class Forbidden(Exception):
    """A valid token without the role the action needs."""


@dataclass(frozen=True)
class Caller:
    tenant: str
    actor: str
    roles: frozenset[str]
    expires_at: datetime | None = None  # the token's `exp`: open sockets close then

    @property
    def submitted_by(self) -> str | None:
        """The submitter to scope task reads to: a submitter sees only its own tasks, an
        analyst every task of its tenant (None: no submitter filter)."""
        return None if "analyst" in self.roles else self.actor


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


def check_roles(caller: Caller, roles: tuple[str, ...]) -> Caller:
    if not caller.roles & set(roles):
        raise Forbidden(f"needs one of the roles: {', '.join(roles)}")
    return caller


def require(*roles: str, query_token: bool = False) -> Callable[..., Caller]:
    """A dependency: the caller, if it holds any of `roles`. `query_token` also accepts
    `?token=`, for EventSource (SSE), which cannot send headers."""
    unknown = set(roles) - ROLES
    assert roles and not unknown, f"unknown roles {unknown}"

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Caller:
        token = credentials.credentials if credentials else None
        if token is None and query_token:
            token = request.query_params.get("token")
        return check_roles(caller_for(request.app.state.verifier, token), roles)

    return dependency
