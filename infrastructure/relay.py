"""The relay: PostgreSQL log -> Redis Pub/Sub, at least once, in log order (within a partition,
see below; so each task's events in order).

Exactly one relay publishes a partition at a time: the one holding its session-level PostgreSQL
advisory lock.
Standbys retry the lock every `relay_lock_retry_s`; PostgreSQL releases it the moment the
holder's connection ends (crash, SIGKILL, network loss), so a standby takes over within about
that long. A brief overlap (an old leader publishing its last batch) only causes duplicates,
which clients drop by `seq`.

The checkpoint (LogCursor, table relay_checkpoints) is written after publishing, at most every
`relay_checkpoint_s` (and when the relay stops or hands its partition over): after a crash the
relay re-publishes since the last checkpoint. Duplicates are fine; losses are not. The same
statement stores the timeline entries of the events published since the last checkpoint
(infrastructure/timeline.py), so they too are written at least once, at most a checkpoint
interval after their event is published.

Wake-up. While events flow, the relay probes for new rows every `relay_poll_s` (5 ms) with one
prepared query that reads the first log-order index entry past its cursor (~0.01 ms, see
PROBE_SQL), which costs writers nothing; commit -> Redis latency stays within a few ms
(benchmarks/streaming.py measures it). `relay_warm_s` after the last event it goes quiet: it
waits for the log's doorbell, which writers ring after their commit (infrastructure/doorbell.py),
and probes only every `relay_idle_probe_s` meanwhile, in case a ring was lost. A per-append
NOTIFY would wake it as fast but serialises every committing writer on a cluster-wide lock.
When the probe finds rows that read_all cannot return yet (an older transaction still
running), the relay simply probes again. A read shorter than the batch size returned all there
was, so the relay pauses before it reads again; while events flow it reads after a pause of a
couple of milliseconds without probing first, and once a read finds nothing it goes back to
probing.

Partitions (`SCAMTRAIL_RELAY_PARTITIONS`, infrastructure/relay_partitions.py): a `Relay`
publishes one partition of the log (by default the whole of it), under that partition's lock and
checkpoint. `scamtrail relay` runs one per partition and shares them with the other relay
processes (infrastructure/relay_group.py); each task's events stay in one partition, in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal, Protocol

import asyncpg
import sqlalchemy as sa
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url

from domain.indicators import is_task_stream
from domain.log import LogCursor, RecordedEvent
from domain.progress import progress_message
from infrastructure.database import SERVER_KEEPALIVES
from infrastructure.doorbell import DoorbellListener
from infrastructure.event_store import EventStore
from infrastructure.hub import PubSubSeal, task_channel, tenant_channel
from infrastructure.outage import POSTGRES_ERRORS, Backoff, OutageLog, Throttled, sleep_unless
from infrastructure.progress_bus import ProgressBus
from infrastructure.relay_partitions import (
    WHOLE_LOG,
    Partition,
    published_through,
    starting_point,
)
from infrastructure.settings import Settings
from infrastructure.timeline import PendingEntries, insert_sql
from infrastructure.timeline import render as render_entry

log = logging.getLogger(__name__)

# Whether read_all past the cursor would return something: the first row past the cursor in log
# order, compared with the snapshot's xmin. Written as ORDER BY ... LIMIT 1 on the log-order index
# (a few µs at any table size), not as EXISTS (... AND transaction_id < xmin): for that form the
# planner expects many matching rows and picks a sequential scan that stops at the first one; but
# an idle relay's probe matches none, so every probe read the whole table (9 ms at 71,000 events,
# 70% of a PostgreSQL core at one probe per 5 ms). tests/integration/test_relay.py checks the plan.
PROBE_SQL = """
    SELECT COALESCE(
        (SELECT transaction_id FROM events
         WHERE (transaction_id, global_position) > ($1::text::xid8, $2::bigint)
         ORDER BY transaction_id, global_position LIMIT 1)
        < pg_snapshot_xmin(pg_current_snapshot()),
        false)
"""
# The lock connection's session. It names itself, so an operator can tell it in
# pg_stat_activity. It runs only the probe and single-row statements (the lock, the checkpoint),
# so the planner may not choose anything but an index path for them: with sequential scans,
# bitmap scans and sorts off, the probe's plan is the log-order index scan whatever the table's
# statistics say (a table refilled after a TRUNCATE, never analysed, or wildly mis-estimated).
# A statement timeout bounds whatever slips through; see `_has_news`.
PLANNER_PINS = {"enable_seqscan": "off", "enable_bitmapscan": "off", "enable_sort": "off"}


def lock_connection_settings(settings: Settings) -> dict[str, str]:
    return {
        **SERVER_KEEPALIVES,
        **PLANNER_PINS,
        "application_name": "scamtrail-relay-lock",
        "statement_timeout": str(max(1, round(settings.relay_probe_timeout_s * 1000))),
    }


_LOAD = "SELECT name, log_cursor FROM relay_checkpoints"
# The checkpoint, and the timeline entries of the events published since the last one
# ($4..$8, infrastructure/timeline.py), in one statement: the checkpoint never moves past an
# event whose entry is not stored, and the entries cost no round trip of their own.
_SAVE = f"""
    WITH entries AS ({insert_sql(first=4)})
    INSERT INTO relay_checkpoints (name, log_cursor, published_total) VALUES ($1, $2, $3)
    ON CONFLICT (name) DO UPDATE SET log_cursor = EXCLUDED.log_cursor,
        published_total = relay_checkpoints.published_total + EXCLUDED.published_total,
        updated_at = now()
"""
# Entries held for the next checkpoint at most: past this many, the checkpoint is saved early.
_MOST_PENDING_ENTRIES = 2000
# While events flow, the pause between a read that found some and the next: events committed
# meanwhile go out in one read and one PUBLISH round trip under load, at a millisecond or two of
# commit -> Redis latency (a pause of the probe interval, 5 ms, doubled its p99 here).
_FLOWING_PAUSE_S = 0.002


async def published_up_to(store: EventStore, relay_name: str, partitions: int = 1) -> LogCursor:
    """Every event up to this cursor was published (at least once): the least checkpoint of
    the relay's partitions."""
    query = sa.text("SELECT name, log_cursor FROM relay_checkpoints")
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return published_through({r.name: r.log_cursor for r in rows}, relay_name, partitions)


class Share(Protocol):
    """How many partitions this process should publish (infrastructure/relay_group.py)."""

    def may_take(self, relay: Relay) -> bool:
        """Whether `relay` may try to take its partition's lock now."""
        ...

    def must_release(self, relay: Relay) -> bool:
        """Whether `relay` should hand its partition over (the process holds too many)."""
        ...


# Why the relay's wait for news ended.
Woke = Literal["news", "checkpoint due", "stopped"]


class _Stopped(Exception):
    """`stop` was set while the relay waited on something."""


class Relay:
    """Publishes one partition of the log (`WHOLE_LOG` unless partitioned) while it holds the
    partition's lock; `share`, if given, says when to try for the lock and when to let go."""

    def __init__(
        self,
        settings: Settings,
        store: EventStore,
        redis: Redis,
        partition: Partition = WHOLE_LOG,
        share: Share | None = None,
        bus: ProgressBus | None = None,
    ) -> None:
        self._settings, self._store = settings, store
        # Progress goes out on the bus (this Redis, or SCAMTRAIL_PUBSUB_URL's server or
        # cluster); the doorbell is always heard on this Redis.
        self._bus, self._owns_bus = bus or ProgressBus(settings, redis), bus is None
        self.partition, self._share = partition, share
        self._name = (
            repr(settings.relay_name)
            if partition.whole_log
            else f"{settings.relay_name!r} {partition}"
        )
        self._checkpoint = partition.checkpoint_name(settings.relay_name)
        url = make_url(settings.database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._outage = OutageLog(log, f"relay {self._name}")
        self._seal = PubSubSeal(settings)
        self._doorbell = DoorbellListener(settings, redis)
        self._news_at = 0.0  # monotonic time of the last event published or ring heard
        self.active = False
        self.published = 0  # events published by this process (duplicates included)
        self.probes = 0  # idle probes of the log (for tests: a quiet relay stops counting)
        self.lag_seconds = 0.0  # commit -> publish of the last batch
        # Idle probes the server cancelled (statement_timeout); logged at most once a minute.
        self._probe_timed_out = Throttled(
            log,
            f"relay {self._name}: the idle probe ran past"
            f" {settings.relay_probe_timeout_s * 1000:.0f} ms and was cancelled (%d so far);"
            " PostgreSQL is slow to answer, events reach Redis late meanwhile",
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set: wait for the lock, publish, ride out outages."""
        backoff = Backoff(most=self._settings.relay_backoff_max_s)
        while not stop.is_set():
            if self._share is not None and not self._share.may_take(self):
                # Its process holds its share: no connection kept open for this partition.
                await sleep_unless(stop, self._settings.relay_lock_retry_s)
                continue
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn,
                    timeout=5,
                    command_timeout=self._settings.relay_statement_timeout_s,
                    server_settings=lock_connection_settings(self._settings),
                )
                # Prepared before the lock is taken: an active relay's only statements on the
                # log are then the probe's executions, which a lock on `events` (a migration,
                # a TRUNCATE) merely times out (see _has_news) instead of failing the relay.
                probe = await conn.prepare(PROBE_SQL)
                if await self._acquire(conn, stop):
                    self._outage.up("PostgreSQL")
                    backoff.reset()
                    await self._publish_while_leader(conn, probe, stop)
            except _Stopped:
                break
            except POSTGRES_ERRORS as error:
                self._outage.down("PostgreSQL", error)
                await sleep_unless(stop, backoff.next())
            finally:
                self.active = False
                if conn is not None:
                    await close_connection(conn)
        await self._doorbell.aclose()
        if self._owns_bus:
            await self._bus.aclose()

    async def _acquire(self, conn: asyncpg.Connection, stop: asyncio.Event) -> bool:
        waiting_logged = False
        share = self._share
        while not stop.is_set():
            if share is None or share.may_take(self):
                key = self.partition.lock_key
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                    log.info("relay %s: active (holds the advisory lock)", self._name)
                    self.active = True
                    return True
                if not waiting_logged:
                    log.info("relay %s: standby; another relay holds the lock", self._name)
                    waiting_logged = True
            await sleep_unless(stop, self._settings.relay_lock_retry_s)
        return False

    async def _publish_while_leader(
        self,
        conn: asyncpg.Connection,
        probe: asyncpg.prepared_stmt.PreparedStatement,
        stop: asyncio.Event,
    ) -> None:
        settings = self._settings
        cursor = saved = await self._load_checkpoint(conn)
        unsaved, saved_at = 0, time.monotonic()
        entries = PendingEntries()  # of the events published since the checkpoint
        woke: Woke = "news"
        while woke != "stopped" and not stop.is_set():
            if self._releasing():
                log.info("relay %s: handed over (the other relays take their share)", self._name)
                break
            batch, read_to, full = await self._read(cursor)
            if batch:
                await self._publish(batch, stop, entries)
                unsaved += len(batch)
            if read_to != cursor:
                cursor, self._news_at = read_to, time.monotonic()
            while True:
                if cursor != saved and (
                    time.monotonic() >= saved_at + settings.relay_checkpoint_s
                    or len(entries) >= _MOST_PENDING_ENTRIES
                ):
                    await self._save(conn, cursor, unsaved, entries)
                    saved, unsaved, saved_at = cursor, 0, time.monotonic()
                    entries = PendingEntries()
                if full:
                    break  # more is readable now
                # Caught up with what was readable: wait for more, and for the checkpoint to
                # fall due if something is unsaved.
                self.lag_seconds = 0.0
                due = saved_at + settings.relay_checkpoint_s if cursor != saved else None
                woke = await self._wait_for_news(
                    probe, cursor, stop, save_by=due, flowing=bool(batch)
                )
                if woke != "checkpoint due":
                    break
        if cursor != saved:
            # Stopping, or handing over: the last checkpoint, so that the next relay does not
            # publish again what this one did.
            await self._save(conn, cursor, unsaved, entries)

    async def _save(
        self, conn: asyncpg.Connection, cursor: LogCursor, published: int, entries: PendingEntries
    ) -> None:
        """Move the checkpoint to `cursor` and store the entries published since the last one.
        Under the statement timeout of the relay's other statements, not the probe's: a few
        thousand entries (a relay catching up, large tool outputs) or a row a rebuild holds
        locked can take longer than a probe may, and a save cancelled every time would leave
        the relay publishing the same events again, never moving on."""
        timeout_ms = max(1, round(self._settings.relay_statement_timeout_s * 1000))
        async with conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
            await conn.execute(_SAVE, self._checkpoint, str(cursor), published, *entries.args())

    async def _load_checkpoint(self, conn: asyncpg.Connection) -> LogCursor:
        """Where to publish from (`relay_partitions.starting_point`)."""
        rows = {row["name"]: row["log_cursor"] for row in await conn.fetch(_LOAD)}
        return starting_point(rows, self._settings.relay_name, self.partition)

    async def _read(self, cursor: LogCursor) -> tuple[Sequence[RecordedEvent], LogCursor, bool]:
        """The next batch of this partition's events, how far the log was read, and whether the
        read was full (more may be readable at once; else it read all there was)."""
        limit = self._settings.relay_batch_size
        if self.partition.whole_log:
            batch = await self._store.read_all(cursor, limit=limit, tolerant=True)
            return batch, batch[-1].cursor if batch else cursor, len(batch) == limit
        return await self._store.read_partition(cursor, self.partition, limit, tolerant=True)

    def _releasing(self) -> bool:
        return self._share is not None and self._share.must_release(self)

    async def _wait_for_news(
        self,
        probe: asyncpg.prepared_stmt.PreparedStatement,
        cursor: LogCursor,
        stop: asyncio.Event,
        *,
        save_by: float | None = None,
        flowing: bool = False,
    ) -> Woke:
        """Until the log has something past `cursor` ("news"), the checkpoint falls due at
        `save_by` (monotonic time), or `stop` is set. Probes every `relay_poll_s` while warm,
        else waits for the doorbell (see the module docstring). It starts with a pause, not a
        probe: the read before it returned everything readable, so a probe at once would mostly
        find nothing, a round trip spent for it. With `flowing` (the read before found events)
        it reads again after a shorter pause (_FLOWING_PAUSE_S) without probing first: while
        events flow, a probe mostly finds some, and the read that follows is a round trip the
        probe did not save."""
        settings = self._settings
        if flowing and time.monotonic() - self._news_at < settings.relay_warm_s:
            if await sleep_unless(stop, _FLOWING_PAUSE_S):
                return "stopped"
            return "news"
        while True:
            if self._releasing():
                return "news"  # back to the loop, which hands the partition over
            if save_by is not None and time.monotonic() >= save_by:
                return "checkpoint due"
            if time.monotonic() - self._news_at < settings.relay_warm_s:
                if await sleep_unless(stop, settings.relay_poll_s):
                    return "stopped"
            elif await self._doorbell_or_stop(stop):
                self._news_at = time.monotonic()  # rung: stay warm until the event is readable
            elif stop.is_set():
                return "stopped"
            if await self._has_news(probe, cursor):
                return "news"

    async def _doorbell_or_stop(self, stop: asyncio.Event) -> bool:
        """Whether the doorbell rang within `relay_idle_probe_s`; returns early if `stop` is set."""
        ring = asyncio.ensure_future(self._doorbell.wait(self._settings.relay_idle_probe_s))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((ring, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (ring, stopped):
                waiter.cancel()
        return ring.done() and not ring.cancelled() and ring.result()

    @property
    def probe_timeouts(self) -> int:
        """Idle probes the server cancelled (for tests)."""
        return self._probe_timed_out.count

    async def _has_news(
        self, probe: asyncpg.prepared_stmt.PreparedStatement, cursor: LogCursor
    ) -> bool:
        """Whether read_all past `cursor` would return something now. A probe the server cancels
        (statement_timeout: PostgreSQL starved, a lock queue) counts as "nothing new yet": the
        relay probes again after `relay_poll_s` instead of treating its connection as lost."""
        self.probes += 1
        try:
            return bool(await probe.fetchval(str(cursor.transaction_id), cursor.position))
        except asyncpg.QueryCanceledError:
            self._probe_timed_out()
            return False

    async def _publish(
        self, batch: Sequence[RecordedEvent], stop: asyncio.Event, entries: PendingEntries
    ) -> None:
        """PUBLISH every event to its task's and its tenant's channel, in one round trip; retry
        until Redis takes them (the checkpoint does not move meanwhile). Each message is signed
        for its channel (see infrastructure/hub.py): the hubs drop whatever is not.

        Each event's timeline entry is rendered from the same progress message and added to
        `entries`, which the next checkpoint stores (see _SAVE). A checkpoint that fails is a
        PostgreSQL outage like any other: the relay reconnects and publishes again from the
        last one, entries and all."""
        seal = self._seal
        messages = []
        for recorded in batch:
            if not is_task_stream(recorded.stream_id):
                continue  # an indicator stream's event: no task's progress (domain.indicators)
            message = progress_message(recorded)
            text = json.dumps(message)
            for channel in (
                seal.wire(task_channel(recorded.stream_id)),
                seal.wire(tenant_channel(recorded.metadata.tenant)),
            ):
                messages.append((channel, seal.seal(channel, text)))
            entries.add(recorded, render_entry(recorded, message))
        await self._publish_messages(messages, stop)
        self.published += len(batch)
        self.lag_seconds = (datetime.now(UTC) - batch[-1].recorded_at).total_seconds()

    async def _publish_messages(
        self, messages: list[tuple[str, bytes]], stop: asyncio.Event
    ) -> None:
        backoff = Backoff(most=self._settings.relay_backoff_max_s)
        while True:
            try:
                await self._bus.publish(messages)
            except (RedisError, OSError) as error:
                self._outage.down("Redis", error)
                if await sleep_unless(stop, backoff.next()):
                    raise _Stopped from None
                continue
            self._outage.up("Redis")
            return


async def close_connection(conn: asyncpg.Connection) -> None:
    """Close a relay connection (it ends the session: its locks go with it), or drop it."""
    try:
        await asyncio.wait_for(conn.close(), timeout=2)
    except (*POSTGRES_ERRORS, asyncio.CancelledError) as error:
        log.debug("relay: closing the lock connection failed (%r); terminating it", error)
        conn.terminate()
        if isinstance(error, asyncio.CancelledError):
            raise
