"""Append throughput: the event store against plain asyncpg INSERTs of the same rows, same run.

Prints JSON. Each writer appends to streams of its own (tasks are separate streams), so the
comparison shows what the store costs — the version guard, idempotency, the xid8 ordering column
— and whether anything serializes writers across streams (it must not: 8 writers should reach at
least 0.8x the plain-insert rate).

    python benchmarks/append.py [--seconds 2] [--runs 3]

Uses SCAMTRAIL_TEST_DATABASE_URL or SCAMTRAIL_DATABASE_URL, with the database name replaced by
`scamtrail_bench` (created and migrated here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg

from benchmarks.common import as_text, bench_database
from domain.events import ProgressReported
from domain.log import EventMetadata, NewEvent
from infrastructure.database import create_engine, migrate
from infrastructure.event_store import EventStore
from infrastructure.settings import load_settings

METADATA = EventMetadata(tenant="bench", actor="bench")


def batch(size: int) -> list[NewEvent]:
    return [
        NewEvent(ProgressReported(message="checking scam database", percent=35), METADATA)
        for _ in range(size)
    ]


async def rate(writers: int, seconds: float, append_one: Callable[[int], Awaitable[int]]) -> float:
    """Events per second with `writers` concurrent loops, each calling append_one(writer)."""
    deadline = time.perf_counter() + seconds
    counts = [0] * writers

    async def loop(w: int) -> None:
        while time.perf_counter() < deadline:
            counts[w] += await append_one(w)

    started = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(writers)))
    return sum(counts) / (time.perf_counter() - started)


async def store_rate(store: EventStore, writers: int, size: int, seconds: float) -> float:
    names = [f"bench-{uuid.uuid4()}" for _ in range(writers)]
    versions = [0] * writers

    async def append_one(w: int) -> int:
        result = await store.append(names[w], batch(size), versions[w])
        versions[w] = result.last_version
        if versions[w] >= 1000:  # keep streams task-sized
            names[w], versions[w] = f"bench-{uuid.uuid4()}", 0
        return size

    return await rate(writers, seconds, append_one)


PLAIN_INSERT = (
    "INSERT INTO bench_plain (stream_id, version, event_id, type, data, metadata)"
    " VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)"
)


async def plain_rate(pool: asyncpg.Pool, writers: int, size: int, seconds: float) -> float:
    versions = [0] * writers
    names = [f"plain-{uuid.uuid4()}" for _ in range(writers)]

    async def append_one(w: int) -> int:
        rows = []
        for event in batch(size):
            versions[w] += 1
            rows.append(
                (
                    names[w],
                    versions[w],
                    event.event_id,
                    event.type,
                    json.dumps(event.data()),
                    event.metadata.model_dump_json(),
                )
            )
        async with pool.acquire() as conn:
            if size == 1:
                await conn.execute(PLAIN_INSERT, *rows[0])
            else:
                await conn.executemany(PLAIN_INSERT, rows)  # one transaction, like a batch
        return size

    return await rate(writers, seconds, append_one)


async def main(seconds: float, runs: int) -> None:
    url = bench_database()
    database_url = as_text(url)
    await migrate(database_url)
    plain_url = as_text(url, driver="postgresql")
    pool = await asyncpg.create_pool(plain_url, min_size=8, max_size=8)
    # The same shape, defaults (xid8 included) and indexes as `events`, without the store.
    await pool.execute("DROP TABLE IF EXISTS bench_plain")
    await pool.execute(
        "CREATE TABLE bench_plain (LIKE events INCLUDING ALL);TRUNCATE events CASCADE"
    )
    engine = create_engine(load_settings(database_url=database_url), pool_size=8)
    store = EventStore(engine)

    results = []
    for writers in (1, 8):
        for size in (1, 10):
            store_runs, plain_runs = [], []
            for _ in range(runs):  # alternate, so drift on the machine hits both alike
                plain_runs.append(await plain_rate(pool, writers, size, seconds))
                store_runs.append(await store_rate(store, writers, size, seconds))
            store_eps, plain_eps = statistics.median(store_runs), statistics.median(plain_runs)
            results.append(
                {
                    "writers": writers,
                    "batch_size": size,
                    "store_events_per_s": round(store_eps),
                    "plain_insert_events_per_s": round(plain_eps),
                    "ratio": round(store_eps / plain_eps, 3),
                }
            )
    await pool.execute("DROP TABLE bench_plain")
    await pool.close()
    await engine.dispose()
    target = min(r["ratio"] for r in results if r["writers"] == 8)
    report = {
        "benchmark": "append",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "seconds_per_run": seconds,
        "runs": runs,
        "statistic": "median",
        "results": results,
        "target": "store at 8 writers >= 0.8x plain inserts",
        "target_met": target >= 0.8,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.runs))
