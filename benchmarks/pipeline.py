"""The agent pipeline: analyses per second with 1 and with 4 concurrent arq jobs in one worker
process, and p50/p95 from submit to `completed` on an idle system. Prints JSON.

    python benchmarks/pipeline.py [--tasks 60] [--samples 30]

The api runs in-process (httpx ASGI transport); the worker is a real `scamtrail worker` process
with the real tools (scam database and report search on PostgreSQL, seed loaded). The baseline
for the throughput ratio is the 1-job run, measured in the same script.
Uses SCAMTRAIL_TEST_DATABASE_URL / SCAMTRAIL_TEST_REDIS_URL, database `scamtrail_bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from api.app import create_app
from api.runtime import settle_heap
from benchmarks.common import BENCH_SECRET, as_text, bench_database, bench_redis_url, bench_token
from infrastructure.database import create_engine, migrate
from infrastructure.seed import load_seed
from infrastructure.settings import Settings, load_settings
from tests.e2e.worker_process import WorkerProcess

MESSAGES = [
    ("URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top/pay", "sms"),
    ("Hi Sam, dinner at 7 tomorrow still works?", "sms"),
    (
        "FINAL NOTICE: unpaid toll, pay at https://ezpass-tolls.top/pay or call +1 900 555 0199",
        "sms",
    ),
    ("http://paypa1-secure-login.top/account/verify", "url"),
]


async def submit(client: httpx.AsyncClient, i: int) -> str:
    content, kind = MESSAGES[i % len(MESSAGES)]
    response = await client.post("/tasks", json={"content": f"{content} #{i}", "kind": kind})
    response.raise_for_status()
    task_id: str = response.json()["task_id"]
    return task_id


async def finished(client: httpx.AsyncClient, task_id: str) -> None:
    while True:
        task: dict[str, Any] = (await client.get(f"/tasks/{task_id}")).json()
        if task["status"] in ("completed", "failed", "cancelled"):
            assert task["status"] == "completed", task
            return
        await asyncio.sleep(0.005)


async def with_worker(settings: Settings, concurrency: int, run: Any) -> Any:
    log = Path(tempfile.gettempdir()) / f"pipeline-worker-{concurrency}.log"
    worker = WorkerProcess(settings, log, worker_concurrency=concurrency)
    try:
        return await run()
    finally:
        worker.stop()


async def main(tasks: int, samples: int) -> None:
    database_url = as_text(bench_database())
    await migrate(database_url)
    redis_url = bench_redis_url()
    settings = load_settings(
        database_url=database_url,
        redis_url=redis_url,
        queue=f"scamtrail:bench:{uuid.uuid4().hex[:8]}",
        sweep_interval_s=60,
        jwt_secret=BENCH_SECRET,
        submissions_per_minute=100_000,
    )
    engine = create_engine(settings, pool_size=1)
    await load_seed(engine)
    await engine.dispose()

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        settle_heap()  # as `scamtrail api` does once its services are up
        transport = httpx.ASGITransport(app=app)
        headers = {
            "Authorization": f"Bearer {bench_token(settings, ['submitter', 'analyst'], 'public')}"
        }
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:

            async def idle_latency() -> list[float]:
                await finished(client, await submit(client, 0))  # warm the worker
                times = []
                for i in range(samples):
                    started = time.perf_counter()
                    await finished(client, await submit(client, i))
                    times.append((time.perf_counter() - started) * 1000)
                return sorted(times)

            async def throughput() -> float:
                started = time.perf_counter()
                ids = [await submit(client, i) for i in range(tasks)]
                await asyncio.gather(*(finished(client, task_id) for task_id in ids))
                return tasks / (time.perf_counter() - started)

            latency = await with_worker(settings, 1, idle_latency)
            one = await with_worker(settings, 1, throughput)
            four = await with_worker(settings, 4, throughput)

    print(
        json.dumps(
            {
                "benchmark": "pipeline",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
                "submit_to_completed_idle": {
                    "samples": samples,
                    "p50_ms": round(statistics.median(latency), 1),
                    "p95_ms": round(latency[int(len(latency) * 0.95) - 1], 1),
                },
                "analyses_per_s": {
                    "tasks": tasks,
                    "1_job": round(one, 1),
                    "4_jobs": round(four, 1),
                    "ratio_4_to_1": round(four / one, 2),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.samples))
