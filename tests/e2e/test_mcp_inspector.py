"""The MCP Inspector's CLI mode (npm: @modelcontextprotocol/inspector-cli, pinned in
tests/e2e/mcp-inspector/package.json) against a real stack: an api process, a relay and a
worker. Over streamable HTTP at /mcp with the bearer token header, and over stdio against
`scamtrail mcp` with SCAMTRAIL_TOKEN:

- `tools/list` lists analyze_message, get_task, get_audit, list_tasks, review_task, cancel_task
- `tools/call get_task` with a finished task's id returns that task, as GET /tasks/{id} does
- without the token, /mcp refuses the Inspector

`make test` and .ci/run install it (`npm ci --prefix tests/e2e/mcp-inspector`); where it is not
installed these tests skip, saying why, except under CI=true, where they fail: CI must prove it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from infrastructure.settings import Settings
from tests.auth import token
from tests.e2e.progress_stack import ROOT, child_env, free_port, processes, start_api, start_relay
from tests.e2e.worker_process import WorkerProcess
from tests.fault_toolbox import slow_tools
from tests.waiting import eventually_sync

pytestmark = pytest.mark.e2e

PACKAGE = "@modelcontextprotocol/inspector-cli"
INSPECTOR = ROOT / "tests" / "e2e" / "mcp-inspector"
CLI = INSPECTOR / "node_modules" / PACKAGE / "build" / "cli.js"
TOOLS = {"analyze_message", "get_task", "get_audit", "list_tasks", "review_task", "cancel_task"}
SCAM = "URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top"
TENANT = "acme"
RUN_TIMEOUT_S = 90  # one Inspector run: node's start, the server's (stdio), one request


@dataclass(frozen=True)
class Stack:
    url: str
    env: dict[str, str]  # the settings of every process, for `scamtrail mcp`
    task: dict[str, Any]  # a finished task, as GET /tasks/{id} returns it


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, once the pinned Inspector is installed; else skip, or fail under CI."""
    pinned = json.loads((INSPECTOR / "package.json").read_text())["dependencies"][PACKAGE]
    installed = CLI.parents[1] / "package.json"
    found = shutil.which("node")
    if found is None:
        why = "node is not on PATH"
    elif not installed.exists():
        why = f"{PACKAGE} is not installed (make mcp-inspector)"
    elif (version := json.loads(installed.read_text())["version"]) != pinned:
        why = f"{PACKAGE} {version} is installed, {pinned} is pinned (make mcp-inspector)"
    else:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"the MCP Inspector cannot run in CI: {why}")
    pytest.skip(f"the MCP Inspector cannot run: {why}")


@pytest.fixture
def stack(app_settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    env = child_env(database_url=app_settings.database_url, redis_url=app_settings.redis_url,
                    queue=app_settings.queue)  # fmt: skip
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with processes() as started:
        started.append(start_relay(env, tmp_path / "relay.log"))
        started.append(start_api(env, port, tmp_path / "api.log"))
        worker = WorkerProcess(app_settings, tmp_path / "worker.log", **slow_tools())
        try:
            yield Stack(url, env, _finished_task(url))
        finally:
            worker.stop()


def _finished_task(url: str) -> dict[str, Any]:
    """Submit SCAM over REST and return the task once the worker has finished it, so that
    nothing about it changes while the Inspector reads it."""
    headers = {"Authorization": f"Bearer {jwt()}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        accepted = http.post("/tasks", json={"content": SCAM, "kind": "sms"})
        assert accepted.status_code == 202, accepted.text
        task_id = accepted.json()["task_id"]
        task: dict[str, Any] = eventually_sync(
            lambda: http.get(f"/tasks/{task_id}").json(),
            until=lambda task: task["status"] in ("completed", "failed"),
            within=60,
            what="the worker finishes the task",
            interval=0.1,
        )
    assert task["status"] == "completed", task
    return task


def jwt() -> str:
    return token(TENANT, ["submitter", "analyst"], "inspector-e2e")


def inspector(node: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run the Inspector's CLI mode once and return the JSON it prints on stdout; fail with
    its stderr if it exits non-zero."""
    done = _run(node, *args, env=env)
    assert done.returncode == 0, f"the Inspector exited {done.returncode}:\n{done.stderr}"
    return json.loads(done.stdout)


def _run(
    node: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One run of `--cli`, in a process group of its own: the launcher starts the CLI proper as
    a child of node's, which starts `scamtrail mcp` over stdio, and a run past its time is
    ended with every one of them."""
    # The working directory is the CLI's own build folder: the CLI reads its name and version
    # from `../package.json` as seen from the working directory, which holds only there.
    command = [node, str(CLI), "--cli", *args]
    with subprocess.Popen(
        command,
        cwd=CLI.parent,
        env=env if env is not None else child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    ) as inspector:
        try:
            stdout, stderr = inspector.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(inspector.pid, signal.SIGKILL)
            stdout, stderr = inspector.communicate()
            pytest.fail(f"the Inspector did not finish within {RUN_TIMEOUT_S} s:\n{stderr}")
    return subprocess.CompletedProcess(command, inspector.returncode, stdout, stderr)


def _check_tools_and_task(node: str, target: list[str], stack: Stack, **kw: Any) -> None:
    listed = inspector(node, *target, "--method", "tools/list", **kw)
    names = {tool["name"] for tool in listed["tools"]}
    assert names >= TOOLS, names
    task_id = stack.task["task_id"]
    call = ("--method", "tools/call", "--tool-name", "get_task", "--tool-arg", f"task_id={task_id}")
    found = inspector(node, *target, *call, **kw)
    assert not found.get("isError"), found
    task = found["structuredContent"]
    for field in ("task_id", "kind", "status", "final_verdict", "score", "content_preview"):
        assert task[field] == stack.task[field], (field, task, stack.task)


def test_over_streamable_http_with_the_bearer_header(node: str, stack: Stack) -> None:
    target = [f"{stack.url}/mcp", "--transport", "http"]
    _check_tools_and_task(node, [*target, "--header", f"Authorization: Bearer {jwt()}"], stack)
    refused = _run(node, *target, "--method", "tools/list")  # no token: the api's 401
    assert refused.returncode != 0 and "no bearer token" in refused.stderr, refused.stderr


def test_over_stdio_against_scamtrail_mcp(node: str, stack: Stack) -> None:
    # The Inspector hands its own environment to the server it starts.
    env = {**stack.env, "SCAMTRAIL_TOKEN": jwt()}
    server = [sys.executable, "-m", "api.cli", "mcp"]
    _check_tools_and_task(node, server, stack, env=env)
