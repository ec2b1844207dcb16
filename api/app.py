"""The FastAPI app factory. Routes turn requests into commands and hand them on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.services import open_services
from infrastructure.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app.state.services = services
            yield

    app = FastAPI(
        title="scamtrail",
        version="0.1.0",
        description="Event-sourced scam analysis: submit, stream progress, read the audit.",
        lifespan=lifespan,
    )
    errors.install(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    # Routers are added here as their issues land (tasks, streaming, indicators, ...).
    return app
