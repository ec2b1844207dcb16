"""Progress sockets reach their endpoints past the middleware stack and the router.

Each suspended frame on that path is kept alive for the whole life of a socket (api/app.py,
ScamtrailApi): these tests look at the Python stack while the endpoint sends, so they fail if
a progress socket goes back to the long path. The endpoint runs for real up to its first
refusal (no token: 4401), which needs no database.
"""

from __future__ import annotations

import sys
from types import FrameType

import pytest
from starlette.types import Message

from api.app import create_app
from infrastructure.settings import load_settings
from tests.auth import TEST_SECRET

pytestmark = pytest.mark.unit

LONG_PATH = ("starlette/middleware", "starlette/routing", "fastapi/routing", "api/limits")


async def call(path: str, query: bytes = b"") -> tuple[list[Message], set[str]]:
    """Send a websocket connect for `path` through the app; what it sent, and every source file
    on the stack while it sent."""
    app = create_app(load_settings(jwt_secret=TEST_SECRET))
    sent: list[Message] = []
    files: set[str] = set()

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            files.add(frame.f_code.co_filename)
            frame = frame.f_back

    scope = {"type": "websocket", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query, "headers": [], "scheme": "ws", "server": ("test", 80),
             "client": ("test", 1), "asgi": {"version": "3.0"}, "subprotocols": []}  # fmt: skip
    await app(scope, receive, send)
    return sent, files


def walked(files: set[str], parts: tuple[str, ...]) -> list[str]:
    return sorted(f for f in files if any(part in f for part in parts))


@pytest.mark.parametrize("path", ["/ws/agent-progress/some-task", "/ws/tasks"])
async def test_a_progress_socket_skips_the_middleware_and_the_router(path: str) -> None:
    sent, files = await call(path, b"ids=a")
    assert sent[0] == {"type": "websocket.accept", "subprotocol": None, "headers": []}
    assert sent[-1]["type"] == "websocket.close" and sent[-1]["code"] == 4401
    assert any(f.endswith("api/routes/stream.py") for f in files)
    assert walked(files, LONG_PATH) == []


async def test_other_sockets_and_bad_urls_take_the_normal_path() -> None:
    # A NUL in the URL: RefuseNulInUrl answers it, as for any other route.
    sent, files = await call("/ws/agent-progress/bad\x00id")
    assert sent[-1] == {"type": "websocket.close", "code": 4400, "reason": "NUL in the URL"}
    assert walked(files, ("api/limits",))
    # No such socket: the router turns it away.
    sent, files = await call("/ws/nothing-here")
    assert sent[-1]["type"] == "websocket.close"
    assert walked(files, ("starlette/routing",))
