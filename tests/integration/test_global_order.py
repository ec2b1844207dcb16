"""`read_all` never skips an event that commits late.

A naive reader (`WHERE global_position > :last ORDER BY global_position`) does: a transaction
that took position 1 can commit after one that took position 2, and a reader that already moved
its cursor past 2 never returns to 1. Both tests below run the naive reader beside the store's,
in the same scenario, and assert that the naive one loses events: the scenario really is the
dangerous one, and the store's reader survives it.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.log import LOG_START
from infrastructure.event_store import EventStore
from tests.factories import progress, submitted
from tests.waiting import readable

pytestmark = pytest.mark.integration


class NaiveReader:
    """The wrong way, kept here to prove the scenario would catch it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine, self.last, self.seen = engine, 0, list[uuid.UUID]()

    async def poll(self) -> None:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT global_position, event_id FROM events"
                        " WHERE global_position > :last ORDER BY global_position"
                    ),
                    {"last": self.last},
                )
            ).all()
        for row in rows:
            self.seen.append(row.event_id)
            self.last = row.global_position


class StoreReader:
    def __init__(self, store: EventStore) -> None:
        self.store, self.cursor, self.seen = store, LOG_START, list[uuid.UUID]()

    async def poll(self) -> None:
        for recorded in await self.store.read_all(self.cursor, limit=200):
            assert recorded.cursor > self.cursor
            self.seen.append(recorded.event_id)
            self.cursor = recorded.cursor


async def all_event_ids(engine: AsyncEngine) -> set[uuid.UUID]:
    async with engine.connect() as conn:
        return set((await conn.execute(sa.text("SELECT event_id FROM events"))).scalars())


async def test_an_event_that_commits_late_is_not_skipped(store: EventStore) -> None:
    engine = store._engine
    naive, reader = NaiveReader(engine), StoreReader(store)

    async with store.transaction() as slow:
        held = await store.append("slow", [submitted()], 0, conn=slow)  # takes position 1
        fast = await store.append("fast", [submitted()], 0)  # takes position 2, commits first
        await naive.poll()
        await reader.poll()
        assert held.positions == (1,)
        assert len(naive.seen) == 1  # the naive reader moved its cursor past position 1 ...
        assert reader.seen == []  # ... the store's reader waits for the older transaction
    await readable(store, held, fast)  # and any other transaction on a busy server
    await naive.poll()
    await reader.poll()

    assert len(naive.seen) == 1, "the naive reader never sees position 1"
    assert set(reader.seen) == await all_event_ids(engine)
    assert len(reader.seen) == 2


async def test_polling_reader_gets_every_event_exactly_once_under_load(store: EventStore) -> None:
    engine, rng = store._engine, random.Random(7)
    naive, reader = NaiveReader(engine), StoreReader(store)
    writing = True

    async def writer(name: str, hold_s: float, appends: int) -> None:
        for i in range(appends):
            sid = f"{name}-{i}"
            async with store.transaction() as conn:
                await store.append(sid, [submitted(), progress()], 0, conn=conn)
                if hold_s:
                    # Hold the commit open after inserting: quicker writers overtake it.
                    await asyncio.sleep(rng.uniform(0, hold_s))

    async def poll_until_writers_stop() -> None:
        while writing:
            await reader.poll()
            await naive.poll()
            await asyncio.sleep(0)

    started = time.monotonic()
    polling = asyncio.create_task(poll_until_writers_stop())
    await asyncio.gather(
        *(writer(f"slow{n}", 0.03, 25) for n in range(3)),
        *(writer(f"fast{n}", 0.0, 80) for n in range(4)),
    )
    writing = False
    await polling
    await reader.poll()  # the final drain, after every writer committed
    await naive.poll()

    committed = await all_event_ids(engine)
    assert len(committed) == 2 * (3 * 25 + 4 * 80)
    assert len(reader.seen) == len(set(reader.seen)), "an event was delivered twice"
    assert set(reader.seen) == committed, "an event was skipped"
    missed_by_naive = committed - set(naive.seen)
    assert missed_by_naive, "the scenario did not produce a late commit; it proves nothing"
    print(
        f"{len(committed)} events in {time.monotonic() - started:.1f}s;"
        f" naive reader missed {len(missed_by_naive)}, store reader missed 0"
    )


async def test_transaction_ids_are_ordered_as_numbers_not_as_text(
    clean_database: AsyncEngine,
) -> None:
    """Transaction ids 95..104 straddle a change in digit count: as text, '100' < '95'. Read in
    batches of 3, every event comes back once and in log order. (Sorted by the text form of the
    id, the first batch would be 100, 101, 102, and 95..99 would never be read.)"""
    store = EventStore(clean_database)
    async with clean_database.begin() as conn:
        for xid in range(95, 105):  # every one long finished, so below any snapshot's xmin
            await conn.execute(
                sa.text(
                    "INSERT INTO events (stream_id, version, event_id, type, data, metadata,"
                    " transaction_id) VALUES ('digits', :v, :id, 'TaskSubmitted',"
                    ' \'{"content": "x", "kind": "sms"}\', \'{"tenant": "t", "actor": "a"}\','
                    " CAST(:xid AS text)::xid8)"
                ),
                {"v": xid - 94, "id": uuid.uuid4(), "xid": str(xid)},
            )
    read, cursor = [], LOG_START
    while batch := await store.read_all(cursor, limit=3):
        read += [event.cursor.transaction_id for event in batch]
        cursor = batch[-1].cursor
    assert read == list(range(95, 105))
