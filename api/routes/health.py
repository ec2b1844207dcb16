"""Probes: /healthz (the process answers) and /readyz (it can do its work). Unauthenticated on
purpose: load balancers and orchestrators call them without credentials, and they reveal
nothing about any tenant."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory
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
    """PostgreSQL and Redis answer, and the database schema is at this code's migration head."""
    reasons = [r for r in await asyncio.gather(_database(svc), _redis(svc)) if r]
    body: dict[str, Any] = {"status": "ready" if not reasons else "not ready", "reasons": reasons}
    return JSONResponse(body, status_code=200 if not reasons else 503)


async def _database(svc: Services) -> str | None:
    head = ScriptDirectory.from_config(alembic_config(svc.settings.database_url)).get_current_head()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S), svc.engine.connect() as conn:
            current = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    except Exception as error:  # any failure is the answer to "can we use PostgreSQL?"
        return f"PostgreSQL unreachable: {type(error).__name__}"
    if current != head:
        return f"database schema at {current}, code expects {head}: run `scamtrail migrate`"
    return None


async def _redis(svc: Services) -> str | None:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await svc.redis.ping()
    except Exception as error:  # any failure is the answer to "can we use Redis?"
        return f"Redis unreachable: {type(error).__name__}"
    return None
