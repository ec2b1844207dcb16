"""Chaos: the whole system, as real processes on this machine, under steady load while things
break. 2 api replicas, 2 arq workers, 2 relays (one active, one standby), the test PostgreSQL,
and a redis-server of the suite's own (so restarting it disturbs nobody else).

Load: TASKS analyses submitted over HTTP across both replicas, CLIENTS WebSocket clients spread
over both (each follows one task, `?token=`). Faults, in turn, while it runs:
  1. SIGKILL the active relay: the standby takes the advisory lock and carries on;
  2. SIGKILL a worker with tasks in flight, start a replacement: arq hands its jobs back once
     their in-progress key expires (analysis_timeout_s + 10 s);
  3. restart Redis on the same port (queue, Pub/Sub and arq's keys are gone: the sweep
     re-enqueues what was lost, sockets poll PostgreSQL meanwhile);
  4. terminate every PostgreSQL connection of the api's, the workers' and the relays';
  5. disconnect a third of the clients and reconnect them, to either replica, with `after`.
Then: every task completed; every client saw every event of its task exactly once, in order
(its seqs are 1..n, n the stream's length in PostgreSQL); no tool call that had completed was
made again. Repeats are judged from the log: the call ledger of tests/fault_toolbox.py would
live in the Redis this suite restarts, so it could not be trusted to hold every count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from domain.progress import TERMINAL_EVENT_TYPES
from tests.backends import HARNESS
from tests.e2e.progress_stack import (
    Process,
    acme_token,
    child_env,
    free_port,
    processes,
    start_api,
    start_redis,
    start_relay,
)
from tests.fault_toolbox import slow_tools
from tests.waiting import eventually, wait_for_log

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

TASKS = 200
CLIENTS = 300
SUBMIT_OVER_S = 20.0  # submissions are spread over this long, the faults happen meanwhile
FINISH_WITHIN_S = 150.0

CONTENTS = [
    "URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top/pay today",
    "FINAL NOTICE: unpaid toll. Pay now at https://ezpass-tolls.top/pay or call +1 900 555 0199",
    "Your bank account is locked. Verify at http://paypa1-secure-login.top/account/verify",
    "Hi Sam, dinner at 7 tomorrow still works? Bring the board game.",
    "Call +1 415 555 0132 about your prize, reply to claims@lucky-winner.top",
]


@dataclass
class Client:
    """Follows one task over as many sockets as it takes, each resuming with `after`."""

    task_id: str
    bases: list[str]  # ws://host:port of each replica; the first is the one it starts on
    seqs: list[int] = field(default_factory=list)
    connections: int = 0
    refused: int = 0  # sockets that failed or closed abnormally (during faults), then retried
    finished: bool = False
    kick: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, deadline: float) -> None:
        base = self.bases[0]
        while not self.finished and time.monotonic() < deadline:
            after = self.seqs[-1] if self.seqs else 0
            url = f"{base}/ws/agent-progress/{self.task_id}?after={after}&token={acme_token()}"
            self.connections += 1
            kicked = False
            try:
                async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                    async with websockets.connect(url, open_timeout=10, max_queue=None) as ws:
                        kicked = await self._read(ws)
            except (OSError, TimeoutError, websockets.WebSocketException):
                self.refused += 1
                await asyncio.sleep(0.2 + random.random() * 0.3)
            if kicked:  # a disconnect the suite asked for: reconnect to either replica
                base = random.choice(self.bases)
                self.kick.clear()

    async def revisit(self) -> None:
        """A client that had everything reconnects anyway: it must get no event again."""
        after = self.seqs[-1] if self.seqs else 0
        base = random.choice(self.bases)
        url = f"{base}/ws/agent-progress/{self.task_id}?after={after}&token={acme_token()}"
        self.connections += 1
        async with asyncio.timeout(30), websockets.connect(url, open_timeout=10) as ws:
            await self._read(ws)

    async def _read(self, ws: websockets.ClientConnection) -> bool:
        """Read until the socket closes; True if the suite kicked the client meanwhile."""

        async def watch() -> None:
            await self.kick.wait()
            await ws.close()  # ends the loop below

        watcher = asyncio.create_task(watch())
        try:
            async for raw in ws:
                message = json.loads(raw)
                if "seq" in message:
                    self.seqs.append(message["seq"])
                    if message.get("event_type") in TERMINAL_EVENT_TYPES:
                        self.finished = True
        except websockets.ConnectionClosedError:
            self.refused += 1  # 1011 from a replica that lost PostgreSQL mid-read, say
        finally:
            watcher.cancel()
        return self.kick.is_set()


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def note(self, what: str, detail: str) -> None:
        self.rows.append((f"{time.monotonic() - self.started:6.1f}", what, detail))


async def submit_all(
    http_bases: list[str],
    tasks: list[str | None],
    stats: Counter[str],
    started: list[asyncio.Event],
) -> None:
    """Submit TASKS analyses over SUBMIT_OVER_S, alternating replicas. A submission that fails
    (a fault in progress) is retried with its Idempotency-Key, on the other replica."""
    headers = {"Authorization": f"Bearer {acme_token()}"}
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:

        async def one(i: int) -> None:
            key = f"chaos-{uuid.uuid4()}"
            body = {"content": f"{CONTENTS[i % len(CONTENTS)]} (#{i})", "kind": "sms"}
            for attempt in range(40):
                base = http_bases[(i + attempt) % len(http_bases)]
                try:
                    response = await client.post(
                        f"{base}/tasks", json=body, headers={"Idempotency-Key": key}
                    )
                except httpx.HTTPError:
                    response = None
                if response is not None and response.status_code == 202:
                    tasks[i] = response.json()["task_id"]
                    stats["submitted"] += 1
                    started[i].set()
                    return
                stats["submit retries"] += 1
                await asyncio.sleep(0.25)
            raise AssertionError(f"submission {i} failed 40 times")

        pending = []
        for i in range(TASKS):
            pending.append(asyncio.create_task(one(i)))
            await asyncio.sleep(SUBMIT_OVER_S / TASKS)
        await asyncio.gather(*pending)


async def terminate_connections(dsn: str) -> int:
    """Every connection of the system's processes; not the test harness's own pool, which the
    tests after this one use (they would find its connections dead)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND application_name IS DISTINCT FROM $1",
            HARNESS,
        )
        return sum(1 for r in rows if r[0])
    finally:
        await conn.close()


async def read_streams(
    dsn: str, task_ids: list[str]
) -> dict[str, list[tuple[int, str, dict[str, Any]]]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT stream_id, version, type, data::text AS data FROM events"
            " WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, version",
            task_ids,
        )
    finally:
        await conn.close()
    streams: dict[str, list[tuple[int, str, dict[str, Any]]]] = defaultdict(list)
    for row in rows:
        streams[row["stream_id"]].append((row["version"], row["type"], json.loads(row["data"])))
    return streams


async def count_finished(dsn: str, task_ids: list[str]) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(DISTINCT stream_id) FROM events"
                " WHERE stream_id = ANY($1::text[]) AND type = ANY($2::text[])",
                task_ids,
                list(TERMINAL_EVENT_TYPES),
            )
        )
    finally:
        await conn.close()


async def in_flight_calls(dsn: str, task_ids: list[str]) -> int:
    """Tool calls started and not (yet) completed or failed, across these tasks."""
    streams = await read_streams(dsn, task_ids)
    open_calls = 0
    for stream in streams.values():
        state: Counter[str] = Counter()
        for _, kind, data in stream:
            if kind == "ToolCallStarted":
                state[data["call_id"]] += 1
            elif kind in ("ToolCallCompleted", "ToolCallFailed"):
                state[data["call_id"]] -= 1
        open_calls += sum(1 for n in state.values() if n > 0)
    return open_calls


def repeated_completed_calls(stream: list[tuple[int, str, dict[str, Any]]]) -> list[str]:
    """Call ids started again after they had completed, or completed twice."""
    completed: set[str] = set()
    repeated = []
    for _, kind, data in stream:
        if kind == "ToolCallStarted" and data["call_id"] in completed:
            repeated.append(data["call_id"])
        elif kind == "ToolCallCompleted":
            if data["call_id"] in completed:
                repeated.append(data["call_id"])
            completed.add(data["call_id"])
    return repeated


async def test_chaos(
    migrated_database: str,
    clean_database: object,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dsn = make_url(migrated_database).set(drivername="postgresql").render_as_string(False)
    redis_port = free_port()
    api_ports = [free_port(), free_port()]
    env = child_env(
        database_url=migrated_database,
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        queue=f"scamtrail:chaos:{uuid.uuid4().hex[:8]}",
        log_level="WARNING",
        # Connections: 2 apis, 3 workers and 2 relays must stay under PostgreSQL's 100.
        database_pool_size=4,
        worker_concurrency=25,
        # Tool calls take a while, so that tasks are in flight when a worker dies; a short job
        # timeout, so that arq hands a dead worker's jobs back within seconds (timeout + 10 s).
        **slow_tools(latency_s=0.8),
        tool_concurrency=2,
        analysis_timeout_s=10,
        sweep_interval_s=3,
        stale_task_s=6,
        relay_lock_retry_s=0.2,
        relay_backoff_max_s=0.5,
        ws_heartbeat_s=2,
        ws_idle_timeout_s=120,
        ws_poll_s=0.2,
        submissions_per_minute=100_000,
    )
    http_bases = [f"http://127.0.0.1:{p}" for p in api_ports]
    ws_bases = [f"ws://127.0.0.1:{p}" for p in api_ports]
    timeline, stats = Timeline(), Counter[str]()
    checks: list[tuple[str, str, bool]] = []
    tasks: list[str | None] = [None] * TASKS
    submitted = [asyncio.Event() for _ in range(TASKS)]
    clients: list[Client] = []
    deadline = time.monotonic() + SUBMIT_OVER_S + FINISH_WITHIN_S

    with processes() as started:
        started.append(redis := start_redis(redis_port, tmp_path / "redis-1.log"))
        started.append(relay_a := start_relay(env, tmp_path / "relay-a.log"))
        await wait_for_log(relay_a, "active", within=20)
        started.append(relay_b := start_relay(env, tmp_path / "relay-b.log"))
        await wait_for_log(relay_b, "standby", within=20)
        for i, port in enumerate(api_ports):
            started.append(start_api(env, port, tmp_path / f"api-{i + 1}.log"))
        workers: list[Process] = []
        for name in ("worker-1", "worker-2"):
            workers.append(Process(worker_args(), env, tmp_path / f"{name}.log"))
            started.append(workers[-1])
        timeline.note("up", "redis, 2 relays (1 standby), 2 apis, 2 workers")

        submitting = asyncio.create_task(submit_all(http_bases, tasks, stats, submitted))

        async def follow(i: int) -> None:
            index = i % TASKS
            await submitted[index].wait()
            task_id = tasks[index]
            assert task_id is not None
            client = Client(task_id, [ws_bases[i % 2], ws_bases[(i + 1) % 2]])
            clients.append(client)
            await client.run(deadline)

        following = [asyncio.create_task(follow(i)) for i in range(CLIENTS)]

        def known() -> list[str]:
            return [t for t in tasks if t is not None]

        try:
            # The pauses before each fault are pacing, not waits for a condition: each lets the
            # load build up again (submissions arrive, tool calls go in flight) so that the next
            # fault strikes a system at work.
            # 1. the active relay dies
            await asyncio.sleep(3)
            mark = len(relay_b.output())
            relay_a.kill()
            took = await wait_for_log(relay_b, "active", within=20, after=mark)
            timeline.note("SIGKILL active relay", f"standby active after {took:.1f} s")

            # 2. a worker dies mid-task; a replacement starts
            await asyncio.sleep(2)
            in_flight = await in_flight_calls(dsn, known())
            workers[0].kill()
            jobs_lost = running_jobs(workers[0])
            workers.append(Process(worker_args(), env, tmp_path / "worker-3.log"))
            started.append(workers[-1])
            stats["tool calls in flight (all workers) at the kill"] = in_flight
            stats["jobs running on the killed worker"] = jobs_lost
            timeline.note(
                "SIGKILL worker-1",
                f"{jobs_lost} jobs running on it, {in_flight} tool calls in flight; worker-3 up",
            )

            # 3. Redis restarts on the same port
            await asyncio.sleep(3)
            began = time.monotonic()
            redis.stop()
            await asyncio.sleep(1.0)  # the outage itself: 1 s without Redis
            started.append(start_redis(redis_port, tmp_path / "redis-2.log"))
            timeline.note("restart Redis", f"down {time.monotonic() - began:.1f} s")

            # 4. every PostgreSQL connection of the system is cut
            await asyncio.sleep(3)
            killed = await terminate_connections(dsn)
            stats["PostgreSQL connections terminated"] = killed
            timeline.note("pg_terminate_backend", f"{killed} connections")

            # 5. a third of the clients leave and come back with `after`
            await asyncio.sleep(2)
            # Those still following a task first (they resume mid-stream); the rest of the
            # third from clients that had everything (they must be sent nothing again).
            active = [c for c in clients if not c.finished]
            done_ = [c for c in clients if c.finished]
            quota = CLIENTS // 3
            kicked = active[:quota] + random.sample(done_, max(0, quota - len(active)))
            revisits = []
            for client in kicked:
                if client.finished:
                    revisits.append(asyncio.create_task(client.revisit()))
                else:
                    client.kick.set()
            await asyncio.wait_for(asyncio.gather(*revisits), 40)
            stats["clients kicked"] = len(kicked)
            timeline.note(
                "kick clients",
                f"{len(kicked)} reconnect with after=<last seq> ({len(revisits)} had finished)",
            )

            await asyncio.wait_for(submitting, SUBMIT_OVER_S + 60)
            timeline.note("submitted", f"{TASKS} tasks ({stats['submit retries']} retries)")
            ids = known()
            await eventually(
                lambda: count_finished(dsn, ids),
                until=lambda finished: finished >= TASKS,
                within=max(0.0, deadline - time.monotonic()),
                what=f"all {TASKS} tasks finished (last seen: how many)",
                interval=0.5,
            )
            timeline.note("all tasks finished", "")
            await asyncio.wait_for(asyncio.gather(*following), 60)
            timeline.note("all clients finished", "")
        finally:
            for task in [submitting, *following]:
                task.cancel()
            await asyncio.gather(submitting, *following, return_exceptions=True)

        alive = {p.log_path.name: p.alive() for p in started}
    planned_dead = {"relay-a.log", "worker-1.log", "redis-1.log"}
    unplanned = sorted(n for n, up in alive.items() if not up and n not in planned_dead)

    streams = await read_streams(dsn, ids)
    not_completed = [t for t in ids if streams[t][-1][1] != "TaskCompleted"]
    gaps = [t for t in ids if [v for v, _, _ in streams[t]] != list(range(1, len(streams[t]) + 1))]
    wrong_clients = [c for c in clients if c.seqs != list(range(1, len(streams[c.task_id]) + 1))]
    repeated = {t: r for t in ids if (r := repeated_completed_calls(streams[t]))}
    started_calls = sum(1 for t in ids for _, k, _ in streams[t] if k == "ToolCallStarted")
    completed_calls = sum(1 for t in ids for _, k, _ in streams[t] if k == "ToolCallCompleted")
    retried_calls = started_calls - completed_calls
    checks += [
        (f"{TASKS} tasks submitted", f"{len(ids)} ({stats['submit retries']} retries)",
         len(ids) == TASKS),
        ("every task completed", f"{len(ids) - len(not_completed)} of {len(ids)}",
         not not_completed),
        ("streams: versions 1..n", f"{len(gaps)} with gaps", not gaps),
        (f"{CLIENTS} clients: seq 1..n once, in order",
         f"{len(clients) - len(wrong_clients)} of {len(clients)} exact", not wrong_clients
         and len(clients) == CLIENTS),
        ("no completed tool call repeated",
         f"{completed_calls} completed, {started_calls} started, {len(repeated)} tasks repeating",
         not repeated),
        ("no process died unplanned", ", ".join(unplanned) or "none", not unplanned),
    ]  # fmt: skip
    events = sum(len(s) for s in streams.values())
    stats["events in the log"] = events
    stats["client connections"] = sum(c.connections for c in clients)
    stats["sockets refused or broken (retried)"] = sum(c.refused for c in clients)
    stats["tool call attempts not completed (retried or failed)"] = retried_calls
    print_summary(capsys, timeline, stats, checks, alive)
    (tmp_path / "summary.json").write_text(
        json.dumps({"timeline": timeline.rows, "stats": stats, "checks": checks}, indent=2)
    )
    assert not not_completed, [(t, streams[t][-1]) for t in not_completed[:5]]
    assert not gaps, gaps[:5]
    for client in wrong_clients[:3]:
        expected = len(streams[client.task_id])
        raise AssertionError(f"{client.task_id}: expected 1..{expected}, got {client.seqs}")
    assert len(clients) == CLIENTS
    assert not repeated, repeated
    assert len(ids) == TASKS
    assert not unplanned, f"died: {unplanned}; logs in {tmp_path}"


def running_jobs(worker: Process) -> int:
    """Jobs the worker had started (arq logs `→ id:analyze_task(`) and not finished (`← id:`)."""
    started, ended = set(), set()
    for line in worker.output().splitlines():
        if "→ " in line and ":analyze_task(" in line:
            started.add(line.split("→ ")[1].split(":")[0])
        elif "← " in line:
            ended.add(line.split("← ")[1].split(":")[0])
    return len(started - ended)


def worker_args() -> list[str]:
    import sys

    return [sys.executable, "-m", "api.cli", "worker"]


def print_summary(
    capsys: pytest.CaptureFixture[str],
    timeline: Timeline,
    stats: Counter[str],
    checks: list[tuple[str, str, bool]],
    alive: dict[str, bool],
) -> None:
    faults = Table(title="chaos: what happened", show_lines=False)
    for column in ("t (s)", "what", "detail"):
        faults.add_column(column)
    for row in timeline.rows:
        faults.add_row(*row)
    counts = Table(title="chaos: counts")
    counts.add_column("what")
    counts.add_column("count", justify="right")
    for name, value in stats.items():
        counts.add_row(name, str(value))
    counts.add_row("processes alive at the end", ", ".join(n for n, a in alive.items() if a))
    verdicts = Table(title="chaos: checks")
    for column in ("check", "measured", "ok"):
        verdicts.add_column(column)
    for name, measured, ok in checks:
        verdicts.add_row(name, measured, "[green]yes[/]" if ok else "[red]NO[/]")
    with capsys.disabled(), contextlib.suppress(OSError):
        console = Console(width=110)
        console.print(faults, counts, verdicts)
