"""Relay publish throughput with the log in 1, 2 and 4 partitions, one `scamtrail relay` process
per partition, and with one partition publishing to a local Redis Cluster of three masters
(sharded channels) instead of one Redis. Prints JSON.

    python benchmarks/relay_partitions.py [--events 60000] [--runs 1]

For each count, the relays start first and settle (each holds its share); then `--events`
events over 600 tasks commit in one transaction, so they all become readable at once, and the
clock runs from that commit until every partition's checkpoint has reached the end of the log:
events/s is what the relays together moved from PostgreSQL to Redis. Nothing subscribes to the
channels (a PUBLISH to a channel without subscribers is Redis's cheapest). The baseline is the
one-partition run of the same script, for the cluster too. On a 2-core machine the relays,
PostgreSQL and Redis share two cores: past two relays the figure says where that limit is, not
how far partitions scale.
Uses SCAMTRAIL_TEST_DATABASE_URL (database `scamtrail_bench_relay`) and SCAMTRAIL_TEST_REDIS_URL;
the cluster (tests/redis_cluster.py) needs redis-server 7.0 or later, else its row is left out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.common import BENCH_SECRET, as_text, bench_database, bench_redis_url
from infrastructure.database import migrate
from infrastructure.relay_partitions import checkpoint_names, published_through
from tests.redis_cluster import LocalCluster, redis_server_binary

ROOT = Path(__file__).resolve().parent.parent
COUNTS = (1, 2, 4)
CLUSTER = "cluster"  # one partition, one relay, publishing to the Redis Cluster

_BULK = """
INSERT INTO events (stream_id, version, event_id, type, data, metadata)
SELECT $2 || (n % 600), (n / 600) + 1, gen_random_uuid(), 'ProgressReported',
       jsonb_build_object('message', 'step', 'percent', 50),
       '{"tenant": "bench", "actor": "bench"}'
FROM generate_series(0, $1 - 1) AS n
"""
_LOG_END = """
SELECT transaction_id::text || '-' || global_position FROM events
ORDER BY transaction_id DESC, global_position DESC LIMIT 1
"""


def start_relays(count: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen[bytes]]:
    relays = []
    for i in range(count):
        log = (logs / f"bench-relay-{count}-{i}.log").open("wb")
        relays.append(subprocess.Popen(
            [sys.executable, "-m", "api.cli", "relay"], cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, env={**env, "SCAMTRAIL_RELAY_PARTITIONS": str(count)},
        ))  # fmt: skip
    return relays


async def settled(pool: asyncpg.Pool, count: int, within: float = 60) -> None:
    """Until every partition is held by a relay, and each relay holds its share."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        held = await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        members = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name LIKE 'scamtrail-relay-member%'"
        )
        if held == count and (count == 1 or members == count):
            await asyncio.sleep(2)  # a rebalance in flight would show as a dip
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{count} relays did not settle within {within:g} s")


async def one_run(pool: asyncpg.Pool, count: int, events: int, env: dict[str, str]) -> float:
    await pool.execute("TRUNCATE events, relay_checkpoints CASCADE")
    relays = start_relays(count, env, Path(os.environ.get("TMPDIR", "/tmp")))
    try:
        await settled(pool, count)
        names = checkpoint_names("relay", count)
        await pool.execute(_BULK, events, f"relay-bench-{count}-")
        committed = time.perf_counter()
        end = await pool.fetchval(_LOG_END)
        while True:
            rows = await pool.fetch(
                "SELECT name, log_cursor FROM relay_checkpoints WHERE name = ANY($1)", names
            )
            done = published_through({r["name"]: r["log_cursor"] for r in rows}, "relay", count)
            if str(done) == end:
                return events / (time.perf_counter() - committed)
            await asyncio.sleep(0.01)
    finally:
        for relay in relays:
            relay.terminate()
        for relay in relays:
            relay.wait(timeout=15)


async def main(events: int, runs: int) -> None:
    url = bench_database("scamtrail_bench_relay")
    await migrate(as_text(url))
    pool = await asyncpg.create_pool(as_text(url, driver="postgresql"), min_size=1, max_size=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCAMTRAIL_")}
    env.update(SCAMTRAIL_DATABASE_URL=as_text(url), SCAMTRAIL_REDIS_URL=bench_redis_url(),
               SCAMTRAIL_JWT_SECRET=BENCH_SECRET, SCAMTRAIL_LOG_LEVEL="INFO",
               SCAMTRAIL_CHANNEL_PREFIX="relay-bench:")  # fmt: skip
    results: dict[int | str, list[float]] = {count: [] for count in COUNTS}
    cluster: LocalCluster | None = None
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as folder:
        try:
            if redis_server_binary() is not None:
                cluster = LocalCluster(Path(folder), replicas=0)
                cluster.start()
                results[CLUSTER] = []
            for _ in range(runs):  # interleaved: each run of each sees the same drift
                for count in COUNTS:
                    results[count].append(await one_run(pool, count, events, env))
                if cluster is not None:
                    on_cluster = {**env, "SCAMTRAIL_PUBSUB_URL": cluster.url}
                    results[CLUSTER].append(await one_run(pool, 1, events, on_cluster))
        finally:
            if cluster is not None:
                cluster.stop()
            await pool.close()
    base = statistics.median(results[1])
    report: dict[str, Any] = {
        "benchmark": "relay_partitions",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "events": events,
        "runs": runs,
        "partitions": [
            {
                "partitions": 1 if count == CLUSTER else count,
                "relays": 1 if count == CLUSTER else count,
                "pubsub": "redis cluster, 3 masters" if count == CLUSTER else "one redis",
                "events_per_s": {
                    "min": round(min(values)),
                    "median": round(statistics.median(values)),
                    "max": round(max(values)),
                },
                "vs_one": round(statistics.median(values) / base, 2),
            }
            for count, values in results.items()
        ],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.runs))
