"""Bounds on what one caller can make the api do: request bodies, submissions and indicator
writes per tenant per minute, open progress sockets per user. (Inbound WebSocket frames are
bounded by uvicorn's `ws_max_size` and otherwise ignored.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class RateLimited(Exception):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TooManySockets(Exception):
    pass


async def check_submission_rate(redis: Redis, tenant: str, per_minute: int) -> None:
    """One more submission for `tenant` in this minute, or `RateLimited`.

    A fixed window per tenant in Redis, shared by every api replica. When Redis is unreachable
    the submission is let through (logged): submissions keep working during a Redis outage, as
    the rest of the api does; the limit is a guard against floods, not an accounting record."""
    await _count_in_minute(redis, "submit", tenant, per_minute, "submissions")


async def check_indicator_write_rate(redis: Redis, tenant: str, per_minute: int) -> None:
    """One more indicator assertion or retraction for `tenant` in this minute, or
    `RateLimited`; counted and let through during a Redis outage as submissions are."""
    await _count_in_minute(redis, "indicators", tenant, per_minute, "indicator writes")


class TenantRates:
    """The per-tenant rates the use cases check, counted in this Redis with these limits."""

    def __init__(self, redis: Redis, submissions_per_minute: int, writes_per_minute: int) -> None:
        self._redis = redis
        self._submissions, self._writes = submissions_per_minute, writes_per_minute

    async def submission(self, tenant: str) -> None:
        await check_submission_rate(self._redis, tenant, self._submissions)

    async def indicator_write(self, tenant: str) -> None:
        await check_indicator_write_rate(self._redis, tenant, self._writes)


async def _count_in_minute(
    redis: Redis, action: str, tenant: str, per_minute: int, what: str
) -> None:
    """A fixed one-minute window per tenant and action, counted in Redis."""
    window = int(time.time() // 60)
    key = f"scamtrail:rate:{action}:{tenant}:{window}"
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
    except (RedisError, OSError) as error:
        log.warning("%s rate for tenant %s not checked: Redis unreachable (%r)", what, tenant,
                    error)  # fmt: skip
        return
    if int(count) > per_minute:
        retry_after = max(1, (window + 1) * 60 - int(time.time()))
        raise RateLimited(f"tenant {tenant} is over {per_minute} {what} a minute", retry_after)


class ClosePacer:
    """Turns for closing sockets whose tasks have ended, at most `rate` a second in this
    process (`ws_close_rate`). Without it, 10,000 sockets on tasks that end within a second
    closed in that second, and the live messages of that second waited behind the closes
    (benchmarks/streaming.py, the worst second's p99). A close waits only behind others; no
    turn is more than MAX_WAIT_S away (a burst beyond rate x MAX_WAIT_S closes the rest
    together then), and `release()` ends every wait at once (the api shutting down)."""

    MAX_WAIT_S = 5.0  # a waiting socket still holds its file descriptor and the user's slot

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = 0.0  # monotonic time of the next free turn
        self._released: asyncio.Event | None = None  # made in the loop, on first use

    def delay(self) -> float:
        """How long the next close waits for its turn; takes the turn."""
        if not self._interval:
            return 0.0
        now = time.monotonic()
        turn = min(max(now, self._next), now + self.MAX_WAIT_S)
        self._next = turn + self._interval
        return turn - now

    async def wait_turn(self) -> None:
        """Wait for the next turn (`delay`), or until `release()`."""
        wait = self.delay()
        if not wait:
            return
        if self._released is None:
            self._released = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._released.wait(), wait)

    def release(self) -> None:
        if self._released is None:
            self._released = asyncio.Event()
        self._released.set()


class SocketCounter:
    """Open progress sockets (WebSocket and SSE) per user in this process. Counted per process:
    a user's bound across the whole service is this times the api replicas, which is enough to
    stop one client from exhausting a replica, and needs no shared state that Redis outages
    would break."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[tuple[str, str]] = Counter()

    @property
    def total(self) -> int:
        """Every open progress socket of this process, all users together."""
        return sum(self._open.values())

    def check(self, tenant: str, actor: str) -> None:
        if self._open[(tenant, actor)] >= self.limit:
            raise TooManySockets(f"at most {self.limit} open progress sockets per user")

    @contextmanager
    def hold(self, tenant: str, actor: str) -> Iterator[None]:
        self.check(tenant, actor)
        key = (tenant, actor)
        self._open[key] += 1
        try:
            yield
        finally:
            self._open[key] -= 1
            if not self._open[key]:
                del self._open[key]


class _BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parsing lets it through as the 413 it is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the limit of {limit} bytes")


class BodySizeLimit:
    """ASGI middleware: 413 for a request body above `limit` bytes, whether it says so in
    Content-Length or only turns out bigger while streaming (chunked)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen, started = 0, False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge(self.limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = f'{{"detail":"request body over the limit of {self.limit} bytes"}}'.encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class RefuseNulInUrl:
    """ASGI middleware: a NUL character in the path or query string is refused (422, or close
    4400 on a socket) before any route sees it: PostgreSQL cannot store or compare text with
    NUL, so letting one through turns a bad request into a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not has_nul(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await receive()  # the connect event
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 4400, "reason": "NUL in the URL"})
            return
        detail = [{"type": "value_error", "loc": ["query"], "msg": _NUL_MESSAGE, "input": None}]
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 422, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_NUL_MESSAGE = "the URL must not contain the NUL character"


def has_nul(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    raw_path: bytes = scope.get("raw_path") or b""
    return (
        "\x00" in scope.get("path", "")
        or b"%00" in query.lower()
        or b"\x00" in query
        or b"%00" in raw_path.lower()
    )
