"""The relay on real PostgreSQL and Redis: order, checkpoint, one active relay, late commits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

import asyncpg
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.event_store import EventStore
from infrastructure.progress_bus import ProgressBus
from infrastructure.relay import PROBE_SQL, Relay, lock_connection_settings
from infrastructure.settings import Settings
from tests.factories import progress, submitted
from tests.waiting import eventually, stays_quiet

pytestmark = pytest.mark.integration


class Listener:
    """Every message published on the channels of tasks whose id starts with `prefix`."""

    def __init__(self, redis: Redis, prefix: str, channel_prefix: str = "") -> None:
        self.pubsub = redis.pubsub()
        self.prefix, self.channel_prefix = prefix, channel_prefix
        self.messages: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pubsub.psubscribe(f"{self.channel_prefix}agent_progress:{self.prefix}*")
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] == "pmessage":
                self.messages.append(json.loads(message["data"]))

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]

    async def wait_for(self, count: int, within: float = 10.0) -> None:
        await eventually(
            lambda: len(self.messages) >= count,
            within=within,
            what=f"{count} messages published (have {len(self.messages)})",
        )


@pytest.fixture
async def listener(redis: Redis) -> AsyncIterator[Listener]:
    found = Listener(redis, f"relay-{uuid.uuid4().hex[:8]}-")
    await found.start()
    yield found
    await found.stop()


class Runs(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


@contextlib.asynccontextmanager
async def running(relay: Runs) -> AsyncIterator[asyncio.Event]:
    """`relay` (a Relay, a RelayGroup) running until the block ends; the block gets its stop."""
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def relay_settings(settings: Settings, **overrides: Any) -> Settings:
    base = {"relay_lock_retry_s": 0.1, "relay_checkpoint_s": 0.0}
    return settings.model_copy(update={**base, **overrides})


async def checkpoint(store: EventStore) -> tuple[str, int] | None:
    async with store.transaction() as conn:
        row = (
            await conn.execute(sa.text("SELECT log_cursor, published_total FROM relay_checkpoints"))
        ).first()
    return None if row is None else (row.log_cursor, row.published_total)


async def test_publishes_every_event_in_order_and_checkpoints(
    store: EventStore, redis: Redis, listener: Listener, settings: Settings
) -> None:
    tasks = [f"{listener.prefix}{i}" for i in range(5)]
    for task in tasks:
        await store.append(task, [submitted(), progress(20), progress(40)], 0)
    relay = Relay(relay_settings(settings), store, redis)
    async with running(relay):
        await listener.wait_for(15)
        await store.append(tasks[0], [progress(60)], 3)  # after the relay went idle: a wake-up
        await listener.wait_for(16)
    by_task: dict[str, list[int]] = {}
    for message in listener.messages:
        by_task.setdefault(message["task_id"], []).append(message["seq"])
    assert by_task == {t: [1, 2, 3, 4] if t == tasks[0] else [1, 2, 3] for t in tasks}
    saved = await checkpoint(store)
    assert saved is not None and saved[1] == 16
    last = (await store.read_all(limit=100))[-1]
    assert saved[0] == str(last.cursor)

    # A new relay resumes from the checkpoint: it publishes only what came after.
    await store.append(tasks[1], [progress(60)], 3)
    async with running(Relay(relay_settings(settings), store, redis)):
        await listener.wait_for(17)
        # The relay publishes what it read in one batch, within milliseconds of reading it:
        # anything from before the checkpoint would have followed the 17th message by now.
        await stays_quiet(
            lambda: len(listener.messages) > 17, for_s=0.3, what="a republished message"
        )
    assert len(listener.messages) == 17
    assert listener.messages[-1]["task_id"] == tasks[1] and listener.messages[-1]["seq"] == 4


async def test_one_relay_is_active_and_a_standby_takes_over(
    store: EventStore, redis: Redis, listener: Listener, settings: Settings
) -> None:
    task = f"{listener.prefix}t"
    await store.append(task, [submitted()], 0)
    first = Relay(relay_settings(settings), store, redis)
    second = Relay(relay_settings(settings), store, redis)
    async with running(first) as stop_first:
        await eventually(lambda: first.active, within=5, what="the first relay active")
        async with running(second):
            await listener.wait_for(1)
            # The second retries the lock every 0.1 s (relay_lock_retry_s): three tries.
            await stays_quiet(
                lambda: second.active or not first.active,
                for_s=0.3,
                what="the standby took over from an active relay",
            )
            stop_first.set()  # the first goes away; its lock goes with its connection
            loop = asyncio.get_running_loop()
            started = loop.time()
            await eventually(lambda: second.active, within=5, what="the standby active")
            assert loop.time() - started < 2
            await store.append(task, [progress()], 1)
            await listener.wait_for(2)
    assert [m["seq"] for m in listener.messages] == [1, 2]


async def test_an_event_that_commits_late_is_published_not_skipped(
    store: EventStore, redis: Redis, listener: Listener, settings: Settings
) -> None:
    slow, fast = f"{listener.prefix}slow", f"{listener.prefix}fast"
    async with running(Relay(relay_settings(settings), store, redis)):
        async with store.transaction() as conn:
            await store.append(slow, [submitted()], 0, conn=conn)  # takes the lower position
            await store.append(fast, [submitted()], 0)  # commits first
            # Held back behind the open transaction. An idle relay probes every few ms
            # (relay_poll_s), so 0.3 s is dozens of chances to publish too early.
            await stays_quiet(
                lambda: listener.messages, for_s=0.3, what="published past an open transaction"
            )
        await listener.wait_for(2)
    assert sorted(m["task_id"] for m in listener.messages) == [fast, slow]


async def test_relay_rides_out_a_redis_outage(
    store: EventStore, redis: Redis, listener: Listener, settings: Settings
) -> None:
    task = f"{listener.prefix}t"
    await store.append(task, [submitted()], 0)
    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    relay = Relay(relay_settings(settings, relay_backoff_max_s=0.1), store, broken)
    async with running(relay):
        # Connecting to the broken Redis fails within its 0.2 s connect timeout, then the
        # relay backs off at most 0.1 s: 0.5 s is several failed attempts.
        await stays_quiet(lambda: relay.published, for_s=0.5, what="published to no Redis")
        assert await checkpoint(store) is None  # nothing published, nothing checkpointed
        relay._bus = ProgressBus(settings, redis)  # Redis "comes back"
        await listener.wait_for(1)
    await broken.aclose()


async def test_the_idle_probe_reads_the_index_not_the_table(engine: AsyncEngine) -> None:
    """An idle relay probes every 5 ms. A probe that read the whole events table (a sequential
    scan) would cost 9 ms and 70% of a PostgreSQL core at 71,000 events. The plan must stay an
    index lookup however large the log grows: checked on a scratch copy of the table with
    50,000 rows, analysed so that the planner sees its real size."""
    schema = f"probe_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        try:
            await conn.execute(sa.text(f"SET LOCAL search_path TO {schema}"))
            await conn.execute(sa.text("CREATE TABLE events (LIKE public.events INCLUDING ALL)"))
            await conn.execute(
                sa.text(
                    "INSERT INTO events (global_position, stream_id, version, event_id, type,"
                    " data, metadata, transaction_id)"
                    " SELECT i, 't' || (i % 100), i, gen_random_uuid(), 'ProgressReported',"
                    " '{}', '{}', (1000 + i / 3)::text::xid8"
                    " FROM generate_series(1, 50000) AS i"
                )
            )
            await conn.execute(sa.text("ANALYZE events"))
            # The relay's prepared statement: PostgreSQL plans its first executions for their
            # values, then may switch to a generic plan. Both must use the index. The idle
            # case: the cursor is at the last row.
            await conn.exec_driver_sql(f"PREPARE probe (text, bigint) AS {PROBE_SQL}")
            plans = []
            for mode in ("force_custom_plan", "force_generic_plan"):
                await conn.exec_driver_sql(f"SET LOCAL plan_cache_mode = {mode}")
                explain = f"EXPLAIN (FORMAT JSON) EXECUTE probe ('{1000 + 50000 // 3}', 50000)"
                plans.append(json.dumps((await conn.exec_driver_sql(explain)).scalar_one()))
            await conn.exec_driver_sql("DEALLOCATE probe")
        finally:
            await conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    for plan in plans:
        assert "Seq Scan" not in plan, plan
        assert "Index Only Scan" in plan, plan


async def test_the_probe_plan_cannot_degrade_with_statistics(settings: Settings) -> None:
    """On the relay's lock connection the probe is an index scan whatever the planner believes:
    here a log that was empty when analysed (and when the probe was prepared) and then filled with
    100,000 rows without ANALYZE, as after a TRUNCATE and a refill. Both the custom and the
    generic plan, from the log's start and from its end."""
    url = sa.engine.make_url(settings.database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(
        url.render_as_string(hide_password=False),
        server_settings=lock_connection_settings(settings),
    )
    schema = f"probe_{uuid.uuid4().hex[:8]}"
    try:
        async with conn.transaction():  # nothing is visible to autovacuum until it commits
            await conn.execute(f"CREATE SCHEMA {schema}; SET LOCAL search_path TO {schema}")
            await conn.execute("SET LOCAL statement_timeout = 0")  # for the setup, not the pins
            await conn.execute("CREATE TABLE events (LIKE public.events INCLUDING ALL)")
            await conn.execute("ANALYZE events")  # statistics of an empty log
            probe = await conn.prepare(PROBE_SQL)
            for _ in range(6):  # past the custom plans PostgreSQL tries before a generic one
                assert await probe.fetchval("0", 0) is False
            await conn.execute(
                "INSERT INTO events (global_position, stream_id, version, event_id, type, data,"
                " metadata, transaction_id)"
                " SELECT i, 't' || (i % 100), i, gen_random_uuid(), 'ProgressReported', '{}',"
                " '{}', (10 + i / 1000)::text::xid8 FROM generate_series(1, 100000) AS i"
            )
            await conn.execute(f"PREPARE probe (text, bigint) AS {PROBE_SQL}")
            plans = []
            for mode in ("force_custom_plan", "force_generic_plan"):
                await conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
                for args in ("'0', 0", f"'{10 + 100000 // 1000}', 100000"):
                    explain = f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE probe ({args})"
                    plans.append(json.dumps(await conn.fetchval(explain)))
            assert await probe.fetchval("0", 0) is True
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await conn.close()
    for plan in plans:
        assert "Seq Scan" not in plan and '"Sort"' not in plan, plan
        assert "Index Only Scan" in plan, plan


async def test_a_probe_that_runs_long_counts_as_nothing_new_yet(
    store: EventStore, redis: Redis, listener: Listener, settings: Settings
) -> None:
    """A probe stuck behind a lock (here an ACCESS EXCLUSIVE lock on the log, as a TRUNCATE or
    a migration takes) is cancelled by the server after relay_probe_timeout_s; the relay stays
    the active one, keeps its connection and its lock, and publishes once the log is free."""
    task = f"{listener.prefix}t"
    relay = Relay(relay_settings(settings, relay_probe_timeout_s=0.1), store, redis)
    async with running(relay):
        # Idle, probing: the lock below lands on a probe, not on the relay's first read.
        await eventually(lambda: relay.active and relay.probes, within=5, what="relay idle")
        async with store.transaction() as conn:
            await conn.execute(sa.text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
            # The relay stays active all the while: 1 s is ten probe timeouts (0.1 s each).
            await stays_quiet(
                lambda: not relay.active, for_s=1.0, what="the relay gave up behind a locked log"
            )
        assert relay.probe_timeouts >= 2
        assert relay.active
        await store.append(task, [submitted()], 0)
        await listener.wait_for(1)


class Blackhole:
    """A TCP proxy to PostgreSQL that can go silent: no RST, no FIN, nothing forwarded, the way
    a NAT that dropped its entry or a failover black hole looks to a client. `close` ends every
    connection it carried, so the server's backend (and the advisory lock it holds) goes too."""

    def __init__(self) -> None:
        self.silent = False
        self.server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
            server_r, server_w = await asyncio.open_connection(host, port)
            self._writers += [client_w, server_w]

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                while data := await src.read(65536):
                    if self.silent:
                        await asyncio.Event().wait()  # swallowed: never forwarded, never closed
                    dst.write(data)
                    await dst.drain()

            for task in (pipe(client_r, server_w), pipe(server_r, client_w)):
                piping = asyncio.create_task(task)
                self._pipes.add(piping)
                piping.add_done_callback(self._pipes.discard)

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        bound: int = self.server.sockets[0].getsockname()[1]
        return bound

    @property
    def server_ports(self) -> set[int]:
        """The local ports of its connections to PostgreSQL (`client_port` on the server)."""
        return {w.get_extra_info("sockname")[1] for w in self._writers[1::2]}

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for piping in list(self._pipes):
            piping.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        for writer in self._writers:
            writer.transport.abort()  # at once: nothing it holds is still owed to anyone


async def test_a_half_open_lock_connection_is_given_up_not_waited_on(
    settings: Settings, redis: Redis, store: EventStore
) -> None:
    """The relay's lock connection goes silent. Its statements time out: the relay stops
    calling itself active, keeps trying to rejoin, and stops when asked, rather than waiting on
    the probe forever, "active", publishing nothing, deaf to stop."""
    url = sa.engine.make_url(settings.database_url)
    hole = Blackhole()
    port = await hole.start(url.host or "127.0.0.1", url.port or 5432)
    through_hole = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    relay = Relay(
        relay_settings(
            settings,
            database_url=through_hole,
            relay_name=f"hole-{uuid.uuid4().hex[:8]}",
            relay_statement_timeout_s=0.5,
            relay_backoff_max_s=0.2,
        ),
        store,  # the log itself is read on the direct path: only the lock connection is cut
        redis,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await eventually(lambda: relay.active, within=5, what="the relay active")
        hole.silent = True
        await eventually(lambda: not relay.active, within=5, what="the relay gave up the lock")
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        stop.set()
        task.cancel()
        ports = hole.server_ports
        await hole.close()

    async def backends_through_the_hole() -> list[int]:
        async with store.transaction() as conn:
            query = sa.text("SELECT client_port FROM pg_stat_activity WHERE client_port = ANY(:p)")
            return list((await conn.execute(query, {"p": list(ports)})).scalars())

    # Closing the proxy ends the backends it carried (the lock connection's among them).
    await eventually(
        backends_through_the_hole,
        until=lambda left: not left,
        within=5,
        what="the backends behind the proxy gone",
    )
