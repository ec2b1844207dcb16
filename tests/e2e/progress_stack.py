"""Real processes for the live-progress tests: `scamtrail api` under uvicorn, `scamtrail relay`,
and a private redis-server a test may stop and restart. Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import websockets

from domain import events as ev
from infrastructure.embedded_redis import free_port as free_port  # for the e2e tests
from infrastructure.event_store import EventStore
from tests.auth import TEST_SECRET, token
from tests.factories import new, submitted
from tests.waiting import eventually_sync

ROOT = Path(__file__).resolve().parents[2]


# The tenant `submit` records tasks in, and a token that may follow all of them.
TENANT = "acme"


def acme_token() -> str:
    return token(TENANT, ["submitter", "analyst"], "e2e")


def child_env(**settings: object) -> dict[str, str]:
    """The environment of a child process: the test secret, and room for the many sockets the
    load tests open with one user's token, unless the test says otherwise."""
    settings = {"jwt_secret": TEST_SECRET, "max_sockets_per_user": 10_000, **settings}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCAMTRAIL_")}
    env.update({f"SCAMTRAIL_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class Process:
    """A child process with its output in a log file; `stop()` always reaps it."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def answered(api: Process, port: int, within: float = 30) -> None:
    """Return once the api on `port` answers /healthz; else stop it and fail with its log."""

    def healthy() -> bool:
        assert api.alive(), "the api exited"
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200

    try:
        eventually_sync(
            healthy,
            within=within,
            what="the api answers /healthz",
            interval=0.1,
            ignoring=(httpx.HTTPError,),
        )
    except AssertionError as error:
        api.stop()
        raise AssertionError(f"{error}:\n{api.output()[-3000:]}") from None


def start_api(env: dict[str, str], port: int, log_path: Path) -> Process:
    args = [sys.executable, "-m", "api.cli", "api", "--port", str(port)]
    api = Process(args, env, log_path)
    answered(api, port)
    return api


def start_relay(env: dict[str, str], log_path: Path) -> Process:
    return Process([sys.executable, "-m", "api.cli", "relay"], env, log_path)


def start_redis(port: int, log_path: Path) -> Process:
    args = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    redis = Process(args, dict(os.environ), log_path)

    def listening() -> bool:
        assert redis.alive(), "redis-server exited"
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True

    try:
        eventually_sync(listening, within=10, what="redis-server listening", ignoring=(OSError,))
    except AssertionError as error:
        redis.stop()
        raise AssertionError(f"{error}:\n{redis.output()[-3000:]}") from None
    return redis


@contextlib.contextmanager
def processes() -> Iterator[list[Process]]:
    """Stops every process appended to the list, whatever happens in the block."""
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            process.stop()


# --- a whole analysis, as events ---------------------------------------------------------------


def seed_steps() -> list[ev.DomainEvent]:
    """A whole analysis after TaskSubmitted, visiting every step of the wire format (the steps
    the first mobile and web clients know), ending in `completed`."""
    calls = [
        ("scam_db", "scam_database"),
        ("exa_search", "web_search"),
        ("domain_reputation", "domain_reputation"),
        ("phone_validator", "phone_validator"),
    ]
    steps: list[ev.DomainEvent] = [ev.EntitiesExtracted()]
    for i, (step, tool) in enumerate(calls):
        steps.append(ev.ToolCallStarted(call_id=f"c{i}", tool=tool, step=step, input={}))
        steps.append(ev.ToolCallCompleted(call_id=f"c{i}", tool=tool, step=step, output={}))
    steps.append(ev.VerdictReached(verdict="scam", score=0.9, confidence=0.8))
    steps.append(ev.TaskCompleted(verdict="scam"))
    return steps


async def submit(store: EventStore, task_id: str, *, tenant: str = "acme") -> None:
    await store.append(task_id, [submitted(tenant=tenant)], 0)


async def append_steps(
    store: EventStore,
    task_id: str,
    steps: list[ev.DomainEvent],
    *,
    after: int = 1,
    pause: float = 0.0,
    tenant: str = "acme",
) -> None:
    """Append each step as its own transaction (like a worker), versions after+1, after+2 ..."""
    for i, event in enumerate(steps):
        await store.append(task_id, [new(event, tenant=tenant)], after + i)
        if pause:
            await asyncio.sleep(pause)


# --- a WebSocket client that records everything ----------------------------------------------


class Recorded:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def events(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if "seq" in m]

    @property
    def seqs(self) -> list[int]:
        return [m["seq"] for m in self.events]

    @property
    def heartbeats(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("heartbeat")]


async def record(
    url: str,
    *,
    within: float = 30.0,
    connected: asyncio.Event | None = None,
    bearer: str | None = None,
    into: Recorded | None = None,
) -> Recorded:
    """Connect (with `bearer`, else a token of tenant `acme`), keep every message until the
    server closes; fail after `within` seconds. Messages go into `into` as they arrive, when
    given, so that a test can wait for one while the recording runs."""
    out = Recorded() if into is None else into
    headers = {"Authorization": f"Bearer {bearer or acme_token()}"}
    async with asyncio.timeout(within):
        async with websockets.connect(
            url, max_queue=None, open_timeout=within, additional_headers=headers
        ) as ws:
            try:
                async for raw in ws:
                    out.messages.append(json.loads(raw))
                    if connected is not None and len(out.messages) == 1:
                        connected.set()
            except websockets.ConnectionClosedError:
                pass
            out.close_code = ws.close_code
            out.close_reason = ws.close_reason or ""
    return out
