"""Turns for closing finished sockets (api.limits.ClosePacer, `ws_close_rate`)."""

from __future__ import annotations

from api.limits import ClosePacer


def test_a_lone_close_waits_for_nothing_and_a_burst_takes_turns() -> None:
    pacer = ClosePacer(rate=100)
    assert pacer.delay() == 0.0
    waits = [pacer.delay() for _ in range(10)]
    assert waits == sorted(waits) and 0.09 <= waits[-1] <= 0.11


def test_a_rate_of_zero_closes_at_once() -> None:
    pacer = ClosePacer(rate=0)
    assert [pacer.delay() for _ in range(100)] == [0.0] * 100
