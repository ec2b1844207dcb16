"""Bounds on what a client can hold of the api's HTTP server before it has sent a request.

uvicorn's httptools protocol reads a request head (request line and headers) for as long as the
client takes and buffers it whatever its size: half-sent heads can hold every file descriptor of
the process, and a few huge headers hundreds of MB. `GuardedHttp` adds what it lacks:

- a head must be complete within `header_timeout_s` of its first byte (or of the connection, for
  the first request); otherwise the connection is closed;
- a head larger than `max_header_bytes` is answered 431 and the connection closed, after at most
  one read buffer more than the limit;
- at most `max_connections` connections (HTTP and WebSocket) are open. A new one beyond that
  first evicts the oldest connection still sending its head: a client that completes its head in
  milliseconds keeps getting served while slow heads fill the table. When no connection is
  still sending its head, the new one is answered 503 at once and closed.

The limit sits below the open-file limit (`raise_fd_limit`), so that PostgreSQL, Redis and log
files always get a descriptor."""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

# Descriptors kept out of the connection limit: the PostgreSQL pool (pool_size plus as much
# overflow) and Redis pools, the listening socket, log files and the files Python keeps open.
FD_RESERVE = 256


def _raw_response(status: str, body: bytes, *extra: bytes) -> bytes:
    head = [
        f"HTTP/1.1 {status}".encode(),
        b"content-type: text/plain; charset=utf-8",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
        *extra,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


BUSY = _raw_response("503 Service Unavailable", b"too many connections\n", b"retry-after: 1")
HEAD_TOO_LARGE = _raw_response(
    "431 Request Header Fields Too Large", b"request line and headers too large\n"
)


def raise_fd_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20  # no limit: the kernel's default ceiling (fs.nr_open)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # a sandbox that refuses: keep the soft limit
            pass
    return soft


def connection_limit(configured: int, fd_limit: int) -> int:
    """`configured` when set, else the open-file limit less `FD_RESERVE` (at least 64)."""
    return configured or max(64, fd_limit - FD_RESERVE)


class ConnectionGuard:
    """The limits, and the connections of one server still sending their request head, oldest
    first (a dict keeps insertion order; a new head goes to the end)."""

    def __init__(self, max_connections: int, header_timeout_s: float, max_header_bytes: int):
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.max_header_bytes = max_header_bytes
        self.reading_heads: dict[GuardedHttp, None] = {}

    def evict_oldest_head(self) -> bool:
        """Close the connection that has been sending its head the longest; False if none is."""
        if not self.reading_heads:
            return False
        oldest = next(iter(self.reading_heads))
        oldest.close_head(
            "closed the oldest unfinished request head: the connection limit is reached"
        )
        return True


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol under a `ConnectionGuard` (see the module's docstring)."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        guard = self.guard
        if len(self.connections) >= guard.max_connections and not guard.evict_oldest_head():
            self.transport, self._refused = transport, True
            transport.write(BUSY)
            transport.close()
            log.warning("refused a connection with 503: %d are open", len(self.connections))
            return
        super().connection_made(transport)
        self._start_head()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._head_deadline is not None:  # reading a head
            self._head_bytes += len(data)
        super().data_received(data)
        # Still in the head after this read (not completed by it) and over the limit.
        if (
            self._head_deadline is not None
            and self._head_bytes > self.guard.max_header_bytes
            and not self.transport.is_closing()
        ):
            self._end_head()
            self.transport.write(HEAD_TOO_LARGE)
            self.transport.close()
            log.warning("refused a request head over %d bytes (431)", self.guard.max_header_bytes)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_head()
        if not self._refused:
            super().connection_lost(exc)

    # httptools' callbacks: a message begins with its first byte; its head ends before its body.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_deadline is None:  # the first request's clock started with the connection
            self._start_head()

    def on_headers_complete(self) -> None:
        self._end_head()
        super().on_headers_complete()

    def _start_head(self) -> None:
        self._head_bytes = 0
        self._head_deadline = self.loop.call_later(
            self.guard.header_timeout_s,
            self.close_head,
            "closed a connection that sent no complete request head in time",
        )
        self.guard.reading_heads[self] = None

    def _end_head(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        self.guard.reading_heads.pop(self, None)

    def close_head(self, why: str) -> None:
        """Close a connection whose head is unfinished: nothing was asked, nothing is lost."""
        self._end_head()
        self.transport.abort()  # at once, and without lingering over unsent bytes
        self.connections.discard(self)  # uncounted now: connection_lost comes a turn later
        log.warning(why)  # one constant sentence per cause: repeats are counted (api/log_flood.py)


def guarded_http(guard: ConnectionGuard) -> type[GuardedHttp]:
    """The protocol class for one server: uvicorn builds protocols from a class, not a factory."""
    return type("GuardedHttp", (GuardedHttp,), {"guard": guard})
