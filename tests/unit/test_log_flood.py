"""A flood of one warning or error is one line, then one line with a count per interval
(api/log_flood.py); other kinds, and records below WARNING, are untouched."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from api.log_flood import RepeatLimiter

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO, Clock]]:
    out, clock = io.StringIO(), Clock()
    handler = logging.StreamHandler(out)
    handler.addFilter(RepeatLimiter(10.0, clock))
    logger = logging.getLogger("test.flood")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield logger, out, clock
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_a_flood_of_tracebacks_is_one_line_then_a_count_per_interval(
    logged: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, clock = logged
    for i in range(15_000):
        clock.now = i * 30 / 15_000  # 500 a second for 30 s
        try:
            raise ConnectionResetError("Connection reset by peer")
        except ConnectionResetError:
            logger.exception("Exception in callback for %s", f"client {i}")
    text = out.getvalue()
    assert text.count("Traceback") == 3, text  # at 0 s, 10 s and 20 s
    assert "more like this in the last 10 s]" in text
    assert len(text) < 2_000


def test_other_kinds_and_info_lines_pass(
    logged: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, _ = logged
    logger.setLevel(logging.INFO)
    for _ in range(3):
        logger.warning("Invalid HTTP request received.")
        logger.warning("closed a connection that sent no complete request head in time")
        logger.info('127.0.0.1:1 - "GET /healthz HTTP/1.1" 200')
        try:
            raise OSError("x")
        except OSError:
            logger.exception("Invalid HTTP request received.")  # another kind: with an error
    lines = out.getvalue().splitlines()
    assert lines.count("Invalid HTTP request received.") == 2  # once alone, once with OSError
    assert lines.count("closed a connection that sent no complete request head in time") == 1
    assert lines.count('127.0.0.1:1 - "GET /healthz HTTP/1.1" 200') == 3


def test_a_record_on_its_way_to_two_handlers_is_judged_once() -> None:
    limiter, first, second = RepeatLimiter(10.0), io.StringIO(), io.StringIO()
    logger = logging.getLogger("test.flood.two")
    logger.propagate = False
    handlers = [logging.StreamHandler(first), logging.StreamHandler(second)]
    for handler in handlers:
        handler.addFilter(limiter)
        logger.addHandler(handler)
    try:
        logger.error("boom")
        logger.error("boom")
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
    assert first.getvalue() == second.getvalue() == "boom\n"
