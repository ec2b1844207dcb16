"""`scamtrail api`, `scamtrail relay` and `scamtrail worker`: one process each."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING

import typer
import uvicorn

from api.cli.stack import stack_settings
from api.http_guard import ConnectionGuard, connection_limit, guarded_http, raise_fd_limit
from api.log_flood import install_repeat_limiter
from api.runtime import settle_heap
from infrastructure.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.limits import SocketCounter

log = logging.getLogger(__name__)


def api(
    port: int | None = typer.Option(None, help="Port (default: SCAMTRAIL_PORT, 8000)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
) -> None:
    """Run the api (HTTP, WebSocket, SSE, /metrics) under uvicorn."""
    settings = stack_settings("database_url", "redis_url", **({"port": port} if port else {}))
    DrainingServer(settings, host).run()


def relay() -> None:
    """Run the relay: publish the log to Redis Pub/Sub. Start several; one is active."""
    from workers.relay_main import run_relay

    asyncio.run(run_relay(stack_settings("database_url", "redis_url")))


def worker(
    burst: bool = typer.Option(False, help="Exit once the queue is empty (tests, one-off runs)."),
) -> None:
    """Run an arq worker: analyses, and the sweep that re-enqueues lost tasks."""
    from workers.jobs import run_worker

    run_worker(stack_settings("database_url", "redis_url"), burst=burst)


def _uvicorn_config(app: FastAPI, settings: Settings, host: str) -> uvicorn.Config:
    guard = ConnectionGuard(
        max_connections=connection_limit(settings.max_connections, raise_fd_limit()),
        header_timeout_s=settings.header_timeout_s,
        max_header_bytes=settings.max_header_bytes,
    )
    return uvicorn.Config(
        app,
        host=host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        http=guarded_http(guard),  # httptools, with the bounds uvicorn lacks (api/http_guard.py)
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_max_size=settings.ws_max_message_bytes,  # inbound frames are ignored: keep them small
        backlog=4096,  # thousands of progress sockets may connect at once
    )


class DrainingServer(uvicorn.Server):
    """The api process's server. Its start, in order: build the app, install the log's repeat
    limiter, run the app's lifespan (services open) and listen, then settle the heap
    (`api.runtime.settle_heap`) before the first request is served.

    Its stop: uvicorn's shutdown closes every open WebSocket with 1012 ("service restart"),
    and waits for streaming responses (SSE) to end by themselves. A replica going away should
    instead say 1001 ("going away"), so that clients reconnect at once — to another replica
    behind the load balancer — and resume with `after=<seq>`. So before uvicorn's own
    shutdown: stop listening, ask every delivery loop to close its client with 1001
    (`ProgressHub.drain`), and give the clients a moment to answer the close before uvicorn
    drops what is left."""

    DRAIN_S = 5.0  # bounded: a client that never answers its close frame must not hold us

    def __init__(self, settings: Settings, host: str) -> None:
        from api.app import create_app

        # These settings, not a fresh load from the environment: under `up` they carry the
        # embedded PostgreSQL's and Redis's URLs, which no environment variable names.
        self.app = create_app(settings)
        super().__init__(_uvicorn_config(self.app, settings, host))
        install_repeat_limiter(settings.log_repeat_interval_s)  # uvicorn's handlers exist now

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:  # the services are up and the sockets bound
            settle_heap()  # no await: nothing is served before it is done

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        services = getattr(self.app.state, "services", None)  # None if the lifespan failed
        if services is not None and not self.force_exit:
            for server in self.servers:
                server.close()  # no new sockets while the open ones drain
            services.hub.drain()
            self.app.state.close_pacer.release()  # finished sockets waiting to close: now
            counter: SocketCounter = self.app.state.sockets
            for _ in range(int(self.DRAIN_S / 0.05)):  # polled: the count has no event
                if not counter.total or self.force_exit:
                    break
                await asyncio.sleep(0.05)
            if counter.total:
                log.warning("%d progress socket(s) still open after draining", counter.total)
        await super().shutdown(sockets)
