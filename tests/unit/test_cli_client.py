"""The client commands' arguments and exit codes, with the api answered by an httpx mock."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from typer.testing import CliRunner

from api.cli import app
from api.cli.http import ApiClient, ClientError, Connection, default_url

pytestmark = pytest.mark.unit

Answer = Callable[[httpx.Request], httpx.Response]


# The connection the commands run with: the network until a test routes it to a function.
_connection: list[Connection] = [Connection()]


@pytest.fixture
def answer() -> Iterator[Callable[[Answer], list[httpx.Request]]]:
    """Route the commands' HTTP to a function; returns the list of requests it saw."""

    def install(handler: Answer) -> list[httpx.Request]:
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return handler(request)

        _connection[0] = Connection(transport=httpx.MockTransport(record))
        return seen

    yield install
    _connection[0] = Connection()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), obj=_connection[0])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("Connection refused", request=request)


def test_blank_content_is_bad_input_and_sends_nothing(answer: Callable[..., list[object]]) -> None:
    seen = answer(lambda r: httpx.Response(202))
    code, output = run("analyze", "   ")
    assert (code, seen) == (2, [])
    assert "blank" in output


def test_unknown_kind_is_bad_input() -> None:
    code, output = run("analyze", "hello", "--kind", "fax")
    assert code == 2
    assert "sms" in output  # the message lists the kinds there are


def test_a_url_that_is_not_http_is_bad_input() -> None:
    code, output = run("analyze", "hello", "--url", "127.0.0.1:8000")
    assert code == 2
    assert "--url" in output


def test_no_server_exits_3_with_one_line(answer: Callable[..., object]) -> None:
    answer(unreachable)
    code, output = run("analyze", "hello", "--url", "http://127.0.0.1:9")
    assert code == 3
    assert "cannot reach the scamtrail api at http://127.0.0.1:9" in output


def test_the_api_refusing_the_content_is_bad_input(answer: Callable[..., object]) -> None:
    detail = [{"loc": ["body", "content"], "msg": "Value error, content is blank"}]
    answer(lambda r: httpx.Response(422, json={"detail": detail}))
    code, output = run("analyze", "x")
    assert code == 2
    assert "content: Value error, content is blank" in output


def test_missing_token_says_how_to_pass_one(answer: Callable[..., object]) -> None:
    answer(lambda r: httpx.Response(401, json={"detail": "no bearer token"}))
    code, output = run("tasks", "list")
    assert code == 2
    assert "SCAMTRAIL_TOKEN" in output


def test_token_goes_in_the_authorization_header(answer: Callable[..., list[httpx.Request]]) -> None:
    seen = answer(lambda r: httpx.Response(200, json={"tasks": [], "next_cursor": None}))
    code, _ = run("tasks", "list", "--token", "abc.def", "--status", "completed")
    assert code == 0
    assert seen[0].headers["authorization"] == "Bearer abc.def"
    assert seen[0].url.params["status"] == "completed"


def test_server_error_exits_3(answer: Callable[..., object]) -> None:
    answer(lambda r: httpx.Response(500, text="boom"))
    code, _ = run("timeline", "t-1")
    assert code == 3


def test_unknown_task_is_bad_input(answer: Callable[..., object]) -> None:
    answer(lambda r: httpx.Response(404, json={"detail": "no task t-404"}))
    code, output = run("timeline", "t-404")
    assert code == 2
    assert "no task t-404" in output


def test_timeline_reads_every_page_in_order(answer: Callable[..., list[httpx.Request]]) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        after = int(request.url.params["after"])
        events = [_entry(after + 1)] if after < 3 else []
        return httpx.Response(
            200,
            json={"task_id": "t-1", "events": events, "next_after": after + 1 if events else None},
        )

    answer(page)
    code, output = run("timeline", "t-1", "--json")
    assert code == 0
    assert [line.split('"seq": ')[1][0] for line in output.splitlines()] == ["1", "2", "3"]


def test_url_defaults_to_scamtrail_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCAMTRAIL_PORT", "8123")
    assert default_url() == "http://127.0.0.1:8123"
    monkeypatch.delenv("SCAMTRAIL_PORT")
    assert default_url() == "http://127.0.0.1:8000"


def test_the_websocket_carries_the_token_in_its_query() -> None:
    with_token = ApiClient("https://example.org:8443/", "a b")
    assert with_token.websocket_url("t/1", 7) == (
        "wss://example.org:8443/ws/agent-progress/t%2F1?after=7&token=a%20b"
    )
    assert (
        ApiClient("http://h:1", None).websocket_url("t", 0)
        == "ws://h:1/ws/agent-progress/t?after=0"
    )


def test_client_error_carries_its_exit_code() -> None:
    with pytest.raises(ClientError) as caught:
        ApiClient("ftp://nowhere", None)
    assert caught.value.code == 2


def _entry(seq: int) -> dict[str, object]:
    return {
        "seq": seq,
        "event_type": "ProgressReported",
        "event_id": f"e{seq}",
        "step": "reasoning",
        "tool": None,
        "message": f"step {seq}",
        "error": False,
        "recorded_at": "2026-01-01T00:00:00.000Z",
        "actor": "worker",
        "duration_ms": None,
        "data": {},
    }
