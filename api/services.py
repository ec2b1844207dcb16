"""What a running api process holds: built once in the app's lifespan, closed at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from arq import ArqRedis
from fastapi import Request
from redis.asyncio import ConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.database import create_engine
from infrastructure.event_store import EventStore
from infrastructure.hub import ProgressHub
from infrastructure.redis_client import create_redis
from infrastructure.settings import Settings


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    store: EventStore
    redis: Redis
    jobs: ArqRedis  # the arq queue: enqueue analyses
    hub: ProgressHub  # the process's one Redis Pub/Sub subscription, shared by all sockets


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    engine = create_engine(settings, application_name="scamtrail-api")
    redis = create_redis(settings)
    # Built without a ping (arq's create_pool pings and fails): the api must start, and keep
    # accepting submissions, while Redis is down; the sweep enqueues what could not be.
    jobs = ArqRedis(
        ConnectionPool.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5),
        default_queue_name=settings.queue,
    )
    store = EventStore(engine)
    hub = ProgressHub(settings, store)
    await hub.start()
    try:
        yield Services(settings, engine, store, redis, jobs, hub=hub)
    finally:
        await hub.stop()
        await jobs.aclose()
        await redis.aclose()
        await engine.dispose()


def services(request: Request) -> Services:
    """FastAPI dependency: the process's services."""
    found: Services = request.app.state.services
    return found
