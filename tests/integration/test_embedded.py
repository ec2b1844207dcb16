"""The embedded PostgreSQL and Redis of `scamtrail up`: data survives a restart, a crash leaves
nothing that blocks the next start, and a set URL starts nothing."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis
from pgserver.postgres_server import PostgresServer
from typer.testing import CliRunner

from api.cli import app
from api.cli.up import EXIT_ALREADY_RUNNING
from infrastructure.embedded import (
    AlreadyRunning,
    EmbeddedPostgres,
    _is_postgres,
    _postmaster_pid,
    embedded_services,
)
from infrastructure.embedded_redis import EmbeddedRedis, _is_redis
from tests.waiting import eventually_sync

pytestmark = pytest.mark.integration


@pytest.fixture
def home() -> Iterator[Path]:
    # Not pytest's tmp_path: it is private (0700) and PostgreSQL runs as another user under root.
    path = Path(tempfile.mkdtemp(prefix="scamtrail-embedded-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_redis_keeps_its_data_across_a_restart(home: Path) -> None:
    first = EmbeddedRedis(home / "redis")
    url = first.start()
    assert ":6379/" not in url
    redis.Redis.from_url(url).rpush("queued-job", "t-1")
    first.stop()
    second = EmbeddedRedis(home / "redis")
    try:
        assert redis.Redis.from_url(second.start()).lrange("queued-job", 0, -1) == [b"t-1"]
    finally:
        second.stop()


def test_a_redis_left_running_by_a_crash_is_adopted_then_stopped(home: Path) -> None:
    crashed = EmbeddedRedis(home / "redis")  # its `up` dies without calling stop()
    url = crashed.start()
    pid = crashed._pid
    assert pid is not None
    again = EmbeddedRedis(home / "redis")
    assert again.start() == url
    again.stop()
    assert not _is_redis(pid)


def test_a_stale_redis_state_file_does_not_block_a_start(home: Path) -> None:
    (home / "redis").mkdir()
    (home / "redis" / "server.json").write_text('{"pid": 999999, "port": 1}')
    server = EmbeddedRedis(home / "redis")
    try:
        assert redis.Redis.from_url(server.start()).ping()
    finally:
        server.stop()


def test_postgres_starts_after_its_server_was_killed(home: Path) -> None:
    first = EmbeddedPostgres(home / "postgres")
    url = first.start()
    pid = _postmaster_pid(home / "postgres")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # a crash: postmaster.pid and the socket's lock stay behind
    eventually_sync(lambda: not _is_postgres(pid), within=10, what="the killed postmaster gone")
    PostgresServer._instances.clear()  # what a new `scamtrail up` process starts with
    again = EmbeddedPostgres(home / "postgres")
    url = again.start()
    try:
        assert asyncio.run(_select_one(url)) == 1
    finally:
        again.stop()
    assert not (home / "postgres" / "postmaster.pid").exists()


def test_services_start_only_where_no_url_is_set(home: Path) -> None:
    both = {"SCAMTRAIL_DATABASE_URL": "postgresql://x@h/db", "SCAMTRAIL_REDIS_URL": "redis://h"}
    with embedded_services(home, environ=both) as overrides:
        assert overrides == {}
    assert not home.joinpath("postgres").exists()
    with embedded_services(home, environ={"SCAMTRAIL_DATABASE_URL": "x"}) as overrides:
        assert set(overrides) == {"redis_url"}
        assert redis.Redis.from_url(overrides["redis_url"]).ping()
    assert not (home / "redis" / "server.json").exists()


async def _select_one(url: str) -> int:
    # The database `up` would create; here the default one, reached over the same socket.
    conn = await asyncpg.connect(url.replace("+asyncpg", "").replace("/scamtrail?", "/postgres?"))
    try:
        value: int = await conn.fetchval("SELECT 1")
        return value
    finally:
        await conn.close()


def test_a_second_start_in_the_same_directory_is_refused_and_stops_nothing(home: Path) -> None:
    only_redis = {"SCAMTRAIL_DATABASE_URL": "postgresql://elsewhere/x"}
    with embedded_services(home, environ=only_redis) as first:
        second = embedded_services(home, environ=only_redis)
        with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
            second.__enter__()  # refused before it starts anything
        assert redis.Redis.from_url(first["redis_url"]).ping()  # the first one's is untouched
    with embedded_services(home, environ=only_redis) as again:  # the lock went with the owner
        assert redis.Redis.from_url(again["redis_url"]).ping()


def test_up_refuses_to_start_where_another_up_runs(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(home)
    monkeypatch.delenv("SCAMTRAIL_DATABASE_URL", raising=False)
    monkeypatch.delenv("SCAMTRAIL_REDIS_URL", raising=False)
    (home / ".scamtrail").mkdir()
    with (home / ".scamtrail" / "up.lock").open("w") as held:
        held.write("4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = CliRunner().invoke(app, ["up", "--port", "1"])
    assert result.exit_code == EXIT_ALREADY_RUNNING, result.output
    assert "another `scamtrail up` (pid 4242) is running" in result.output
    assert not (home / ".scamtrail" / "postgres").exists()  # refused before starting anything
