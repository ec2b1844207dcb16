"""The README's first five minutes, on a fresh clone: no SCAMTRAIL_* variable, no PostgreSQL or
Redis to point at. `scamtrail up` starts embedded ones (data in ./.scamtrail/), the analysis of
a parcel scam SMS says `scam` with reasons, Ctrl-C stops everything, and a second start still
knows the task."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.progress_stack import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCAMTRAIL = Path(sys.executable).parent / "scamtrail"  # this venv's: a new one takes minutes
PARCEL_SMS = "URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top"
STOP_WITHIN_S = 20


@pytest.fixture
def clone() -> Iterator[Path]:
    """The repository's files (tracked, and new ones not ignored) in an empty directory. Not
    under pytest's tmp_path: pytest keeps that private (0700), and under root the embedded
    PostgreSQL runs as pgserver's own user, which must be able to reach its data directory."""
    home = Path(tempfile.mkdtemp(prefix="scamtrail-clone-"))
    try:
        yield copy_repository(home / "scamtrail")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def copy_repository(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    return target


def fresh_env(clone: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCAMTRAIL_")}
    env["PYTHONPATH"] = str(clone)  # the clone's code, not the editable install's
    return env


def scamtrail(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCAMTRAIL), *args],
        cwd=clone,
        env=fresh_env(clone),
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextlib.contextmanager
def system_up(clone: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`scamtrail up` until the api answers; on the way out, Ctrl-C (SIGINT) and reap it."""
    with log.open("ab") as out:
        up = subprocess.Popen(
            [str(SCAMTRAIL), "up", "--port", str(port)],
            cwd=clone,
            env=fresh_env(clone),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_api(up, port, log)
        yield up
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(STOP_WITHIN_S)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait(5)


def wait_for_api(up: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert up.poll() is None, f"scamtrail up exited:\n{log.read_text()[-4000:]}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"the api did not answer within 120 s:\n{log.read_text()[-4000:]}")


def token_args(clone: Path) -> list[str]:
    """`--token ...` when this tree has auth (`scamtrail token`), made in the clone so it is
    signed with the same developer key as the api there; nothing otherwise."""
    if scamtrail(clone, "token", "--help").returncode != 0:
        return []
    made = scamtrail(clone, "token", "--role", "submitter", "--role", "analyst")
    assert made.returncode == 0, made.stderr
    return ["--token", made.stdout.strip()]


def processes_using(directory: Path) -> list[str]:
    """Command lines of live processes that mention `directory` (the embedded servers do)."""
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit():
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if str(directory) in cmdline:
                    found.append(f"{proc.name}: {cmdline}")
    return found


def test_fresh_clone_up_analyze_stop_restart(clone: Path, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "up.log"
    url = ["--url", f"http://127.0.0.1:{port}"]
    started = time.monotonic()
    with system_up(clone, port, log) as up:
        cold_start = time.monotonic() - started
        auth = token_args(clone)
        done = scamtrail(clone, "analyze", PARCEL_SMS, *url, *auth)
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{log.read_text()[-3000:]}"
        assert "verdict: scam" in done.stdout
        assert "  • " in done.stdout, "no reason given for the verdict"
        task_id = done.stdout.split("  task ")[1].split()[0]
        assert (clone / ".scamtrail" / "postgres" / "PG_VERSION").exists()
        assert (clone / ".scamtrail" / "redis" / "appendonly.aof").exists()

        stopping = time.monotonic()
        up.send_signal(signal.SIGINT)
        assert up.wait(STOP_WITHIN_S) == 0, log.read_text()[-3000:]
        assert processes_using(clone) == [], "embedded servers outlived Ctrl-C"
        stop_time = time.monotonic() - stopping

    with system_up(clone, port, log):
        later = scamtrail(clone, "timeline", task_id, *url, *auth)
        assert later.returncode == 0, f"{later.stdout}\n{later.stderr}"
        assert "completed" in later.stdout
    assert processes_using(clone) == []
    print(f"cold start {cold_start:.1f} s, stop {stop_time:.1f} s")
