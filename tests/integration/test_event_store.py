"""What only the PostgreSQL event store has to guarantee: writers on many connections, appends
inside a caller's transaction, rows written by other code, lost connections. The contract every
store honours is tests/contract/test_event_store_contract.py."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from domain import events as ev
from domain.errors import ConcurrencyConflict, UnknownEventType
from infrastructure.database import create_engine
from infrastructure.event_store import EventStore
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from tests.factories import new, progress, submitted
from tests.waiting import readable

pytestmark = pytest.mark.integration


async def store_foreign_event(store: EventStore, sid: str, version: int, type_name: str) -> None:
    """A row as a newer (or older) writer might have stored it: a type this code does not know."""
    async with store.transaction() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO events (stream_id, version, event_id, type, data, metadata)"
                ' VALUES (:s, :v, :id, :type, \'{}\', \'{"tenant": "t", "actor": "a"}\')'
            ),
            {"s": sid, "v": version, "id": uuid.uuid4(), "type": type_name},
        )


def stream() -> str:
    return f"task-{uuid.uuid4()}"


async def test_fifty_concurrent_writers_one_winner_per_version(settings: Settings) -> None:
    writers = 50
    engine = create_engine(settings, pool_size=writers)
    store, sid = EventStore(engine), stream()
    try:
        await store.append(sid, [submitted()], 0)
        barrier = asyncio.Barrier(writers)

        async def race(expected: int) -> bool:
            await barrier.wait()
            try:
                await store.append(sid, [progress()], expected)
                return True
            except ConcurrencyConflict:
                return False

        # Round 1: everybody claims version 2 at once; exactly one gets it.
        outcomes = await asyncio.gather(*(race(1) for _ in range(writers)))
        assert outcomes.count(True) == 1

        # Then every writer retries from the version it reads until its event lands.
        conflicts = 0

        async def append_until_stored(i: int) -> None:
            nonlocal conflicts
            event = new(ev.ProgressReported(message=f"writer {i}", percent=50))
            while True:
                try:
                    await store.append(sid, [event], await store.stream_version(sid))
                    return
                except ConcurrencyConflict:
                    conflicts += 1

        await asyncio.gather(*(append_until_stored(i) for i in range(writers)))
        recorded = await store.read_stream(sid)
        assert [r.version for r in recorded] == list(range(1, 2 + 1 + writers))
        messages = [r.event.message for r in recorded[2:]]  # type: ignore[attr-defined]
        assert sorted(messages) == sorted(f"writer {i}" for i in range(writers))
        assert conflicts > 0
    finally:
        await engine.dispose()


async def test_concurrent_retries_of_one_batch_store_it_once(store: EventStore) -> None:
    sid = stream()
    batch = [submitted()]
    results = await asyncio.gather(*(store.append(sid, batch, 0) for _ in range(5)))
    assert sorted(r.stored for r in results) == [False] * 4 + [True]
    assert len(await store.read_stream(sid)) == 1


async def test_an_append_inside_a_rolled_back_transaction_leaves_nothing(store: EventStore) -> None:
    sid = stream()
    with pytest.raises(RuntimeError):
        async with store.transaction() as conn:
            await store.append(sid, [submitted(), progress()], 0, conn=conn)
            raise RuntimeError("the projection update failed")
    assert await store.read_stream(sid) == []


async def test_unknown_event_type_on_read_names_the_type(store: EventStore) -> None:
    sid = stream()
    await store.append(sid, [submitted()], 0)
    await store_foreign_event(store, sid, 2, "ParcelTeleported")
    with pytest.raises(UnknownEventType, match=r"'ParcelTeleported' at .* version 2"):
        await store.read_stream(sid)
    assert len(await store.read_stream(sid, limit=1)) == 1


async def test_the_store_recovers_when_postgresql_drops_its_connections(store: EventStore) -> None:
    sid = stream()
    # Fill the pool with live connections, which the kill below turns into dead ones.
    await asyncio.gather(*(store.append(f"{sid}-{i}", [submitted()], 0) for i in range(5)))
    await store.append(sid, [submitted()], 0)
    await kill_every_other_backend(store)

    # The first read and the first append after the loss both reconnect by themselves.
    assert [r.version for r in await store.read_stream(sid)] == [1]
    await store.append(sid, [progress()], 1)
    assert [r.version for r in await store.read_stream(sid)] == [1, 2]


async def test_a_task_append_recovers_when_postgresql_drops_its_connections(
    store: EventStore,
) -> None:
    """The worker's append (a transaction of its own on a plain asyncpg connection) on a pool
    of dead connections: tried once more on a new one, and the task's row follows."""
    task_log, sid = TaskLog(store), stream()
    await asyncio.gather(*(task_log.append(f"{sid}-{i}", [submitted()], 0) for i in range(5)))
    await task_log.append(sid, [submitted()], 0)
    await kill_every_other_backend(store)

    await task_log.append(sid, [progress()], 1)
    assert [r.version for r in await store.read_stream(sid)] == [1, 2]
    state = await task_log.task(sid)
    assert state is not None and state.version == 2


async def kill_every_other_backend(store: EventStore) -> None:
    killer = create_engine(Settings(database_url=str(store._engine.url)), pool_size=1)
    try:
        async with killer.connect() as conn:
            killed = await conn.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert killed
    finally:
        await killer.dispose()


async def test_a_tolerant_global_read_passes_an_unreadable_event_on(store: EventStore) -> None:
    sid = stream()
    await store.append(sid, [submitted()], 0)
    await store_foreign_event(store, sid, 2, "FromTheFuture")
    await readable(store, await store.append(sid, [progress()], 2))

    with pytest.raises(UnknownEventType):
        await store.read_all()
    _, odd, third = await store.read_all(tolerant=True)
    assert isinstance(odd.event, ev.UnreadableEvent)
    assert (odd.version, odd.event.original_type) == (2, "FromTheFuture")
    assert third.version == 3, "the reader carries on past it"


async def test_a_tolerant_global_read_passes_unreadable_metadata_on(store: EventStore) -> None:
    """Metadata this code cannot read (no actor): the strict read says so; the relay's tolerant
    read passes the row on under the empty tenant, whose channel nobody can follow, instead of
    stopping at it for good (every relay in turn once did)."""
    sid = stream()
    await store.append(sid, [submitted()], 0)
    async with store.transaction() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO events (stream_id, version, event_id, type, data, metadata)"
                ' VALUES (:s, 2, :id, \'ProgressReported\', \'{"message": "x", "percent": 5}\','
                ' \'{"tenant": "t"}\')'
            ),
            {"s": sid, "id": uuid.uuid4()},
        )
    await readable(store, await store.append(sid, [progress()], 2))
    with pytest.raises(ValidationError):
        await store.read_all()
    _, odd, third = await store.read_all(tolerant=True)
    assert isinstance(odd.event, ev.UnreadableEvent) and odd.metadata.tenant == ""
    assert third.version == 3, "the reader carries on past it"


async def test_overflow_connections_are_returned_cleanly(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A burst beyond the pool size opens overflow connections; returning them closes them,
    which must happen inside SQLAlchemy's greenlet (else: MissingGreenlet, a leaked socket)."""
    engine = create_engine(settings, pool_size=1)  # max_overflow = pool_size
    store = EventStore(engine)
    try:
        with caplog.at_level(logging.ERROR, logger="sqlalchemy.pool"):
            for _ in range(3):
                await asyncio.gather(*(store.stream_version(stream()) for _ in range(4)))
        assert not [r for r in caplog.records if "closing connection" in r.getMessage()]
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
