"""Admin commands fail with one line and an exit code that says whose fault it is: 2 for what
the user typed (arguments, the role in the URL), 3 for a server that is not there."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
import websockets
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner
from websockets.datastructures import Headers
from websockets.http11 import Response

from api.cli import app
from api.cli import database as cli_database
from api.cli import live as cli_live
from api.cli.http import ApiClient, ClientError
from api.errors import EXIT_BAD_INPUT, EXIT_UNREACHABLE

pytestmark = pytest.mark.unit


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


@pytest.mark.parametrize("age", ["99999999999d", "99999999999999999999m", "40000d"])
def test_prune_refuses_an_age_longer_than_a_century(age: str) -> None:
    code, output = run("tasks", "prune", "--older-than", age)
    assert code == EXIT_BAD_INPUT
    assert "is longer than 36500d" in output


def wrong_role() -> asyncpg.PostgresError:
    error = asyncpg.InvalidAuthorizationSpecificationError('role "nobody" does not exist')
    error.sqlstate = "28000"
    return error


@pytest.mark.parametrize(
    "where", ["creating the database", "migrating"], ids=["asyncpg", "through-alembic"]
)
def test_migrate_with_a_wrong_role_says_so(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    async def refuse(url: str) -> bool:
        raise wrong_role()

    async def exists(url: str) -> bool:
        return False

    def refuse_in_alembic(url: str) -> None:
        raise OperationalError("SELECT 1", {}, wrong_role())

    if where == "creating the database":
        monkeypatch.setattr(cli_database, "ensure_database", refuse)
    else:
        monkeypatch.setattr(cli_database, "ensure_database", exists)
        monkeypatch.setattr(cli_database, "migrate_sync", refuse_in_alembic)
    monkeypatch.setenv("SCAMTRAIL_DATABASE_URL", "postgresql://nobody:secret@db.example:5432/x")
    code, output = run("migrate")
    assert code == EXIT_BAD_INPUT
    assert 'role "nobody" does not exist' in output
    assert "secret" not in output


@pytest.mark.parametrize(("status", "exit_code"), [(503, EXIT_UNREACHABLE), (403, EXIT_BAD_INPUT)])
async def test_a_refused_progress_socket_is_unreachable_only_on_a_5xx(
    monkeypatch: pytest.MonkeyPatch, status: int, exit_code: int
) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise websockets.InvalidStatus(Response(status, "", Headers()))

    monkeypatch.setattr(websockets, "connect", refused)  # as api.cli.live calls it
    with pytest.raises(ClientError) as raised:
        await cli_live.follow(ApiClient("http://127.0.0.1:9", None), "t-1", lambda _: None)
    assert raised.value.code == exit_code
    assert f"({status})" in str(raised.value)
