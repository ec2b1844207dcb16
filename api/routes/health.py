"""Probes: /healthz (the process answers) and /readyz (it can do its work). Unauthenticated on
purpose: load balancers and orchestrators call them without credentials, and they reveal
nothing about any tenant."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.services import Services, services
from infrastructure.database import alembic_config

router = APIRouter(tags=["health"])

# Each dependency gets this long to answer before the probe calls it unreachable.
PROBE_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready, with the reasons"}})
async def readyz(svc: Annotated[Services, Depends(services)]) -> JSONResponse:
    """PostgreSQL and Redis answer, and the database schema is at this code's migration head
    (or past it: see `_schema`)."""
    database, redis = await asyncio.gather(_database(svc), _redis(svc))
    reasons = [r for r in (database.reason, redis) if r]
    body: dict[str, Any] = {"status": "ready" if not reasons else "not ready", "reasons": reasons}
    if database.warning:
        body["warnings"] = [database.warning]
    return JSONResponse(body, status_code=200 if not reasons else 503)


@dataclass(frozen=True)
class _Answer:
    reason: str | None = None  # not ready, because ...
    warning: str | None = None  # ready, but ...


async def _database(svc: Services) -> _Answer:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            current = await svc.schema.revision()
    except Exception as error:  # any failure is the answer to "can we use PostgreSQL?"
        return _Answer(reason=f"PostgreSQL unreachable: {type(error).__name__}")
    return _schema(current, alembic_config(svc.settings.database_url))


NOT_MIGRATED = "database not migrated: run `scamtrail migrate`"


def _schema(current: str | None, config: Config) -> _Answer:
    if current is None:
        return _Answer(reason=NOT_MIGRATED)
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    if current == head:
        return _Answer()
    try:
        known = script.get_revision(current) is not None
    except CommandError:  # not in this code's migrations
        known = False
    if not known:
        # A revision this code has never heard of is a newer one: during a rolling deploy the
        # new release migrates first, and the old replicas must keep serving until replaced.
        return _Answer(warning=f"database schema at {current}, newer than this code's {head}")
    return _Answer(
        reason=f"database schema at {current}, code expects {head}: run `scamtrail migrate`"
    )


async def _redis(svc: Services) -> str | None:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await svc.redis.ping()
    except Exception as error:  # any failure is the answer to "can we use Redis?"
        return f"Redis unreachable: {type(error).__name__}"
    return None
