"""The FastAPI app factory. Routes turn requests into use cases (api/application) and their
results into responses. Building an app sets no process-wide state: the api process's own
start does (api/cli/processes.py, api/runtime.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from api import auth, errors, metrics
from api.limits import BodySizeLimit, ClosePacer, RefuseNulInUrl, SocketCounter, has_nul
from api.mcp.http import McpEndpoint
from api.redaction import install_redaction
from api.routes import admin, api_docs, console, health, indicators, task_reads, tasks
from api.routes import stream as progress_routes
from api.routes.dashboard import router as dashboard_router
from api.services import open_services
from infrastructure.settings import Settings, load_settings

log = logging.getLogger(__name__)

# What every route behind a token may answer besides its own statuses.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No token, or one that is expired, badly signed or for another api"},
    403: {"description": "The token lacks the role this needs"},
    413: {"description": "Request body too large"},
}
TASK_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"description": "No such task visible to the caller (another tenant's is not found)"},
    429: {"description": "Too many submissions a minute, or too many open streams"},
}


class ScamtrailApi(FastAPI):
    """FastAPI with one shortcut: the progress sockets go straight to their endpoints.

    A progress socket lives for minutes, thousands of them per process, and its task keeps its
    whole chain of coroutines alive all that time. Through the middleware stack and the router
    that chain is some twenty suspended frames with their closures and exit stacks: 11 KB of
    the 47 KB an idle socket cost (benchmarks/streaming.py; 36 KB without them). None of that
    middleware does anything for these sockets: they authenticate, refuse and close on their
    own (api/routes/stream.py). So they are matched by their own routes and called directly.
    Every other request, and a socket URL with a NUL in it (RefuseNulInUrl answers that one),
    takes the normal path."""

    def __init__(self, *, direct_sockets: Sequence[BaseRoute] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._direct_sockets = tuple(direct_sockets)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not has_nul(scope):
            for route in self._direct_sockets:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope, app=self)
                    websocket = WebSocket(scope, receive, send)
                    await child_scope["endpoint"](websocket, **child_scope["path_params"])
                    return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _log_auth_mode(settings)
        async with open_services(settings) as services:
            app.state.services = services
            # MCP over streamable HTTP at /mcp (api/mcp): its session manager runs with the app.
            async with app.state.mcp.running(
                services, app.state.stream_metrics, app.state.verifier
            ):
                yield

    app = ScamtrailApi(
        direct_sockets=[r for r in progress_routes.router.routes if isinstance(r, WebSocketRoute)],
        title="scamtrail",
        version="0.1.0",
        docs_url=None,  # served by api.routes.api_docs, without a CDN
        redoc_url=None,
        description="Event-sourced scam analysis: submit, stream progress, read the audit.",
        lifespan=lifespan,
    )
    install_redaction()
    # Built here, not in the lifespan: a missing key file fails the start, not the first request.
    app.state.verifier = (
        None if settings.auth_disabled else auth.TokenVerifier.from_settings(settings)
    )
    app.state.sockets = SocketCounter(settings.max_sockets_per_user)
    app.state.close_pacer = ClosePacer(settings.ws_close_rate)
    app.add_middleware(BodySizeLimit, limit=settings.max_request_bytes)
    app.add_middleware(RefuseNulInUrl)
    errors.install(app)
    # /metrics and /healthz stay open: Prometheus scrapers and liveness probes carry no tokens,
    # and neither reveals any tenant's data. So do /docs and /openapi.json (the schema is public).
    metrics.install(app)
    app.include_router(progress_routes.router, responses=TASK_RESPONSES)

    app.include_router(health.router)
    app.include_router(task_reads.router, responses=TASK_RESPONSES)
    app.include_router(tasks.router, responses=TASK_RESPONSES)
    app.include_router(indicators.router, responses=AUTH_RESPONSES)
    app.include_router(admin.router, responses=AUTH_RESPONSES)
    app.include_router(dashboard_router, responses=AUTH_RESPONSES)
    app.include_router(console.router)
    app.include_router(api_docs.router)
    app.state.mcp = McpEndpoint()
    app.add_route("/mcp", app.state.mcp, ["GET", "POST", "DELETE"], include_in_schema=False)
    return app


def _log_auth_mode(settings: Settings) -> None:
    """At every start: what guards the api; loudly, when nothing does."""
    if settings.auth_disabled:
        log.warning(
            "AUTH IS DISABLED (SCAMTRAIL_AUTH_DISABLED=true): every request acts as tenant"
            " 'public' with every role. Never run this way with real data."
        )
    else:
        log.info(auth.describe(settings))
