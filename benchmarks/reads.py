"""Read paths: GET /tasks/{id}/timeline (a 1,000-event page, served from the timeline
projection, then with its entries deleted so that it is rendered from the events), GET /tasks
with 100,000 tasks in the database, and projection rebuild throughput (task rows and timeline
entries). Prints JSON.

    python benchmarks/reads.py [--tasks 100000] [--requests 200]

The app runs in-process (httpx ASGI transport), so the numbers include FastAPI, pydantic and
the database, not the network; a read is timed to the last byte of its answer, not through the
client's parsing of it. Baselines, measured in the same run: the same reads as bare SQL
through asyncpg, so the ratio shows what the api layer costs on top of the database.
Uses SCAMTRAIL_TEST_DATABASE_URL or SCAMTRAIL_DATABASE_URL with the database `scamtrail_bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from api.app import create_app
from api.runtime import settle_heap
from benchmarks.common import BENCH_SECRET, as_text, bench_database, bench_token
from infrastructure.database import create_engine, migrate
from infrastructure.projection_rebuild import rebuild_projections
from infrastructure.settings import load_settings

# Tasks written in bulk (submitted, verdict, completed), one a minute back in time.
_BULK_TASKS = """
INSERT INTO events (stream_id, version, event_id, type, data, metadata, recorded_at)
SELECT 'bench-' || n, v, gen_random_uuid(),
       (ARRAY['TaskSubmitted', 'VerdictReached', 'TaskCompleted'])[v],
       CASE v
         WHEN 1 THEN jsonb_build_object('content', 'parcel held, pay fee ' || n, 'kind', 'sms')
         WHEN 2 THEN jsonb_build_object(
           'verdict', CASE WHEN n % 3 = 0 THEN 'scam' ELSE 'safe' END,
           'score', 0.5, 'confidence', 0.8)
         ELSE '{}'::jsonb
       END,
       '{"tenant": "public", "actor": "bench"}',
       now() - make_interval(mins => n) + make_interval(secs => v)
FROM generate_series(1, $1) AS n, generate_series(1, 3) AS v
"""
_LONG_TASK = """
INSERT INTO events (stream_id, version, event_id, type, data, metadata)
SELECT 'bench-long', v, gen_random_uuid(),
       CASE v WHEN 1 THEN 'TaskSubmitted' ELSE 'ProgressReported' END,
       CASE v WHEN 1 THEN '{"content": "long", "kind": "sms"}'::jsonb
              ELSE jsonb_build_object('message', 'step ' || v, 'percent', 50) END,
       '{"tenant": "public", "actor": "bench"}'
FROM generate_series(1, 5001) AS v
"""


async def timed(call: Callable[[], Awaitable[object]], requests: int) -> dict[str, float]:
    for _ in range(5):  # warm caches and prepared statements
        await call()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 2),
    }


_checked: dict[str, int] = {}  # a checked page's size in bytes, by path


async def fetched(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], key: str, items: int
) -> None:
    """GET `path` to the last byte of its response. The first answer is checked whole (parsed:
    `items` entries under `key`); later ones only by status and size, so that the time is the
    api's, not this client's JSON parsing, which the bare-SQL baseline does not pay either
    (its rows' JSON stays text)."""
    page = await client.get(path, params=params)
    assert page.status_code == 200, page.text
    if path not in _checked:
        assert len(page.json()[key]) == items
        _checked[path] = len(page.content)
    assert len(page.content) == _checked[path]


async def main(tasks: int, requests: int) -> None:
    url = bench_database()
    database_url = as_text(url)
    await migrate(database_url)
    pool = await asyncpg.create_pool(
        as_text(url, driver="postgresql"),
        min_size=1,
        max_size=2,
    )
    await pool.execute("TRUNCATE events, task_projection CASCADE")
    await pool.execute(_BULK_TASKS, tasks)
    await pool.execute(_LONG_TASK)
    await pool.execute("ANALYZE events")

    settings = load_settings(
        database_url=database_url,
        jwt_secret=BENCH_SECRET,
        submissions_per_minute=100_000,
    )
    engine = create_engine(settings, pool_size=2)
    started = time.perf_counter()
    report = await rebuild_projections(engine, batch=1000)
    rebuild_s = time.perf_counter() - started
    await engine.dispose()
    await pool.execute("ANALYZE task_projection, timeline_entries")

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

            async def timeline() -> None:
                await fetched(client, "/tasks/bench-long/timeline", {"limit": 1000}, "events", 1000)

            async def task_list() -> None:
                await fetched(client, "/tasks", {"limit": 50, "verdict": "scam"}, "tasks", 50)

            timeline_api = await timed(timeline, requests)
            list_api = await timed(task_list, requests)
            # The same page with none of its entries stored yet (the relay behind, or an
            # upgrade before `scamtrail rebuild`): rendered from the events on every read.
            await pool.execute("DELETE FROM timeline_entries WHERE stream_id = 'bench-long'")
            timeline_unprojected = await timed(timeline, requests)

    async def timeline_sql() -> None:
        await pool.fetch(
            "SELECT * FROM events WHERE stream_id = 'bench-long' ORDER BY version LIMIT 1000"
        )

    async def list_sql() -> None:
        await pool.fetch(
            "SELECT * FROM task_projection WHERE tenant = 'public'"
            " AND coalesce(reviewed_verdict, verdict) = 'scam'"
            " ORDER BY submitted_at DESC, task_id DESC LIMIT 51"
        )

    timeline_base = await timed(timeline_sql, requests)
    list_base = await timed(list_sql, requests)
    await pool.close()
    print(
        json.dumps(
            {
                "benchmark": "reads",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
                "tasks_in_database": tasks + 1,
                "requests_per_figure": requests,
                "timeline_1000_events": {
                    **timeline_api,
                    "unprojected": timeline_unprojected,
                    "bare_sql": timeline_base,
                },
                "task_list_50": {**list_api, "bare_sql": list_base},
                "rebuild": {
                    "events": report.events,
                    "seconds": round(rebuild_s, 2),
                    "events_per_s": round(report.events / rebuild_s),
                },
                "target": "both reads p99 under 50 ms",
                "target_met": max(timeline_api["p99_ms"], list_api["p99_ms"]) < 50,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.requests))
