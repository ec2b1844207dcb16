"""Redis clients, built from settings (never at import time)."""

from __future__ import annotations

from redis.asyncio import Redis

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
