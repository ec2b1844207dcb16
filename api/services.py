"""What a running api process holds: built once in the app's lifespan, closed at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from fastapi import Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.database import create_engine
from infrastructure.event_store import EventStore
from infrastructure.redis_client import create_redis
from infrastructure.settings import Settings


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    store: EventStore
    redis: Redis
    jobs: ArqRedis  # the arq queue: enqueue analyses


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    engine = create_engine(settings)
    redis = create_redis(settings)
    jobs = await create_pool(
        RedisSettings.from_dsn(settings.redis_url), retry=0, default_queue_name=settings.queue
    )
    try:
        yield Services(settings, engine, EventStore(engine), redis, jobs)
    finally:
        await jobs.aclose()
        await redis.aclose()
        await engine.dispose()


def services(request: Request) -> Services:
    """FastAPI dependency: the process's services."""
    found: Services = request.app.state.services
    return found
