"""Who is calling: tenant, actor and roles. Until the auth issue lands every request is the
`public` tenant's anonymous caller; routes already take it as a dependency so that auth only
replaces this function."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    tenant: str
    actor: str
    roles: frozenset[str]


def current_caller() -> Caller:
    return Caller(tenant="public", actor="anonymous", roles=frozenset({"submitter", "analyst"}))
