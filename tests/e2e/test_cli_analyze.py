"""`scamtrail analyze`, `timeline` and `tasks list` as a user runs them: real processes for the
api, the relay and a worker, and the command in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infrastructure.settings import Settings
from tests.e2e.progress_stack import ROOT, child_env, free_port, start_api, start_relay
from tests.e2e.worker_process import WorkerProcess

pytestmark = pytest.mark.e2e

PARCEL_SMS = "URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top"


@pytest.fixture
def api_url(app_settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The whole system as separate processes. Auth is off here: tokens are the auth tests'
    business, and this test must not depend on a signing key being around."""
    env = child_env(
        database_url=app_settings.database_url,
        redis_url=app_settings.redis_url,
        queue=app_settings.queue,
        auth_disabled=True,
    )
    port = free_port()
    api = start_api(env, port, tmp_path / "api.log")
    relay = start_relay(env, tmp_path / "relay.log")
    worker = WorkerProcess(app_settings, tmp_path / "worker.log", auth_disabled=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        worker.stop()
        relay.stop()
        api.stop()


def scamtrail(*args: str, within: float = 60) -> subprocess.CompletedProcess[str]:
    env = child_env()  # no SCAMTRAIL_* from this process: the command must take --url
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=within,
    )


def test_analyze_shows_the_steps_then_the_verdict_with_reasons(api_url: str) -> None:
    done = scamtrail("analyze", PARCEL_SMS, "--kind", "sms", "--url", api_url)
    assert done.returncode == 0, done.stderr
    assert "verdict: " in done.stdout
    verdict = done.stdout.split("verdict: ")[1].split()[0]
    assert verdict in {"scam", "suspicious"}  # the test database holds no seed indicators
    assert "  • " in done.stdout  # at least one reason
    assert "entity_extraction" in done.stderr  # the live step list
    task_id = done.stdout.split("task ")[1].split()[0]

    timeline = scamtrail("timeline", task_id, "--json", "--url", api_url)
    assert timeline.returncode == 0, timeline.stderr
    entries = [json.loads(line) for line in timeline.stdout.splitlines()]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert entries[-1]["step"] == "completed"

    listed = scamtrail("tasks", "list", "--json", "--url", api_url)
    assert listed.returncode == 0, listed.stderr
    assert task_id in [json.loads(line)["task_id"] for line in listed.stdout.splitlines()]


def test_analyze_events_prints_every_event_once_in_order(api_url: str) -> None:
    done = scamtrail("analyze", PARCEL_SMS, "--events", "--url", api_url)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["step"] == "completed"
    assert {"step", "tool", "message", "percent", "timestamp", "error"} <= events[0].keys()


def test_analyze_json_prints_one_result_document(api_url: str) -> None:
    done = scamtrail("analyze", PARCEL_SMS, "--json", "--url", api_url)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert result["status"] == "completed" and result["verdict"] in {"scam", "suspicious"}
    assert 0 <= result["score"] <= 1 and 0 <= result["confidence"] <= 1
    assert result["reasons"] and all(reason["seqs"] for reason in result["reasons"]), result


def test_unknown_task_exits_2_and_no_server_exits_3(api_url: str) -> None:
    missing = scamtrail("timeline", "no-such-task", "--url", api_url)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
    down = scamtrail("analyze", PARCEL_SMS, "--url", f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 3
    assert "cannot reach the scamtrail api" in down.stderr
