"""What a running api process holds: built once in the app's lifespan, closed at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from arq import ArqRedis
from fastapi import Request
from redis.asyncio import ConnectionPool, Redis

from api.application.application import Application
from api.limits import TenantRates
from infrastructure.analysis_queue import enqueue_analysis
from infrastructure.doorbell import Doorbell
from infrastructure.event_store import EventStore
from infrastructure.hub import ProgressHub
from infrastructure.mcp_streams import McpStreams
from infrastructure.redis_client import create_redis
from infrastructure.relay_status import RelayStatusReader
from infrastructure.repositories import open_repositories
from infrastructure.schema_probe import SchemaProbe
from infrastructure.settings import Settings


@dataclass
class Services:
    settings: Settings
    application: Application  # the use cases
    store: EventStore  # the log, read by the progress sockets' delivery loop
    redis: Redis
    hub: ProgressHub  # the process's one Redis Pub/Sub subscription, shared by all sockets
    schema: SchemaProbe  # /readyz: the migration the database is at
    relay_status: RelayStatusReader  # /metrics: the relay's checkpoint and lag
    mcp_streams: McpStreams  # the MCP endpoint's resumable streams (api/mcp)


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    redis = create_redis(settings)
    # Built without a ping (arq's create_pool pings and fails): the api must start, and keep
    # accepting submissions, while Redis is down; the sweep enqueues what could not be.
    jobs = ArqRedis(
        ConnectionPool.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5),
        default_queue_name=settings.queue,
    )

    async def enqueue(task_id: str) -> bool:
        return await enqueue_analysis(jobs, task_id, settings.queue)

    rates = TenantRates(
        redis, settings.submissions_per_minute, settings.indicator_writes_per_minute
    )
    doorbell = Doorbell(settings, redis)
    try:
        async with open_repositories(
            settings, application_name="scamtrail-api", doorbell=doorbell
        ) as repos:
            hub = ProgressHub(settings, repos.store)
            await hub.start()
            try:
                yield Services(
                    settings,
                    Application(repos, settings, enqueue, rates),
                    repos.store,
                    redis,
                    hub,
                    repos.schema,
                    repos.relay_status,
                    repos.mcp_streams,
                )
            finally:
                await hub.stop()
    finally:
        await doorbell.aclose()
        await jobs.aclose()
        await redis.aclose()


async def services(request: Request) -> Services:
    """FastAPI dependency: the process's services (async: a plain `def` would run in a worker
    thread on every request)."""
    found: Services = request.app.state.services
    return found
