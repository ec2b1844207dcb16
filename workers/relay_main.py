"""The relay process: `scamtrail relay` (alone), or inside `scamtrail up` beside the api."""

from __future__ import annotations

import asyncio
import logging
import signal

from infrastructure.database import create_engine
from infrastructure.event_store import EventStore
from infrastructure.redis_client import create_redis
from infrastructure.relay_group import RelayGroup
from infrastructure.settings import Settings

log = logging.getLogger(__name__)


async def run_relay(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Relay until `stop` is set (or SIGTERM/SIGINT when run as its own process)."""
    own_signals = stop is None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if own_signals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    # A read per partition this process publishes may run at once (infrastructure/relay_group).
    pool_size = max(2, settings.relay_partitions)
    engine = create_engine(settings, pool_size=pool_size, application_name="scamtrail-relay")
    redis = create_redis(settings)
    try:
        await RelayGroup(settings, EventStore(engine), redis).run(stop)
    finally:
        await redis.aclose()
        await engine.dispose()
        log.info("relay stopped")
