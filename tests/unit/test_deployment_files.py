"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the file parses, every
scamtrail service runs a command the image's entry point accepts, every SCAMTRAIL_* name is a
setting, and every service waited for can say it is ready."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from api.cli import app
from api.cli import database as cli_database
from infrastructure.settings import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SETTING = re.compile(r"\bSCAMTRAIL_[A-Z0-9_]+\b")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def scamtrail_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose()["services"].items() if "build" in s}


def dockerfile_json(instruction: str) -> list[str]:
    """The exec-form (JSON) argument of an instruction, e.g. ENTRYPOINT ["scamtrail"]."""
    match = re.search(rf"^{instruction}\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"the Dockerfile has no exec-form {instruction}"
    value: list[str] = json.loads(match[1])
    return value


class Refused(Exception):
    """scamtrail would refuse these arguments."""


def parses_as_scamtrail_command(args: list[str]) -> None:
    """Resolve `args` as `scamtrail ARGS` would, options included, without running anything.
    Raises Refused when scamtrail would not accept them."""
    command: Any = typer.main.get_command(app)
    rest = list(args)
    while hasattr(command, "get_command"):  # a group: the next word names a subcommand
        if not rest:
            raise Refused(f"{command.name} needs a subcommand")
        name = rest.pop(0)
        command = command.get_command(command.make_context(command.name, [name]), name)
        if command is None:
            raise Refused(f"no scamtrail command {name!r}")
    try:
        command.make_context(command.name, rest)  # parses the options, refuses unknown ones
    except Exception as error:  # typer's bundled click raises its own UsageError family
        raise Refused(f"{args}: {error}") from None


def test_compose_parses_and_runs_the_whole_system() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "api", "worker", "relay"} <= services.keys()


def test_the_image_entry_point_is_the_scamtrail_command() -> None:
    assert dockerfile_json("ENTRYPOINT") == ["scamtrail"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "scamtrail" in scripts
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE.read_text(), re.MULTILINE)
    parses_as_scamtrail_command(dockerfile_json("CMD"))


@pytest.mark.parametrize("name", ["migrate", "api", "worker", "relay"])
def test_every_service_command_is_a_scamtrail_command(name: str) -> None:
    service = scamtrail_services()[name]
    assert isinstance(service["command"], list), "exec form: no shell between docker and us"
    parses_as_scamtrail_command(service["command"])


def test_a_wrong_command_would_be_caught() -> None:
    """The check above can fail: an unknown command or option is refused."""
    with pytest.raises(Refused):
        parses_as_scamtrail_command(["serve"])
    with pytest.raises(Refused):
        parses_as_scamtrail_command(["api", "--listen", "0.0.0.0"])


def test_every_scamtrail_variable_is_a_setting() -> None:
    known = {f"SCAMTRAIL_{name.upper()}" for name in Settings.model_fields}
    used = set(SETTING.findall(COMPOSE.read_text())) | set(SETTING.findall(DOCKERFILE.read_text()))
    assert used, "compose sets no SCAMTRAIL_* variable: the services would use the defaults"
    assert used <= known, f"not settings: {sorted(used - known)}"


def test_services_wait_for_what_they_need() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for needed, condition in (service.get("depends_on") or {}).items():
            assert needed in services, f"{name} depends on a missing service {needed}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{needed} has no healthcheck"
    for name in ("api", "worker", "relay"):
        waits = services[name]["depends_on"]
        assert waits["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_the_one_shot_service_migrates_and_seeds_as_make_up_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = scamtrail_services()["migrate"]
    command = service["command"]
    assert command == ["seed"], "an empty scam database: the agent finds no known indicator"
    # The service names its database, as commands away from a `scamtrail up` must.
    monkeypatch.setenv("SCAMTRAIL_DATABASE_URL", service["environment"]["SCAMTRAIL_DATABASE_URL"])
    steps: list[str] = []

    def migrate(settings: Settings) -> None:
        steps.append("migrate")
        raise typer.Exit(0)  # stop before the seed needs a database

    monkeypatch.setattr(cli_database, "migrate_database", migrate)
    assert CliRunner().invoke(app, command).exit_code == 0
    assert steps == ["migrate"], "`seed` must migrate first: the one-shot runs nothing else"


def test_postgres_and_redis_are_not_published_on_the_host() -> None:
    """A developer's own PostgreSQL or Redis on 5432/6379 would make `up` fail to bind."""
    services = compose()["services"]
    for name in ("postgres", "redis"):
        assert not services[name].get("ports"), f"{name} publishes a host port"


def test_every_replica_shares_one_required_jwt_secret() -> None:
    """Each api replica would otherwise make its own developer secret and refuse tokens the
    others signed; compose must stop with a message when the secret is not set."""
    for name, service in scamtrail_services().items():
        secret = service["environment"].get("SCAMTRAIL_JWT_SECRET", "")
        assert secret.startswith("${SCAMTRAIL_JWT_SECRET:?"), f"{name}: {secret!r}"
        assert len(secret.split(":?", 1)[1].rstrip("}")) > 10, "the error needs a message"
