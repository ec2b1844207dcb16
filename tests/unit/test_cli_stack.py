"""The commands of a second terminal find the `scamtrail up` running in their directory
(./.scamtrail/up.json, valid while `up` holds its lock), or refuse in one line; a variable that
is set always wins. Also: a taken port, and `scamtrail token` away from the developer secret."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app, stack
from api.cli.http import default_url
from api.errors import EXIT_BAD_INPUT, EXIT_UNREACHABLE
from infrastructure.embedded import LOCK_FILE

pytestmark = pytest.mark.unit

EMBEDDED = {
    "database_url": "postgresql+asyncpg://postgres@/scamtrail?host=/tmp/embedded",
    "redis_url": "redis://127.0.0.1:46379/0",
}
ADMIN_COMMANDS = [
    ["projections", "rebuild"],
    ["tasks", "prune", "--older-than", "90d"],
    ["migrate"],
    ["seed"],
    ["worker", "--burst"],
    ["relay"],
    ["indicators", "import", "feed.txt", "--source", "t", "--format", "urls"],
]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no SCAMTRAIL_* variable: a second terminal."""
    for name in list(os.environ):
        if name.startswith("SCAMTRAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "feed.txt").write_text("https://bad.example/\n")
    return tmp_path


@contextlib.contextmanager
def running_up(root: Path, *, locked: bool = True) -> Iterator[None]:
    """What `scamtrail up` leaves in `root` while it runs: its lock held, up.json written."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if locked:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with stack.recorded(root, stack.Stack(os.getpid(), "http://127.0.0.1:8765", EMBEDDED)):
            yield
    finally:
        os.close(fd)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_admin_commands_without_a_stack_refuse_in_one_line(here: Path, command: list[str]) -> None:
    code, output = run(*command)
    assert code == EXIT_UNREACHABLE, output
    assert len(output.strip().splitlines()) == 1, output
    assert "scamtrail up" in output and "SCAMTRAIL_DATABASE_URL" in output


def test_the_running_stack_gives_its_urls(here: Path) -> None:
    with running_up(here / ".scamtrail"):
        settings = stack.stack_settings("database_url", "redis_url")
        assert default_url() == "http://127.0.0.1:8765"
    assert (settings.database_url, settings.redis_url) == tuple(EMBEDDED.values())
    assert not (here / ".scamtrail" / stack.STATE_FILE).exists(), "up.json outlived `up`"


def test_a_variable_that_is_set_wins(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCAMTRAIL_DATABASE_URL", "postgresql://me@db.example/x")
    monkeypatch.setenv("SCAMTRAIL_PORT", "9001")
    with running_up(here / ".scamtrail"):
        settings = stack.stack_settings("database_url", "redis_url")
        assert default_url() == "http://127.0.0.1:9001"
    assert settings.database_url == "postgresql+asyncpg://me@db.example/x"
    assert settings.redis_url == EMBEDDED["redis_url"]


def test_a_file_left_by_a_crashed_up_is_ignored(here: Path) -> None:
    with running_up(here / ".scamtrail", locked=False):
        assert stack.running() is None
        assert default_url() == "http://127.0.0.1:8000"
        code, output = run("migrate")
    assert code == EXIT_UNREACHABLE and "no `scamtrail up` is running" in output


def test_passwords_are_hidden() -> None:
    assert stack.hide_password("redis://:s3cret@h:1/0") == "redis://:***@h:1/0"
    hidden = stack.hide_password("postgresql://u:s3cret@h/db?sslmode=require")
    assert hidden == "postgresql://u:***@h/db?sslmode=require"
    assert stack.hide_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_a_taken_port_fails_before_anything_starts(here: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = run("up", "--port", str(port))
    assert code == EXIT_BAD_INPUT, output
    assert len(output.strip().splitlines()) == 1, output
    assert f"port {port}" in output and "--port" in output and "SCAMTRAIL_PORT" in output
    assert "scamtrail is up" not in output and not (here / ".scamtrail").exists()


def test_token_away_from_the_developer_secret_refuses(here: Path) -> None:
    code, output = run("token")
    assert code == EXIT_BAD_INPUT, output
    assert len(output.strip().splitlines()) == 1, output
    assert "scamtrail up" in output and "SCAMTRAIL_JWT_SECRET" in output
    assert not (here / ".scamtrail").exists(), "a new developer secret was made"


def test_token_signs_with_the_secret_up_made_or_the_configured_one(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (here / ".scamtrail").mkdir()
    (here / ".scamtrail" / "dev-jwt-secret").write_text("x" * 64)
    code, output = run("token")
    assert code == 0 and output.count(".") == 2, output
    monkeypatch.chdir(here / ".scamtrail")
    monkeypatch.setenv("SCAMTRAIL_JWT_SECRET", "y" * 64)
    code, output = run("token")
    assert code == 0 and output.count(".") == 2, output
