"""`scamtrail up` runs the api, the relay and a worker as child processes (api/up_processes.py):
Ctrl-C stops them all, a child that ends by itself stops the others and `up` exits 1, and none
outlives a killed `up`. Small Python programs stand in for the three parts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from api import up_processes
from api.cli import up as cli_up
from infrastructure.settings import load_settings
from tests.e2e.progress_stack import ROOT, free_port

pytestmark = pytest.mark.e2e

# A part: writes its pid, then runs until SIGTERM (noted in a file) or, given an exit code,
# ends with it after a moment.
PART = """
import os, signal, sys, time
name, folder, code = sys.argv[1], sys.argv[2], sys.argv[3]
open(os.path.join(folder, name + ".pid"), "w").write(str(os.getpid()))
def stop(signum, frame):
    open(os.path.join(folder, name + ".stopped"), "w").write("")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
if code:
    time.sleep(0.5)
    sys.exit(int(code))
while True:
    time.sleep(0.05)
"""
# `up` without the rest: supervises the commands given as JSON, prints how it ended.
UP = """
import asyncio, json, os, sys
from api.up_processes import supervise
ended = asyncio.run(supervise(json.loads(sys.argv[1]), dict(os.environ)))
print("ended:", ended, flush=True)
"""


def parts(folder: Path, failing: str = "", code: int = 3) -> dict[str, list[str]]:
    return {
        name: [sys.executable, "-c", PART, name, str(folder), str(code) if name == failing else ""]
        for name in ("api", "relay", "worker")
    }


def start_up(commands: dict[str, list[str]]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", UP, json.dumps(commands)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_for_files(folder: Path, suffix: str, count: int = 3, within: float = 10) -> list[Path]:
    deadline = time.monotonic() + within
    while len(found := sorted(folder.glob(f"*{suffix}"))) < count:
        assert time.monotonic() < deadline, f"only {found}"
        time.sleep(0.05)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}").exists() else ""
    return " Z " not in stat  # a zombie has ended


def test_ctrl_c_stops_every_part(tmp_path: Path) -> None:
    up = start_up(parts(tmp_path))
    wait_for_files(tmp_path, ".pid")
    up.send_signal(signal.SIGINT)  # to `up` alone, as a terminal's Ctrl-C reaches only it
    out, _ = up.communicate(timeout=20)
    assert up.returncode == 0 and "ended: None" in out, out
    assert len(wait_for_files(tmp_path, ".stopped")) == 3


def test_a_part_that_ends_stops_the_others_and_is_named(tmp_path: Path) -> None:
    up = start_up(parts(tmp_path, failing="worker", code=3))
    out, _ = up.communicate(timeout=20)
    assert "ended: Ended(name='worker', code=3)" in out, out
    stopped = {p.name for p in wait_for_files(tmp_path, ".stopped", count=2)}
    assert stopped == {"api.stopped", "relay.stopped"}


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_no_part_outlives_a_killed_up(tmp_path: Path) -> None:
    up = start_up(parts(tmp_path))
    pids = [int(p.read_text()) for p in wait_for_files(tmp_path, ".pid")]
    up.kill()
    up.wait(5)
    assert len(wait_for_files(tmp_path, ".stopped")) == 3
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "a part outlived `up`"
        time.sleep(0.05)


async def test_up_exits_1_naming_the_part_that_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        up_processes, "part_commands", lambda host, port: parts(tmp_path, "relay", code=2)
    )
    with pytest.raises(typer.Exit) as stopped:
        await asyncio.wait_for(cli_up.whole_system(load_settings(), "127.0.0.1"), 20)
    assert stopped.value.exit_code == 1
    assert "the relay ended unexpectedly" in capsys.readouterr().err


def test_the_parts_share_a_private_pubsub_key_when_none_is_configured() -> None:
    """Without SCAMTRAIL_PUBSUB_KEY or SCAMTRAIL_JWT_SECRET (the developer mode), the relay and
    the api of one `up` get the same fresh key, not the one anyone can derive; a configured key
    is left to the settings."""
    bare = load_settings(jwt_secret=None, pubsub_key=None)
    first, second = up_processes.part_environment(bare), up_processes.part_environment(bare)
    assert len(first["SCAMTRAIL_PUBSUB_KEY"]) == 64
    assert first["SCAMTRAIL_PUBSUB_KEY"] != second["SCAMTRAIL_PUBSUB_KEY"]  # one per `up`
    configured = load_settings(jwt_secret="a" * 40, pubsub_key=None)
    assert up_processes.part_environment(configured).get("SCAMTRAIL_PUBSUB_KEY") == (
        os.environ.get("SCAMTRAIL_PUBSUB_KEY")
    )


async def test_the_banner_waits_until_the_api_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """`up` says it is up (and prints a token) only once /healthz answers: a request made right
    after the banner is served, not refused."""
    shown: list[float] = []
    monkeypatch.setattr(cli_up, "announce", lambda settings, host: shown.append(time.monotonic()))
    port = free_port()
    waiting = asyncio.create_task(
        cli_up.announce_when_answering(load_settings(port=port), "127.0.0.1")
    )
    await asyncio.sleep(0.5)
    assert not shown, "the banner came before anything listened"

    async def healthz(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    listening = time.monotonic()
    server = await asyncio.start_server(healthz, "127.0.0.1", port)
    try:
        await asyncio.wait_for(waiting, 5)
    finally:
        server.close()
        await server.wait_closed()
    assert len(shown) == 1 and shown[0] >= listening
