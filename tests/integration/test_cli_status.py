"""`scamtrail status` against real servers: PostgreSQL and Redis that answer are said to, the
api that does not is said not to, and the password in a URL never reaches the output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from api.cli import app
from api.errors import EXIT_UNREACHABLE
from infrastructure.embedded_redis import free_port

pytestmark = pytest.mark.integration


def test_status_says_which_parts_answer(
    database_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("SCAMTRAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no `scamtrail up` here
    monkeypatch.setenv("SCAMTRAIL_DATABASE_URL", database_url)
    monkeypatch.setenv("SCAMTRAIL_REDIS_URL", redis_url)
    nobody = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["status", "--url", nobody])
    assert result.exit_code == EXIT_UNREACHABLE, result.output  # the api does not answer
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "answers" in lines["database"] and "does not" not in lines["database"], lines
    assert "answers" in lines["redis"] and "does not" not in lines["redis"], lines
    assert "does not answer" in lines["api"], lines
    password = make_url(database_url).password
    assert not password or password not in result.output
