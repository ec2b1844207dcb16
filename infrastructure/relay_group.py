"""One relay process's part of a partitioned log: a `Relay` per partition, and a fair share.

Every relay process keeps one "member" connection to PostgreSQL, named so that the others can
count it in pg_stat_activity. With `members` processes alive, a process publishes at most
ceil(partitions / members) partitions: it tries the lock of a partition only while it holds
fewer, and hands the highest-numbered ones over when it holds more (a process joined). When a
process dies, PostgreSQL ends its sessions: its locks are free and it is no longer counted, so
the others' shares grow and they take its partitions at their next try (`relay_lock_retry_s`).

Where pg_stat_activity does not show other sessions' names (a role without the privilege),
each process counts itself alone and tries every lock: still exactly one publisher per
partition, only not evenly spread.
"""

from __future__ import annotations

import asyncio
import logging
import math

import asyncpg
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from infrastructure.database import SERVER_KEEPALIVES
from infrastructure.event_store import EventStore
from infrastructure.outage import POSTGRES_ERRORS, sleep_unless
from infrastructure.progress_bus import ProgressBus
from infrastructure.relay import Relay, close_connection
from infrastructure.relay_partitions import partitions
from infrastructure.settings import Settings

log = logging.getLogger(__name__)

_MEMBERS = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = $1
"""


class RelayGroup:
    def __init__(self, settings: Settings, store: EventStore, redis: Redis) -> None:
        self._settings = settings
        count = settings.relay_partitions
        share = self if count > 1 else None  # one partition: the lock alone decides
        self._bus = ProgressBus(settings, redis)  # one client of a cluster for every partition
        self.relays = [
            Relay(settings, store, redis, p, share, self._bus) for p in partitions(count)
        ]
        self.members = 1  # relay processes alive, this one included
        # The count is in the name: while the count changes (a rolling restart), the relays
        # of the old count, which publish the log under locks of their own, are not counted.
        self._member_name = f"scamtrail-relay-member:{count}:{settings.relay_name}"[:63]

    def held(self) -> list[int]:
        return [relay.partition.index for relay in self.relays if relay.active]

    def share(self) -> int:
        return math.ceil(len(self.relays) / max(1, self.members))

    def may_take(self, relay: Relay) -> bool:
        return len(self.held()) < self.share()

    def must_release(self, relay: Relay) -> bool:
        held = sorted(self.held())
        return relay.partition.index in held[self.share() :]

    async def run(self, stop: asyncio.Event) -> None:
        """Relay every partition this process gets until `stop` is set."""
        try:
            async with asyncio.TaskGroup() as group:
                if len(self.relays) > 1:
                    group.create_task(self._count_members(stop), name="relay-members")
                for relay in self.relays:
                    group.create_task(relay.run(stop), name=f"relay-{relay.partition.index}")
        finally:
            await self._bus.aclose()

    async def _count_members(self, stop: asyncio.Event) -> None:
        """Keep `members` current on a connection of its own, which is this process's count."""
        url = make_url(self._settings.database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        every = self._settings.relay_lock_retry_s
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    dsn, timeout=5, command_timeout=self._settings.relay_statement_timeout_s,
                    server_settings={**SERVER_KEEPALIVES, "application_name": self._member_name},
                )  # fmt: skip
                while not stop.is_set():
                    members = int(await conn.fetchval(_MEMBERS, self._member_name))
                    if members != self.members:
                        log.info(
                            "relay %r: %d relay process(es); this one's share is %d of %d"
                            " partitions",
                            self._settings.relay_name,
                            members,
                            math.ceil(len(self.relays) / max(1, members)),
                            len(self.relays),
                        )
                        self.members = members
                    await sleep_unless(stop, every)
            except POSTGRES_ERRORS as error:
                # The relays log the outage; meanwhile count on nobody else.
                log.debug("relay members: PostgreSQL unreachable (%r)", error)
                self.members = 1
                await sleep_unless(stop, every)
            finally:
                if conn is not None:
                    await close_connection(conn)
