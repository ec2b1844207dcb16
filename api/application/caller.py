"""Who is acting: a `Caller` (a tenant's user with roles, from a token: HTTP, sockets, and any
other adapter) or an `Operator` (whoever runs the command line on a server, for every tenant).

Roles are checked here for every use case (`check_roles`), and again by the HTTP routes'
dependencies, which answer before a request body is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ROLES = frozenset({"submitter", "analyst", "admin"})


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


@dataclass(frozen=True)
class Operator:
    """The command line's actor: acts for every tenant, recorded in events as `actor`."""

    actor: str


def check_roles(caller: Caller, roles: tuple[str, ...]) -> Caller:
    """The caller, if it holds any of `roles`; Forbidden otherwise."""
    if not caller.roles & set(roles):
        raise Forbidden(f"needs one of the roles: {', '.join(roles)}")
    return caller
