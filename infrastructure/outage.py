"""Riding out an outage of PostgreSQL or Redis: exponential backoff, and one log line per outage
(not one per retry), so a ten-minute outage is two lines in the log, not ten thousand."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time

import asyncpg
from sqlalchemy.exc import DBAPIError

# What PostgreSQL being away looks like to a caller. InternalClientError too: a connection
# terminated by the server while a prepared statement ran can surface as "cannot switch to
# state ...; another operation is in progress" instead of a ConnectionDoesNotExistError (as
# pg_terminate_backend mid-statement does). The connection is gone either way, so the relay
# reconnects as for any other outage rather than exiting.
POSTGRES_ERRORS = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    DBAPIError,
    TimeoutError,
)


class Backoff:
    """Delays of first, 2*first, 4*first ... up to `most` seconds, each with +-20% jitter so
    replicas that lost the same server do not retry in lockstep."""

    def __init__(self, first: float = 0.05, most: float = 2.0) -> None:
        self._first, self._most, self._next = first, most, first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._most)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._next = self._first


class OutageLog:
    """Logs the first failure of a dependency and its recovery; failures in between go to debug."""

    def __init__(self, log: logging.Logger, who: str) -> None:
        self._log, self._who = log, who
        self._since: dict[str, float] = {}

    def down(self, what: str, error: BaseException) -> None:
        if what in self._since:
            self._log.debug("%s: %s still unreachable: %r", self._who, what, error)
            return
        self._since[what] = time.monotonic()
        self._log.warning("%s: %s unreachable (%r); retrying with backoff", self._who, what, error)

    def up(self, what: str) -> None:
        since = self._since.pop(what, None)
        if since is not None:
            self._log.warning(
                "%s: %s is back after %.1f s", self._who, what, time.monotonic() - since
            )


class Throttled:
    """A warning that can repeat at a high rate (a flood of forged messages, a starved server):
    each occurrence is counted, and logged at most once per `every_s` with the count so far as
    the message's last argument, so a flood costs one log line a minute, not one per event."""

    def __init__(self, log: logging.Logger, message: str, every_s: float = 60.0) -> None:
        self._log, self._message, self._every_s = log, message, every_s
        self.count = 0
        self._logged_at = -math.inf

    def __call__(self, *args: object) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._logged_at >= self._every_s:
            self._logged_at = now
            self._log.warning(self._message, *args, self.count)


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True if `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
