"""The operator's second terminal: `scamtrail up` runs in a fresh clone on its embedded
PostgreSQL and Redis, and every command run beside it with no SCAMTRAIL_* variable set — no
--url either — reaches that stack, never 127.0.0.1:5432 / :6379 / :8000. A second `up` on the
same port fails before it prints a token."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.e2e.progress_stack import free_port
from tests.e2e.test_first_five_minutes import PARCEL_SMS, clone, scamtrail, system_up

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
__all__ = ["clone"]  # the fixture


def test_commands_beside_up_reach_its_stack(clone: Path, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "up.log"
    with system_up(clone, port, log):
        made = scamtrail(clone, "token", "--role", "submitter", "--role", "analyst")
        assert made.returncode == 0, made.stderr
        auth = ["--token", made.stdout.strip()]

        done = scamtrail(clone, "analyze", PARCEL_SMS, "--json", *auth)
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{log.read_text()[-3000:]}"
        result = json.loads(done.stdout)
        assert result["verdict"] == "scam" and result["reasons"], result
        assert all(reason["seqs"] for reason in result["reasons"]), result

        listed = scamtrail(clone, "tasks", "list", *auth)
        assert listed.returncode == 0 and result["task_id"] in listed.stdout, listed.stdout
        timeline = scamtrail(clone, "timeline", result["task_id"], *auth)
        assert timeline.returncode == 0 and "completed" in timeline.stdout, timeline.stderr

        rebuilt = scamtrail(clone, "projections", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "rebuilt 1 tasks" in rebuilt.stderr, rebuilt.stderr

        status = scamtrail(clone, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"http://127.0.0.1:{port}" in status.stdout
        assert "embedded" in status.stdout and "5432" not in status.stdout

        again = scamtrail(clone, "up", "--port", str(port))
        assert again.returncode == 2, again.stderr
        assert f"port {port}" in again.stderr and "--port" in again.stderr
        assert "scamtrail is up" not in again.stderr + again.stdout
        assert "developer token" not in again.stderr + again.stdout
    assert not (clone / ".scamtrail" / "up.json").exists(), "up.json outlived `up`"

    gone = scamtrail(clone, "projections", "rebuild")
    assert gone.returncode == 3 and "no `scamtrail up` is running" in gone.stderr, gone.stderr


def test_a_taken_port_fails_before_a_token(clone: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = scamtrail(clone, "up", "--port", str(port))
    assert refused.returncode == 2, refused.stderr
    assert f"port {port}" in refused.stderr and "SCAMTRAIL_PORT" in refused.stderr
    assert "scamtrail is up" not in refused.stderr and "token" not in refused.stderr
