"""Turns for closing finished sockets (api.limits.ClosePacer, `ws_close_rate`)."""

from __future__ import annotations

import asyncio

import pytest

from api.limits import ClosePacer


def test_a_lone_close_waits_for_nothing_and_a_burst_takes_turns() -> None:
    pacer = ClosePacer(rate=100)
    assert pacer.delay() == 0.0
    waits = [pacer.delay() for _ in range(10)]
    assert waits == sorted(waits) and 0.09 <= waits[-1] <= 0.11


def test_a_rate_of_zero_closes_at_once() -> None:
    pacer = ClosePacer(rate=0)
    assert [pacer.delay() for _ in range(100)] == [0.0] * 100


def test_no_turn_is_further_away_than_the_longest_wait() -> None:
    pacer = ClosePacer(rate=10)  # a turn every 0.1 s: 100 closes would take 10 s
    waits = [pacer.delay() for _ in range(100)]
    assert max(waits) <= ClosePacer.MAX_WAIT_S
    assert waits[-1] == pytest.approx(ClosePacer.MAX_WAIT_S, abs=0.01)


async def test_release_ends_every_wait_at_once() -> None:
    """The api shutting down: finished sockets waiting for their turn close now."""
    pacer = ClosePacer(rate=1)  # the second close would wait a second, the tenth nine
    loop = asyncio.get_running_loop()
    began = loop.time()
    waits = [asyncio.create_task(pacer.wait_turn()) for _ in range(10)]
    await asyncio.sleep(0.05)
    pacer.release()
    await asyncio.wait_for(asyncio.gather(*waits), 1)
    assert loop.time() - began < 0.5
