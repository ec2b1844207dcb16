"""Quiet when idle: what a relay and an api cost while nothing happens, and how soon the first
event after a quiet spell reaches Redis. Prints JSON.

    python benchmarks/idle.py [--seconds 20] [--samples 30]

Runs real processes (`scamtrail relay`, `scamtrail api`) twice in one run:
- "always polling" (baseline): the relay never goes quiet (`SCAMTRAIL_RELAY_WARM_S` of a day),
  so it probes PostgreSQL every `relay_poll_s` (5 ms) whether or not anything happens;
- "doorbell" (the default): after `relay_warm_s` without an event the relay waits for the log's
  doorbell (infrastructure/doorbell.py), probing every `relay_idle_probe_s`.
For each: the CPU share of a core used over `--seconds` of idleness by the relay process, the
api process (its Pub/Sub hub) and the PostgreSQL backends serving the benchmark's database; then
`--samples` single events, each after the relay has been quiet past `relay_warm_s`, appended as
the api and the worker append (TaskLog with the doorbell), timed from the commit to their
arrival on Redis (p50/p99/max).

Uses SCAMTRAIL_TEST_DATABASE_URL (database renamed `scamtrail_bench_idle`) and
SCAMTRAIL_TEST_REDIS_URL, else the SCAMTRAIL_* settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.common import BENCH_SECRET, as_text, bench_database, bench_redis_url, cpu_seconds
from benchmarks.streaming import METADATA, Stack, pct, wait_for_quiet_cluster
from domain import events as ev
from domain.log import NewEvent
from infrastructure.database import create_engine, migrate
from infrastructure.doorbell import Doorbell
from infrastructure.event_store import EventStore
from infrastructure.hub import task_channel
from infrastructure.settings import Settings, load_settings
from infrastructure.task_log import TaskLog

WARM_S = 1.0  # the relay's default relay_warm_s


async def backend_pids(engine: AsyncEngine, database: str) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        )
        return [row.pid for row in rows]


async def idle_cpu(
    engine: AsyncEngine, database: str, procs: dict[str, subprocess.Popen[bytes]], seconds: float
) -> dict[str, float]:
    """Each process's CPU over `seconds` of idleness, as a percentage of one core."""
    backends = await backend_pids(engine, database)
    before = {name: cpu_seconds(p.pid) for name, p in procs.items()}
    before_pg = sum(cpu_seconds(pid) for pid in backends)
    await asyncio.sleep(seconds)
    used = {name: cpu_seconds(p.pid) - before[name] for name, p in procs.items()}
    used["postgres"] = sum(cpu_seconds(pid) for pid in backends) - before_pg
    return {f"{name}_percent": round(100 * s / seconds, 2) for name, s in used.items()}


async def first_event_latency(
    store: EventStore, settings: Settings, redis: Redis, samples: int
) -> dict[str, float]:
    """Commit -> Redis of one event after each quiet spell, appended with the doorbell."""
    doorbell = Doorbell(settings, redis)
    tasks = TaskLog(store, doorbell)
    pubsub = redis.pubsub()
    prefix = f"idle-{uuid.uuid4().hex[:8]}-"
    await pubsub.psubscribe(task_channel(prefix) + "*")
    latencies = []
    for n in range(samples):
        await asyncio.sleep(WARM_S * 1.5)  # past relay_warm_s: the relay has gone quiet
        await tasks.append(f"{prefix}{n}", [NewEvent(ev.TaskSubmitted(content="x", kind="sms"),
                                                     METADATA)], 0)  # fmt: skip
        committed = time.perf_counter()
        while True:  # None: a subscribe confirmation, or nothing yet
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None and message["type"] == "pmessage":
                break
            if time.perf_counter() - committed > 30:
                raise RuntimeError(f"event {n} did not reach Redis within 30 s")
        latencies.append((time.perf_counter() - committed) * 1000)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await doorbell.aclose()
    return {
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
        "max_ms": round(max(latencies), 2),
        "samples": samples,
    }


async def one_mode(
    env: dict[str, str], engine: AsyncEngine, database: str, seconds: float, samples: int
) -> dict[str, Any]:
    settings = load_settings(database_url=env["SCAMTRAIL_DATABASE_URL"],
                             redis_url=env["SCAMTRAIL_REDIS_URL"])  # fmt: skip
    stack = Stack(env, Path(os.environ.get("TMPDIR", "/tmp")))
    redis = Redis.from_url(settings.redis_url)
    try:
        relay = stack.start("relay", name="bench-idle-relay")
        api = await stack.start_api()
        await asyncio.sleep(5)  # both started and settled; the relay has gone quiet if it does
        cpu = await idle_cpu(engine, database, {"relay": relay, "api": api}, seconds)
        latency = await first_event_latency(EventStore(engine), settings, redis, samples)
    finally:
        stack.stop()
        await redis.aclose()
    return {"idle_cpu": cpu, "first_event_after_quiet": latency}


async def main(seconds: float, samples: int) -> None:
    url = bench_database("scamtrail_bench_idle")
    database_url, redis_url = as_text(url), bench_redis_url()
    await migrate(database_url)
    engine = create_engine(load_settings(database_url=database_url), pool_size=4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCAMTRAIL_")}
    env.update(SCAMTRAIL_DATABASE_URL=database_url, SCAMTRAIL_REDIS_URL=redis_url,
               SCAMTRAIL_LOG_LEVEL="WARNING", SCAMTRAIL_JWT_SECRET=BENCH_SECRET)  # fmt: skip
    report: dict[str, Any] = {
        "benchmark": "idle",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "seconds": seconds,
    }
    try:
        report["waited_for_autovacuum_s"] = await wait_for_quiet_cluster(engine)
        report["always_polling"] = await one_mode(
            {**env, "SCAMTRAIL_RELAY_WARM_S": "86400"}, engine, str(url.database), seconds, samples
        )
        report["doorbell"] = await one_mode(env, engine, str(url.database), seconds, samples)
    finally:
        await engine.dispose()
    quiet = report["doorbell"]
    report["targets"] = {
        "relay_and_hub_under_1_percent": quiet["idle_cpu"]["relay_percent"]
        + quiet["idle_cpu"]["api_percent"]
        < 1,
        "first_event_p99_under_20_ms": quiet["first_event_after_quiet"]["p99_ms"] < 20,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.samples))
