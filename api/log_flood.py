"""Keeps a flood of one warning or error from filling the disk. Thousands of clients sending
garbage, resetting connections or timing out each make the server log the same line, often with
a traceback: 145k of them are 78 MB. `RepeatLimiter` writes the first record of a kind, then
counts its repeats and writes one per interval with the count."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

# The loggers whose handlers write what clients can provoke: uvicorn's (which do not propagate)
# and the root's (everything else, asyncio's included).
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
MAX_KINDS = 1024  # kinds remembered; the least recently written is forgotten first
_DECISION = "_scamtrail_repeat_decision"


def kind_of(record: logging.LogRecord) -> tuple[str, int, str, str]:
    """Records of one kind: the same logger, level, message template and exception type."""
    error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
    return record.name, record.levelno, str(record.msg), error


class RepeatLimiter(logging.Filter):
    """Records below WARNING pass (one access line per request is the normal log, not a flood).
    A warning or error passes when its kind has not been written within `interval_s`; it then
    says how many of its kind were held back since the last one written."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._clock = clock
        self._written: dict[tuple[str, int, str, str], tuple[float, int]] = {}  # when, held

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        decided: bool | None = getattr(record, _DECISION, None)
        if decided is not None:  # the same record on its way to another handler
            return decided
        kind, now = kind_of(record), self._clock()
        last = self._written.pop(kind, None)
        if last is not None and now - last[0] < self.interval_s:
            self._written[kind] = (last[0], last[1] + 1)
            setattr(record, _DECISION, False)
            return False
        if last is not None and last[1]:
            record.msg = (
                f"{record.msg} [{last[1]} more like this in the last {now - last[0]:.0f} s]"
            )
        self._written[kind] = (now, 0)
        if len(self._written) > MAX_KINDS:
            del self._written[next(iter(self._written))]
        setattr(record, _DECISION, True)
        return True


def install_repeat_limiter(interval_s: float) -> None:
    """On every handler of `LOGGERS` (a logger's own filter would miss its children's records).
    Call it once logging is configured: uvicorn replaces its handlers when its Config is made."""
    limiter = RepeatLimiter(interval_s)
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RepeatLimiter) for f in handler.filters):
                handler.addFilter(limiter)
