"""A real local HTTP server that answers what a test scripts: stands in for Exa, an LLM
endpoint, or any JSON API the project calls."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ScriptedServer:
    """What the server answers next, and every request it got."""

    base_url: str = ""
    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, status: int, body: bytes | dict[str, Any], delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.body = json.dumps(body).encode() if isinstance(body, dict) else body


@contextmanager
def scripted_server() -> Iterator[ScriptedServer]:
    fake = ScriptedServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            fake.requests.append(
                {
                    "path": self.path,
                    "api_key": self.headers.get("x-api-key"),
                    "authorization": self.headers.get("authorization"),
                    "json": json.loads(self.rfile.read(length)),
                }
            )
            time.sleep(fake.delay)
            try:
                self.send_response(fake.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(fake.body)))
                self.end_headers()
                self.wfile.write(fake.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: what a timeout test wants

        def log_message(self, *args: Any) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True  # a handler still sleeping must not hold up the shutdown
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
