"""Waiting in tests: on a condition, never on the clock.

`eventually` polls a predicate until it holds and fails, past its bound, saying what it waited
for and the last value it saw. The bound only limits how long a broken run hangs: a passing run
returns as soon as the condition holds, however loaded the machine. `eventually_sync` is the same
for sync code (fixtures that start processes, sync tests).

`stays_quiet` is the one deliberate wait on the clock: a check that something does *not* happen.
No condition can end such a wait early, so each caller says why its duration is enough.

`wait_for_log` waits for a line in a child process's log, failing at once if the process dies.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, overload

T = TypeVar("T")


class NotInTime(AssertionError):
    """The awaited condition did not hold within its bound."""


def _failure(what: str, within: float, last: object) -> NotInTime:
    seen = f"{type(last).__name__}: {last}" if isinstance(last, BaseException) else repr(last)
    if len(seen) > 2000:
        seen = seen[:2000] + " ..."
    return NotInTime(f"not within {within:g} s: {what}; last seen: {seen}")


@overload
async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    within: float,
    until: Callable[[T], object] = bool,
    what: str = ...,
    interval: float = ...,
    ignoring: tuple[type[BaseException], ...] = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T],
    *,
    within: float,
    until: Callable[[T], object] = bool,
    what: str = ...,
    interval: float = ...,
    ignoring: tuple[type[BaseException], ...] = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    *,
    within: float,
    until: Callable[[Any], object] = bool,
    what: str = "the condition",
    interval: float = 0.02,
    ignoring: tuple[type[BaseException], ...] = (),
) -> Any:
    """Call `check` (sync or async) until `until` holds for what it returns (by default: until
    it returns a truthy value), and return that value.

    An exception of a type in `ignoring` counts as "not yet" (a server still starting, say);
    any other propagates. Raise NotInTime after `within` seconds, with the last value seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: object = None
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if until(value):
                return value
            last = value
        except ignoring as error:
            last = error
        if loop.time() >= deadline:
            raise _failure(what, within, last)
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T],
    *,
    within: float,
    until: Callable[[T], object] = bool,
    what: str = "the condition",
    interval: float = 0.02,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """`eventually` for sync code: blocks the thread between calls."""
    deadline = time.monotonic() + within
    last: object = None
    while True:
        try:
            value = check()
            if until(value):
                return value
            last = value
        except ignoring as error:
            last = error
        if time.monotonic() >= deadline:
            raise _failure(what, within, last)
        time.sleep(interval)


async def stays_quiet(
    happened: Callable[[], object], *, for_s: float, what: str, interval: float = 0.02
) -> None:
    """Fail if `happened` returns a truthy value at any call during the next `for_s` seconds.

    The negative counterpart of `eventually`: it always takes `for_s`. The caller's comment says
    why that duration is enough for the unwanted thing to have shown if it were going to."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + for_s
    while True:
        value = happened()
        if inspect.isawaitable(value):
            value = await value
        assert not value, f"{what} (within {for_s:g} s): {value!r}"
        if loop.time() >= deadline:
            return
        await asyncio.sleep(interval)


class LoggingProcess(Protocol):
    def output(self) -> str: ...

    def alive(self) -> bool: ...


async def wait_for_log(
    process: LoggingProcess, text: str, *, within: float, after: int = 0
) -> float:
    """Seconds until `text` appears in the process's log past offset `after`. Fails at once if
    the process exits first, with the end of its log."""
    loop = asyncio.get_running_loop()
    began = loop.time()

    def logged() -> bool:
        output = process.output()
        if text in output[after:]:
            return True
        assert process.alive(), f"exited before logging {text!r}:\n{output[-2000:]}"
        return False

    try:
        await eventually(logged, within=within, what=f"{text!r} in the log", interval=0.05)
    except NotInTime as error:
        raise NotInTime(f"{error}\n{process.output()[-2000:]}") from None
    return loop.time() - began


async def readable(store: Any, *appended: Any, within: float = 10.0) -> None:
    """Wait until `read_all` can return every event of `appended` (append results).

    The whole-log read returns an event only once no transaction that began before its commit is
    still running anywhere on the PostgreSQL server (infrastructure/event_store.py, `read_all`):
    on a busy server, the benchmarks' or another test run's transactions hold it back for a
    moment. A test that reads the whole log right after appending waits for that moment here."""
    cursors = [r.cursor for result in appended for r in result.recorded]
    if not cursors:
        return
    newest = max(cursors)
    await eventually(
        store.log_end,
        until=lambda end: end >= newest,
        within=within,
        what=f"the log's end to reach {newest}",
    )
