"""Redis clients, built from settings (never at import time)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from infrastructure.settings import Settings


def create_redis(settings: Settings) -> Redis:
    # Short timeouts: a Redis outage must be noticed in seconds, not hang a request or a relay.
    client: Redis = Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=15,
        decode_responses=False,
    )
    return client


async def redis_answers(redis_url: str, within_s: float = 3.0) -> str | None:
    """None if Redis at the URL answers PING within `within_s`, else the error's type."""
    client = Redis.from_url(redis_url, socket_connect_timeout=within_s, socket_timeout=within_s)
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        return type(error).__name__
    finally:
        await client.aclose()
    return None
