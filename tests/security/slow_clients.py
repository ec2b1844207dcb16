"""A hostile client, run as its own process by tests/security: opens COUNT connections to the
api that each send part of a request head and then stall (and, before them, GARBAGE more that
send bytes no HTTP parser accepts). It prints `opened <n> <failed>` once all are open, waits for
a line on stdin, then prints `open <n>` (how many the server has not closed) and exits.

    python -m tests.security.slow_clients PORT COUNT FIRST [GARBAGE]

Connections come from 127.1.x.y, one address per 250 connections from FIRST on: every address
of 127/8 is the loopback, and each has its own ephemeral ports, so 20,000 connections to one
port never run out of them."""

from __future__ import annotations

import asyncio
import resource
import sys

PARTIAL_HEAD = b"GET /healthz HTTP/1.1\r\nHost: api\r\nUser-Agent: slow\r\nX-Pad: "
GARBAGE = b"\x16\x03\x01 not http at all\r\n\r\n"
BATCH = 500  # connections opened at once: more overflow the api's accept queue


def source(index: int) -> tuple[str, int]:
    return f"127.1.{index // 250 % 250}.{index % 250 + 1}", 0


class Stalled(asyncio.Protocol):
    """Sends its payload, then nothing; notes when the server closes the connection."""

    def __init__(self, payload: bytes) -> None:
        self.payload, self.closed = payload, False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.payload)

    def eof_received(self) -> bool:
        self.closed = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


async def connect(port: int, index: int, payload: bytes) -> Stalled | None:
    loop = asyncio.get_running_loop()
    try:
        _, client = await loop.create_connection(
            lambda: Stalled(payload), "127.0.0.1", port, local_addr=source(index)
        )
    except OSError:
        return None
    return client


async def main(port: int, count: int, first: int, garbage: int) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    spoilt = range(first + count, first + count + garbage)  # first: they make no way for heads
    await asyncio.gather(*(connect(port, i, GARBAGE) for i in spoilt))
    clients: list[Stalled | None] = []
    for start in range(first, first + count, BATCH):
        batch = range(start, min(first + count, start + BATCH))
        clients += await asyncio.gather(*(connect(port, i, PARTIAL_HEAD) for i in batch))
    opened = [c for c in clients if c is not None]
    print(f"opened {len(opened)} {len(clients) - len(opened)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    print(f"open {sum(not c.closed for c in opened)}", flush=True)


if __name__ == "__main__":
    port, count, first, *rest = (int(a) for a in sys.argv[1:])
    asyncio.run(main(port, count, first, rest[0] if rest else 0))
