"""`scamtrail up` runs the api, the relay and a worker on one event loop: the worker must ride a
Redis outage out as `scamtrail worker` does, and Ctrl-C must stop everything cleanly even while
Redis is gone. Fakes stand in for uvicorn, the relay and arq."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from api import cli
from infrastructure.settings import load_settings
from workers import jobs, relay_main

pytestmark = pytest.mark.unit


class FakeServer:
    """uvicorn's server: serves until `should_exit` (Ctrl-C) is set."""

    instance: FakeServer | None = None

    def __init__(self, settings: object, host: str) -> None:
        self.should_exit = False
        FakeServer.instance = self

    async def serve(self) -> None:
        while not self.should_exit:  # noqa: ASYNC110 - a flag, polled, as uvicorn does
            await asyncio.sleep(0.01)


class FakeWorker:
    """An arq worker whose first run loses Redis; every close fails (Redis is gone)."""

    built: ClassVar[list[FakeWorker]] = []

    def __init__(self) -> None:
        self.ctx: dict[str, Any] = {}
        self._pool = None
        self.first = not FakeWorker.built
        FakeWorker.built.append(self)

    async def async_run(self) -> None:
        if self.first:
            raise RedisConnectionError("Connection reset by peer")
        await asyncio.Event().wait()  # polls the queue until cancelled

    async def close(self) -> None:
        raise RedisConnectionError("Connection refused")


@pytest.fixture
def up_with_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeWorker.built = []
    monkeypatch.setattr(cli, "_QuietServer", FakeServer)
    monkeypatch.setattr(jobs, "build_worker", lambda *a, **kw: FakeWorker())

    async def relay(settings: object, stop: asyncio.Event) -> None:
        await stop.wait()

    monkeypatch.setattr(relay_main, "run_relay", relay)


async def until(condition: Any, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - conditions on fakes and logs have no event
            await asyncio.sleep(0.01)


async def test_the_worker_is_rebuilt_after_redis_drops_and_ctrl_c_stops_cleanly(
    up_with_fakes: None,
) -> None:
    system = asyncio.create_task(cli._whole_system(load_settings(), "127.0.0.1"))
    await until(lambda: len(FakeWorker.built) >= 2)  # the first run's ConnectionError: rebuilt
    assert FakeServer.instance is not None
    FakeServer.instance.should_exit = True  # Ctrl-C, Redis still gone: close() fails
    await asyncio.wait_for(system, 5)  # no exception out of `up`


async def test_a_part_that_ends_while_up_is_running_is_reported(
    up_with_fakes: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken_relay(settings: object, stop: asyncio.Event) -> None:
        raise RuntimeError("relay bug")

    monkeypatch.setattr(relay_main, "run_relay", broken_relay)
    system = asyncio.create_task(cli._whole_system(load_settings(), "127.0.0.1"))
    with caplog.at_level(logging.ERROR, logger=cli.__name__):
        await until(lambda: "relay stopped" in caplog.text)
    assert "RuntimeError" in caplog.text
    assert FakeServer.instance is not None
    FakeServer.instance.should_exit = True
    await asyncio.wait_for(system, 5)
