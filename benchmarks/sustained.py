"""Sustained load on the whole system: submit → completed latency while analyses arrive at a
fixed rate, and the CPU each part spends per analysis. Prints JSON.

    python benchmarks/sustained.py [--rates 10,25,50,100] [--seconds 20] [--jobs N]

The system runs as `scamtrail up` runs it: `scamtrail api`, `scamtrail relay` and one
`scamtrail worker` (its default concurrency), each a process of its own, on the local
PostgreSQL and Redis, with the real tools and the seed data. Load is open loop: submissions go
out on a fixed schedule, whatever the api answers, as real traffic does; a rate the system
cannot sustain shows as a latency that grows through the step, not as a slower client.
A task is done when its `completed` message arrives on an analyst's tenant socket
(/ws/tasks?tenant=), the way a console learns it: no polling adds load.

CPU is each process's user + system time over a step (from /proc), divided by the analyses
completed in it: the api, the relay, the worker, PostgreSQL (every server process) and
redis-server, and this script (the load and the socket). On 2 cores the sum says how many
analyses a second the machine can carry at most.
Uses SCAMTRAIL_TEST_DATABASE_URL / SCAMTRAIL_TEST_REDIS_URL, database `scamtrail_bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import websockets

from benchmarks.common import (
    BENCH_SECRET,
    TICKS,
    as_text,
    bench_database,
    bench_redis_url,
    bench_token,
    cpu_seconds,
)  # fmt: skip
from benchmarks.pipeline import MESSAGES
from infrastructure.database import create_engine, migrate
from infrastructure.embedded_redis import free_port
from infrastructure.seed import load_seed
from infrastructure.settings import load_settings
from tests.e2e.progress_stack import Process, start_api, start_relay
from tests.e2e.worker_process import WorkerProcess, settings_env


def machine_busy_seconds() -> float:
    """CPU time every core has spent on anything but idling, from /proc/stat."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICKS  # less idle and iowait


def pids_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self._started


class CpuMeter:
    """CPU seconds per part over a `measuring()` block; PostgreSQL's and Redis's processes
    found by name (a backend that ends mid-step takes its share with it)."""

    def __init__(self, parts: dict[str, int]) -> None:
        self._parts = parts

    def _now(self) -> dict[str, dict[int, float]]:
        groups = {name: [pid] for name, pid in self._parts.items()}
        groups["postgres"] = pids_named("postgres")
        groups["redis"] = pids_named("redis-server")
        now = {name: {pid: cpu_seconds(pid) for pid in pids} for name, pids in groups.items()}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        now["load_and_socket"] = {0: usage.ru_utime + usage.ru_stime}
        now["machine"] = {0: machine_busy_seconds()}
        return now

    @contextmanager
    def measuring(self) -> Iterator[dict[str, float]]:
        spent: dict[str, float] = {}
        before = self._now()
        yield spent
        after = self._now()
        for name, pids in after.items():
            spent[name] = sum(t - before[name].get(pid, 0.0) for pid, t in pids.items())


class Completions:
    """When each task's `completed` message arrived on the tenant socket."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.listening = asyncio.Event()
        self._arrived = asyncio.Event()

    async def listen(self, url: str, token: str) -> None:
        async with websockets.connect(
            f"{url}/ws/tasks?tenant=&token={token}", max_size=None, open_timeout=30
        ) as socket:
            self.listening.set()
            async for raw in socket:
                if "TaskCompleted" not in raw:  # most messages: no need to parse them
                    continue
                message = json.loads(raw)
                if message.get("event_type") == "TaskCompleted":
                    self.at.setdefault(message["task_id"], time.perf_counter())
                    self._arrived.set()

    async def wait_for(self, task_ids: list[str], within: float) -> None:
        """Until every task has completed, or `within` seconds have passed."""
        deadline = time.perf_counter() + within
        while any(t not in self.at for t in task_ids):
            self._arrived.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                return


async def step(
    client: aiohttp.ClientSession, rate: float, seconds: float, completions: Completions
) -> dict[str, Any]:
    """Submit `rate` analyses a second for `seconds`, on schedule; wait for each to complete."""
    sent: dict[str, float] = {}
    refused = 0

    async def submit(i: int) -> None:
        nonlocal refused
        content, kind = MESSAGES[i % len(MESSAGES)]
        started = time.perf_counter()
        body = {"content": f"{content} #{uuid.uuid4().hex[:8]}", "kind": kind}
        async with client.post("/tasks", json=body) as response:
            if response.status != 202 and response.status != 201:
                refused += 1
                return
            sent[(await response.json())["task_id"]] = started

    count = round(rate * seconds)
    begin = time.perf_counter()
    submissions = []
    for i in range(count):
        await asyncio.sleep(max(0.0, begin + i / rate - time.perf_counter()))
        submissions.append(asyncio.create_task(submit(i)))
    await asyncio.gather(*submissions)
    await completions.wait_for(list(sent), within=60)
    done = completions.at
    latencies = sorted((done[t] - s) * 1000 for t, s in sent.items() if t in done)
    finished = [done[t] for t in sent if t in done]
    lost = len(sent) - len(latencies)
    return {
        "rate_per_s": rate,
        "submitted": count,
        "refused": refused,
        "not_completed_within_60_s": lost,
        "completed_per_s": round(len(finished) / (max(finished) - begin), 1) if finished else 0,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1) if latencies else None,
        "max_ms": round(latencies[-1], 1) if latencies else None,
    }


async def main(rates: list[float], seconds: float, jobs: int | None) -> None:
    database_url = as_text(bench_database())
    await migrate(database_url)
    settings = load_settings(
        database_url=database_url,
        redis_url=bench_redis_url(),
        queue=f"scamtrail:bench:{uuid.uuid4().hex[:8]}",
        jwt_secret=BENCH_SECRET,
        submissions_per_minute=1_000_000,
        pubsub_key=uuid.uuid4().hex * 2,
    )
    engine = create_engine(settings, pool_size=1)
    await load_seed(engine)
    await engine.dispose()

    port = free_port()
    env = settings_env(settings, port=port)
    logs = Path(tempfile.gettempdir())
    parts: list[Process | WorkerProcess] = []
    try:
        api = start_api(env, port, logs / "sustained-api.log")
        parts.append(api)
        relay = start_relay(env, logs / "sustained-relay.log")
        parts.append(relay)
        if jobs is not None:
            settings = settings.model_copy(update={"worker_concurrency": jobs})
        worker = WorkerProcess(settings, logs / "sustained-worker.log")
        parts.append(worker)
        meter = CpuMeter({"api": api.pid, "relay": relay.pid, "worker": worker.process.pid})
        token = bench_token(settings, ["submitter", "analyst"], "public")
        url = f"http://127.0.0.1:{port}"
        completions = Completions()
        listening = asyncio.create_task(completions.listen(url.replace("http", "ws"), token))
        await asyncio.wait_for(completions.listening.wait(), 30)
        steps = []
        # aiohttp, not httpx: the load runs on the machine it measures, and httpx spent about
        # three times the CPU per submission, a share of the two cores the system then lacked.
        async with aiohttp.ClientSession(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=60),
            connector=aiohttp.TCPConnector(limit=0),
        ) as client:
            await step(client, 5, 2, completions)  # warm every part
            for rate in rates:
                with meter.measuring() as spent, Stopwatch() as wall:
                    result = await step(client, rate, seconds, completions)
                completed = result["submitted"] - result["refused"]
                completed -= result["not_completed_within_60_s"]
                per = {name: s * 1000 / max(completed, 1) for name, s in spent.items()}
                # The system's own: every part but this script's load and socket; and what the
                # cores spent beyond the processes named (the kernel, other programs).
                machine = per.pop("machine")
                per["system"] = sum(ms for name, ms in per.items() if name != "load_and_socket")
                per["unaccounted"] = machine - per["system"] - per["load_and_socket"]
                busy = spent["machine"] / wall.seconds / (os.cpu_count() or 1)
                result["cores_busy_percent"] = round(busy * 100, 1)
                result["cpu_ms_per_analysis"] = {name: round(ms, 2) for name, ms in per.items()}
                steps.append(result)
        listening.cancel()
    finally:
        for part in reversed(parts):
            part.stop()
    system = statistics.median(s["cpu_ms_per_analysis"]["system"] for s in steps)
    print(
        json.dumps(
            {
                "benchmark": "sustained",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
                "seconds_per_rate": seconds,
                "worker_concurrency": settings.worker_concurrency,
                "steps": steps,
                # The most this machine's cores could carry doing nothing but analyses, from the
                # system's CPU per analysis (the median over the steps).
                "analyses_per_s_ceiling": round((os.cpu_count() or 1) * 1000 / system, 1),
                "target": "p95 < 1 s at 50/s; >= 100 analyses/s",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="10,25,50,100")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--jobs", type=int, help="the worker's concurrency (else its default)")
    args = parser.parse_args()
    asyncio.run(main([float(r) for r in args.rates.split(",")], args.seconds, args.jobs))
