"""The partitioned relay on real PostgreSQL and Redis: the partitions split the log (each task in
one, in order), relay processes share them evenly, and the partitions of one that goes away are
taken over within a second or so, with no event lost.

Two `RelayGroup`s in this process stand for two relay processes: each has its own PostgreSQL
sessions (its locks, its member connection), which is all that tells processes apart here.
The chaos suite kills a real one (tests/chaos)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from domain.log import LOG_START, LogCursor, RecordedEvent
from infrastructure.event_store import EventStore
from infrastructure.relay import Relay, published_up_to
from infrastructure.relay_group import RelayGroup
from infrastructure.relay_partitions import Partition, partitions
from infrastructure.settings import Settings
from tests.factories import progress, submitted
from tests.integration.test_relay import Listener, running
from tests.integration.test_relay import listener as listener  # a fixture: its relay's channels
from tests.waiting import eventually, stays_quiet

pytestmark = pytest.mark.integration


def partitioned(settings: Settings, count: int, **overrides: Any) -> Settings:
    base = {"relay_partitions": count, "relay_lock_retry_s": 0.1, "relay_checkpoint_s": 0.0}
    return settings.model_copy(update={**base, **overrides})


async def read_whole(store: EventStore, partition: Partition) -> tuple[list[RecordedEvent], int]:
    """Every event of the partition, read 7 at a time as the relay reads; and the reads made."""
    cursor, reads = LOG_START, 0
    found: list[RecordedEvent] = []
    while True:
        batch, cursor_after, _ = await store.read_partition(cursor, partition, limit=7)
        reads += 1
        if cursor_after == cursor:
            return found, reads
        found += batch
        cursor = cursor_after


async def test_the_partitions_split_the_log_each_task_whole_and_in_order(
    store: EventStore,
) -> None:
    for i in range(40):
        await store.append(f"split-{i}", [submitted(), progress(30)], 0)
    for i in range(0, 40, 3):
        await store.append(f"split-{i}", [progress(60)], 2)
    # Readable once every transaction older than the appends has ended, anywhere in the cluster.
    everything = await eventually(
        lambda: store.read_all(limit=1000), until=lambda found: len(found) == 94, within=30
    )
    seen: dict[tuple[str, int], int] = {}
    for partition in partitions(4):
        events, reads = await read_whole(store, partition)
        # Read past the other partitions' events too: the log is 94 events, 7 at a time.
        assert reads == 94 // 7 + 2
        for event in events:
            assert (event.stream_id, event.version) not in seen
            seen[(event.stream_id, event.version)] = partition.index
        cursors = [e.cursor for e in events]
        assert cursors == sorted(cursors)  # log order, so each task's events in order
    assert set(seen) == {(e.stream_id, e.version) for e in everything}
    by_task: dict[str, set[int]] = {}
    for (task, _), index in seen.items():
        by_task.setdefault(task, set()).add(index)
    assert all(len(indexes) == 1 for indexes in by_task.values())  # a task in one partition
    assert len(set(seen.values())) == 4  # and 40 tasks in all four


async def test_relay_processes_share_the_partitions_and_take_over_one_that_goes(
    store: EventStore, redis: Redis, listener: Listener, settings: Settings
) -> None:
    tasks = [f"{listener.prefix}{i}" for i in range(20)]
    for task in tasks:
        await store.append(task, [submitted()], 0)
    versions = dict.fromkeys(tasks, 1)

    async def more() -> None:
        for task in tasks:
            await store.append(task, [progress()], versions[task])
            versions[task] += 1

    first = RelayGroup(partitioned(settings, 4), store, redis)
    second = RelayGroup(partitioned(settings, 4), store, redis)
    async with running(first) as stop_first:
        await eventually(lambda: len(first.held()) == 4, within=5, what="one relay holds all")
        await more()
        async with running(second):
            await eventually(
                lambda: (
                    sorted(first.held() + second.held()) == [0, 1, 2, 3]
                    and len(first.held()) == len(second.held()) == 2
                ),
                within=5,
                what="two relays, two partitions each",
            )
            await more()
            stop_first.set()
            loop = asyncio.get_running_loop()
            gone = loop.time()
            await eventually(lambda: len(second.held()) == 4, within=5, what="the takeover")
            took = loop.time() - gone
            await more()
            await listener.wait_for(len(tasks) * 4, within=30)
            # Each partition's checkpoint passes the log's last event, whoever's it is, once
            # its relay has read that far (a relay saves when due, not with every message).
            last = (await store.read_all())[-1]
            await eventually(
                lambda: published_up_to(store, settings.relay_name, 4),
                until=lambda cursor: cursor == last.cursor,
                within=10,
                what="every partition's checkpoint at the log's end",
            )
    assert took < 1.5, f"the partitions were taken over after {took:.2f} s"
    by_task: dict[str, list[int]] = {}
    for message in listener.messages:
        by_task.setdefault(message["task_id"], []).append(message["seq"])
    for task, seqs in by_task.items():
        first_seen = list(dict.fromkeys(seqs))  # a handover may repeat one; never lose one
        assert first_seen == [1, 2, 3, 4], (task, seqs)
    assert set(by_task) == set(tasks)
    assert await published_up_to(store, settings.relay_name, 4) == last.cursor, "and kept"


async def test_a_partition_starts_from_the_whole_log_checkpoint_it_replaces(
    store: EventStore, redis: Redis, listener: Listener, settings: Settings
) -> None:
    """A deployment that goes from one relay partition to four: the new partitions start from
    the old checkpoint, not from the log's start (nothing published twice in bulk)."""
    task = f"{listener.prefix}t"
    await store.append(task, [submitted(), progress(30)], 0)
    async with running(Relay(partitioned(settings, 1), store, redis)):
        await listener.wait_for(2)
    assert await published_up_to(store, settings.relay_name) == (await store.read_all())[-1].cursor
    async with running(RelayGroup(partitioned(settings, 4), store, redis)):
        await store.append(task, [progress(60)], 2)
        await listener.wait_for(3)
        await stays_quiet(  # a republish of seqs 1 and 2 would follow at once
            lambda: len(listener.messages) > 3, for_s=0.3, what="a republished event"
        )
        # Every partition checkpoints once it is active; on a loaded machine a partition's
        # first connection can take longer than the checks above.
        expected = sorted(["relay", *(f"relay#{i}/4" for i in range(4))])
        await eventually(
            lambda: checkpoint_names(store), until=lambda names: names == expected, within=10,
            what="a checkpoint for every partition",
        )  # fmt: skip
    assert [m["seq"] for m in listener.messages] == [1, 2, 3]


async def checkpoint_names(store: EventStore) -> list[str]:
    async with store.transaction() as conn:
        return sorted((await conn.scalars(sa.text("SELECT name FROM relay_checkpoints"))).all())


async def test_published_up_to_waits_for_every_partition(
    store: EventStore, settings: Settings
) -> None:
    async with store.transaction() as conn:
        for i, cursor in enumerate(["9-9", "5-5", "7-7"]):
            await conn.execute(
                sa.text("INSERT INTO relay_checkpoints (name, log_cursor) VALUES (:n, :c)"),
                {"n": f"relay#{i}/4", "c": cursor},
            )
    assert await published_up_to(store, "relay", 4) == LOG_START  # partition 3 not yet
    async with store.transaction() as conn:
        await conn.execute(
            sa.text("INSERT INTO relay_checkpoints (name, log_cursor) VALUES ('relay#3/4', '8-1')")
        )
    assert await published_up_to(store, "relay", 4) == LogCursor(5, 5)
