"""What the client commands print: `analyze --json` one result document, `--events` the event
lines; whole task ids in tables; `tasks watch` one line per event of the tenant; `status` where
everything is; and the worker's log quiet about a sweep that found nothing."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from typer.testing import CliRunner

from api.cli import app, client
from api.cli import live as cli_live
from api.cli.http import ApiClient, ClientError, Connection
from api.errors import EXIT_BAD_INPUT, EXIT_UNREACHABLE
from infrastructure.embedded_redis import free_port
from infrastructure.settings import load_settings
from workers.jobs import build_worker

pytestmark = pytest.mark.unit

TASK = str(uuid.uuid4())
EVENTS = [
    {"seq": 1, "step": "submitted", "task_id": TASK, "message": "Submitted"},
    {"seq": 2, "step": "completed", "task_id": TASK, "message": "Done"},
]
AUDIT = {
    "task_id": TASK,
    "status": "completed",
    "verdict": {
        "agent": "scam",
        "final": "scam",
        "score": 0.91,
        "confidence": 0.8,
        "seq": 9,
        "reviewed": False,
    },
    "reasons": [
        {"code": "lure", "text": "Asks for a fee", "weight": 0.5, "evidence": [{"seq": 4}]},
        {
            "code": "domain",
            "text": "Look-alike",
            "weight": 0.4,
            "evidence": [{"seq": 6}, {"seq": 7}],
        },
    ],
}


def api(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if request.method == "POST":
        return httpx.Response(202, json={"task_id": TASK})
    if path.endswith("/audit"):
        return httpx.Response(200, json=AUDIT)
    if path == "/tasks":
        tasks = [
            {
                "task_id": str(uuid.uuid4()),
                "kind": "text",
                "status": "completed",
                "final_verdict": "suspicious",
                "submitted_at": "2025-01-01T12:00:00.123Z",
            }
            for _ in range(3)
        ]
        return httpx.Response(200, json={"tasks": tasks})
    return httpx.Response(200, json={"task_id": TASK, "status": "completed", "error": None})


@pytest.fixture
def followed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The progress socket replaced: it hands on EVENTS and ends completed."""

    async def follow(_: ApiClient, task_id: str, on_event: cli_live.Handler) -> str:
        for event in EVENTS:
            on_event(event)
        return "completed"

    monkeypatch.setattr(client, "follow", follow)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), obj=Connection(httpx.MockTransport(api)))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


def test_analyze_json_prints_one_result_document(followed: None) -> None:
    code, stdout, _ = run("analyze", "pay 1.99 now", "--json")
    assert code == 0
    (line,) = stdout.strip().splitlines()
    result = json.loads(line)
    assert result["task_id"] == TASK and result["status"] == "completed"
    assert (result["verdict"], result["score"], result["confidence"]) == ("scam", 0.91, 0.8)
    assert [r["seqs"] for r in result["reasons"]] == [[4], [6, 7]]
    assert result["reasons"][0]["text"] == "Asks for a fee"


def test_analyze_events_prints_the_event_lines(followed: None) -> None:
    code, stdout, _ = run("analyze", "pay 1.99 now", "--events")
    assert code == 0
    assert [json.loads(line) for line in stdout.strip().splitlines()] == EVENTS


def test_task_ids_are_never_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    result = CliRunner().invoke(
        app, ["tasks", "list"], obj=Connection(httpx.MockTransport(api)), env={"COLUMNS": "60"}
    )
    assert result.exit_code == 0, result.output
    ids = [line.split()[1] for line in result.stdout.splitlines() if line.count("-") >= 4]
    assert len(ids) == 3 and all(uuid.UUID(i) for i in ids), result.stdout


async def test_watch_prints_each_event_of_the_tenant_once() -> None:
    """The server closes after two events (idle), then sends one more and a repeat of an old
    one on the next socket, then refuses the third (4403): the watch reconnects after the first
    close and stops, with the refusal's exit code, at the third."""
    sockets: list[str] = []
    rounds = [
        [EVENTS[0], {**EVENTS[0], "seq": 2, "step": "running"}],
        [{**EVENTS[0], "seq": 2, "step": "running"}, {**EVENTS[0], "seq": 3, "step": "done"}],
    ]

    async def serve(ws: Any) -> None:
        sockets.append(ws.request.path)
        await ws.send(json.dumps({"step": "connected", "message": "hi"}))
        if len(sockets) > len(rounds):
            await ws.close(4403, "forbidden")
            return
        for event in rounds[len(sockets) - 1]:
            await ws.send(json.dumps(event))
        await ws.close(1000, "idle timeout")

    seen: list[dict[str, Any]] = []
    async with websockets.serve(serve, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ClientError) as refused:
            await cli_live.watch_tenant(ApiClient(f"http://127.0.0.1:{port}", "tok"), seen.append)
    assert refused.value.code == EXIT_BAD_INPUT
    assert [e["seq"] for e in seen] == [1, 2, 3]
    assert sockets[0] == "/ws/tasks?tenant=&token=tok"
    line = cli_live.event_line({**EVENTS[0], "timestamp": "2025-01-01T12:00:00.123Z"})
    assert TASK in line and "submitted" in line


def test_status_says_where_each_part_is_and_hides_passwords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("SCAMTRAIL_"):
            monkeypatch.delenv(name)
    nobody = free_port()  # nothing listens there
    monkeypatch.setenv("SCAMTRAIL_DATABASE_URL", f"postgresql://u:s3cret@127.0.0.1:{nobody}/x")
    monkeypatch.setenv("SCAMTRAIL_REDIS_URL", f"redis://:s3cret@127.0.0.1:{nobody}/0")
    result = CliRunner().invoke(app, ["status", "--url", f"http://127.0.0.1:{nobody}"])
    assert result.exit_code == EXIT_UNREACHABLE, result.output
    assert "s3cret" not in result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("up") and "no `scamtrail up`" in lines[0]
    for name, source in (("api", "--url"), ("database", "SCAMTRAIL_DATABASE_URL")):
        (line,) = [line for line in lines if line.startswith(name)]
        assert source in line and "does not answer" in line, line
    assert any("u:***@127.0.0.1" in line for line in lines)


@pytest.fixture
def arq_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    build_worker(load_settings(redis_url="redis://127.0.0.1:9/0"), handle_signals=False)
    with caplog.at_level(logging.INFO, logger="arq.worker"):
        yield caplog


def test_a_sweep_that_found_nothing_is_not_logged(arq_log: pytest.LogCaptureFixture) -> None:
    arq = logging.getLogger("arq.worker")
    ref = "cron:sweep_lost_tasks:1700000000000:cron:sweep_lost_tasks"
    arq.info("%6.2fs → %s(%s)%s", 0.01, ref, "", "")  # as arq writes them
    arq.info("%6.2fs ← %s ● %s", 0.0, ref, "0")
    arq.info("%6.2fs → %s(%s)%s", 0.01, "abc:analyze", "'t-1'", "")
    arq.error("%6.2fs ! %s failed, %s", 0.0, ref, "OSError")
    assert [r.levelname for r in arq_log.records] == ["INFO", "ERROR"]
    assert "analyze" in arq_log.records[0].getMessage()
