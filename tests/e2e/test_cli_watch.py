"""`scamtrail tasks watch` as a user runs it, against real processes: an api, a relay and a
worker, and the command in a process of its own with an analyst's token.

- two tasks of the watched tenant show live, each line with the task's whole id, their steps in
  order up to `completed` with the verdict the api records; another tenant's task never shows;
  Ctrl-C ends the watch with exit 130 and no traceback
- the api killed and started again on its port while a task is under way: the watch says it
  lost the api, reconnects, says so, shows every event of that task once (those of the gap
  caught up from the log), and shows a task submitted after
- the api killed for good: after --patience seconds the watch ends with exit 3 and one line
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.errors import EXIT_UNREACHABLE
from infrastructure.settings import Settings
from tests.auth import token
from tests.e2e.progress_stack import (
    ROOT,
    Process,
    child_env,
    free_port,
    processes,
    start_api,
    start_relay,
)
from tests.e2e.worker_process import WorkerProcess
from tests.fault_toolbox import slow_tools
from tests.waiting import eventually_sync

pytestmark = pytest.mark.e2e

SCAM = "URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top"
SAFE = "Hi Sam, dinner at 7 tomorrow still works? Bring the board game."
CTRL_C = 130  # api/cli/client.py: how `tasks watch` ends


@dataclass
class Stack:
    """The processes, and the watched tenant: a name of this test's own, on whose channel no
    other test run sharing the Redis server publishes (Pub/Sub channels ignore the db)."""

    url: str
    port: int
    env: dict[str, str]
    api: Process
    log_dir: Path
    tenant: str

    def restart_api(self) -> None:
        self.api.stop()
        self.api = start_api(self.env, self.port, self.log_dir / "api-again.log")


@pytest.fixture
def stack(app_settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    env = child_env(database_url=app_settings.database_url, redis_url=app_settings.redis_url,
                    queue=app_settings.queue)  # fmt: skip
    port = free_port()
    with processes() as started:
        started.append(start_relay(env, tmp_path / "relay.log"))
        api = start_api(env, port, tmp_path / "api.log")
        worker = WorkerProcess(app_settings, tmp_path / "worker.log", **slow_tools(0.1))
        tenant = f"watch-{uuid.uuid4().hex[:8]}"
        stack = Stack(f"http://127.0.0.1:{port}", port, env, api, tmp_path, tenant)
        try:
            yield stack
        finally:
            worker.stop()
            stack.api.stop()


def ctrl_c_as_in_a_terminal() -> None:
    """In the child, before it runs: SIGINT handled by default, as for a command typed in a
    terminal. A test run started in the background by a shell without job control (a CI
    runner's script, `cmd &`) ignores SIGINT, and so would the watch (Python keeps an ignored
    SIGINT ignored): Ctrl-C would never reach it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Watch:
    """`scamtrail tasks watch` in a process of its own; what it prints goes to two files."""

    def __init__(self, stack: Stack, log_dir: Path, *args: str) -> None:
        self.out_path, self.err_path = log_dir / "watch.out", log_dir / "watch.err"
        env = {**child_env(), "SCAMTRAIL_TOKEN": token(stack.tenant, ["analyst"], "watcher"),
               "PYTHONFAULTHANDLER": "1"}  # fmt: skip  # SIGABRT dumps its stacks (exit_code)
        command = [sys.executable, "-m", "api.cli", "tasks", "watch", "--url", stack.url, *args]
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                preexec_fn=ctrl_c_as_in_a_terminal,
            )  # fmt: skip

    def stdout(self) -> str:
        return self.out_path.read_text()

    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait_for(self, text: str, *, within: float = 30, on: str = "stderr") -> None:
        def shown() -> bool:
            if text in (self.stdout() if on == "stdout" else self.stderr()):
                return True
            assert self.process.poll() is None, f"the watch exited:\n{self.stderr()}"
            return False

        eventually_sync(shown, within=within, what=f"the watch prints {text!r}", interval=0.05)

    def exit_code(self, within: float) -> int:
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)  # where it hangs, on its stderr
            self.process.wait(timeout=10)
            pytest.fail(f"the watch did not exit within {within:g} s:\n{self.stderr()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def watch(stack: Stack, tmp_path: Path) -> Iterator[Watch]:
    started = Watch(stack, tmp_path, "--patience", "60")
    try:
        # Printed once the socket is live: what is submitted from then on shows.
        started.wait_for("following the tenant's tasks")
        yield started
    finally:
        started.stop()


def submit(url: str, content: str, tenant: str) -> str:
    headers = {"Authorization": f"Bearer {token(tenant, ['submitter', 'analyst'], 'sender')}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        accepted = http.post("/tasks", json={"content": content, "kind": "sms"})
        assert accepted.status_code == 202, accepted.text
        return str(accepted.json()["task_id"])


def finished(url: str, task_id: str, tenant: str) -> dict[str, Any]:
    """The task as GET /tasks/{id} shows it once it has ended."""
    headers = {"Authorization": f"Bearer {token(tenant, ['analyst'], 'reader')}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        task: dict[str, Any] = eventually_sync(
            lambda: http.get(f"/tasks/{task_id}").json(),
            until=lambda task: task.get("status") in ("completed", "failed", "cancelled"),
            within=60,
            what=f"task {task_id} ends",
            interval=0.1,
        )
    return task


def timeline_of(url: str, task_id: str, tenant: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token(tenant, ['analyst'], 'reader')}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        events: list[dict[str, Any]] = http.get(f"/tasks/{task_id}/timeline").json()["events"]
    return events


def steps_of(output: str, task_id: str) -> list[tuple[str, str]]:
    """(step, message) of each line the watch printed for the task: `time id mark step text`."""
    lines = [line.split(maxsplit=4) for line in output.splitlines()]
    return [(f[3], f[4] if len(f) > 4 else "") for f in lines if len(f) > 3 and f[1] == task_id]


def test_watch_shows_the_tenants_tasks_live_and_ends_on_ctrl_c(stack: Stack, watch: Watch) -> None:
    # Another tenant's task, finished before the watched ones start: the relay publishes the
    # log in order, so by the time theirs show, every event of this one has gone out too.
    other = submit(stack.url, SCAM, "elsewhere")
    assert finished(stack.url, other, "elsewhere")["status"] == "completed"
    ids = {submit(stack.url, SCAM, stack.tenant): "scam",
           submit(stack.url, SAFE, stack.tenant): "safe"}  # fmt: skip
    for task_id in ids:
        watch.wait_for(f"{task_id} · completed", on="stdout", within=60)

    output = watch.stdout()
    assert other not in output
    for task_id, verdict in ids.items():
        task = finished(stack.url, task_id, stack.tenant)
        assert task["final_verdict"] == verdict, task
        steps = steps_of(output, task_id)
        names = [step for step, _ in steps]
        assert names[0] == "entity_extraction" and names[-1] == "completed", steps
        assert "reasoning" in names, steps
        # Every event shown once: one line per timeline event, the first ones included (the
        # task was submitted right after the watch said it was following).
        timeline = timeline_of(stack.url, task_id, stack.tenant)
        shown = [(e["seq"], e["event_type"], e["step"]) for e in timeline]
        assert len(steps) == len(timeline), f"events: {shown}\nlines: {steps}"
        assert any(text.startswith(f"Verdict: {verdict} (score") for _, text in steps)
        assert steps[-1][1] == f"Analysis complete: {verdict}", steps

    watch.process.send_signal(signal.SIGINT)
    assert watch.exit_code(within=45) == CTRL_C, watch.stderr()
    assert "Traceback" not in watch.stderr() and "error" not in watch.stderr(), watch.stderr()


def test_watch_reconnects_to_a_restarted_api_and_misses_nothing(stack: Stack, watch: Watch) -> None:
    # A task under way when the api dies: the worker carries on while no socket is open, and
    # the reconnected watch catches up on what went by, each event once.
    running = submit(stack.url, SCAM, stack.tenant)
    watch.wait_for(running, on="stdout")
    stack.api.kill()
    watch.wait_for("lost the api at")
    stack.restart_api()
    watch.wait_for("reconnected to", within=60)
    watch.wait_for("catching up on", within=5)
    watch.wait_for(f"{running} · completed", on="stdout", within=60)
    timeline = timeline_of(stack.url, running, stack.tenant)
    assert len(steps_of(watch.stdout(), running)) == len(timeline), watch.stdout()

    task_id = submit(stack.url, SCAM, stack.tenant)
    watch.wait_for(f"{task_id} · completed", on="stdout", within=60)
    watch.process.send_signal(signal.SIGINT)
    assert watch.exit_code(within=45) == CTRL_C, watch.stderr()
    assert "Traceback" not in watch.stderr(), watch.stderr()


def test_watch_ends_with_one_line_when_the_api_stays_away(stack: Stack, tmp_path: Path) -> None:
    watch = Watch(stack, tmp_path, "--patience", "2")
    try:
        watch.wait_for("following the tenant's tasks")
        stack.api.kill()
        assert watch.exit_code(within=30) == EXIT_UNREACHABLE, watch.stderr()
    finally:
        watch.stop()
    *_, last = watch.stderr().splitlines()
    assert last.startswith(f"error: lost the scamtrail api at {stack.url} for 2 s"), last
    assert "Traceback" not in watch.stderr(), watch.stderr()
