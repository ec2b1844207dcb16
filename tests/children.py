"""Processes the tests started and left running.

Every fixture and test that starts a process (an api, relay, worker, redis-server, a hostile
client, a browser) must stop it. One left running keeps its database connections and ports, and
on a CI machine outlives the run. At the start of the session `mark_children` puts a variable
into this process's environment, which every child inherits (tests/e2e/progress_stack.py and
tests/e2e/worker_process.py pass the environment on, less SCAMTRAIL_* settings); at the end
`stray_children` finds every live process that carries it, or descends from this one, even one
whose parent died (a process of `scamtrail up` killed with its parent, say).
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from pathlib import Path

# Without the SCAMTRAIL_ prefix: the helpers that build a child's environment drop those.
MARK = "TEST_SESSION_OF_SCAMTRAIL"


def mark_children() -> bytes:
    """Mark this process's environment; return the `NAME=value` bytes a child's holds."""
    value = f"{os.getpid()}-{uuid.uuid4().hex}"
    os.environ[MARK] = value
    return f"{MARK}={value}".encode()


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid), or None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return fields[0], int(fields[1])


def _carries(pid: int, mark: bytes) -> bool:
    try:
        return mark in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone, or another user's
        return False


def _describe(pid: int) -> str:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid} (gone)"
    return f"pid {pid}: " + " ".join(a.decode(errors="replace") for a in args if a)[:300]


def stray_children(mark: bytes) -> list[int]:
    """Live processes (zombies excluded) that descend from this one or carry `mark`."""
    me = os.getpid()
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[0] not in "ZX":
            parents[int(entry.name)] = stat[1]

    def descends(pid: int) -> bool:
        seen = set()
        while pid > 1 and pid not in seen:
            seen.add(pid)
            pid = parents.get(pid, 0)
            if pid == me:
                return True
        return False

    return sorted(p for p in parents if p != me and (descends(p) or _carries(p, mark)))


def describe(pids: list[int]) -> str:
    return "\n  ".join(_describe(pid) for pid in pids)


def kill(pids: list[int]) -> None:
    """SIGKILL what the run left behind, so that it does not outlive the run."""
    for pid in pids:
        with contextlib.suppress(OSError):  # gone meanwhile
            os.kill(pid, signal.SIGKILL)
