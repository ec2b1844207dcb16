"""`scamtrail up` runs the api, the relay and a worker as child processes of its own, so that
nothing a client does to the api (thousands of connections, a busy event loop, every file
descriptor) reaches the worker's analyses and cron or the relay's publishing.

The children share `up`'s environment plus the URLs of the embedded PostgreSQL and Redis. They
run in their own process group: Ctrl-C in a terminal reaches `up` alone, which asks each child
to stop (SIGTERM) once, waits for all of them, then stops the embedded services. A child that
ends by itself is a bug or a crash: `up` says which and how, stops the others and exits 1 — a
restart would hide a crash loop behind a console that looks alive. On Linux a child also gets
SIGTERM if `up` itself is killed, so none outlives it."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from infrastructure.settings import Settings

log = logging.getLogger(__name__)
STOP_WITHIN_S = 15.0  # the api drains its sockets (5 s), a worker hands its jobs back
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Ended:
    """A child that ended while `up` was running: its name and exit code (-N: signal N)."""

    name: str
    code: int


def part_commands(host: str, port: int) -> dict[str, list[str]]:
    """The command line of each part, run with this interpreter (the virtualenv's)."""
    scamtrail = [sys.executable, "-m", "api.cli"]
    return {
        "api": [*scamtrail, "api", "--host", host, "--port", str(port)],
        "relay": [*scamtrail, "relay"],
        "worker": [*scamtrail, "worker"],
    }


def part_environment(settings: Settings) -> dict[str, str]:
    """`up`'s environment, plus what no variable names under `up`: the embedded services, and
    a Pub/Sub key when none is configured. The relay signs progress messages with it and the
    api checks them (infrastructure/hub.py); without a key of their own they would use one
    anyone can derive. A fresh key per `up` is enough: nothing on Pub/Sub outlives the run."""
    env = {
        **os.environ,
        "SCAMTRAIL_DATABASE_URL": settings.database_url,
        "SCAMTRAIL_REDIS_URL": settings.redis_url,
        "SCAMTRAIL_PORT": str(settings.port),
    }
    if settings.pubsub_signing_key() is None:
        env["SCAMTRAIL_PUBSUB_KEY"] = secrets.token_hex(32)
    return env


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (a SIGKILLed `up`)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def supervise(commands: Mapping[str, Sequence[str]], env: Mapping[str, str]) -> Ended | None:
    """Run every command until SIGINT or SIGTERM (None) or until one ends by itself (`Ended`);
    either way, stop the others and wait for them before returning."""
    loop = asyncio.get_running_loop()
    asked_to_stop = asyncio.Event()
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum in handlers:
        loop.add_signal_handler(signum, asked_to_stop.set)
    children: dict[str, asyncio.subprocess.Process] = {}
    try:
        for name, command in commands.items():
            children[name] = await asyncio.create_subprocess_exec(
                *command, env=dict(env), process_group=0, preexec_fn=_die_with_parent
            )
        waits = {asyncio.create_task(p.wait()): name for name, p in children.items()}
        stop = asyncio.create_task(asked_to_stop.wait())
        done, _ = await asyncio.wait([stop, *waits], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        ended = [Ended(waits[t], t.result()) for t in done if t in waits]
        return None if asked_to_stop.is_set() else ended[0]
    finally:
        await _stop_all(children)
        for signum, handler in handlers.items():  # `up`'s own, which stop the services
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)


async def _stop_all(children: Mapping[str, asyncio.subprocess.Process]) -> None:
    """SIGTERM to each child still running; SIGKILL to any that outlives STOP_WITHIN_S."""
    for process in children.values():
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    try:
        async with asyncio.timeout(STOP_WITHIN_S):
            await asyncio.gather(*(p.wait() for p in children.values()))
    except TimeoutError:
        for name, process in children.items():
            if process.returncode is None:
                log.warning("the %s did not stop within %.0f s: killed", name, STOP_WITHIN_S)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        await asyncio.gather(*(p.wait() for p in children.values()))
