"""The floor for memory per socket in benchmarks/streaming.py: a bare WebSocket endpoint on the
same stack (FastAPI, uvicorn with the websockets implementation, no per-message deflate, the same
backlog) that accepts, says `connected` and holds the socket until the client leaves. Whatever
scamtrail's api holds per socket beyond this (its subscription, queue, follower, pump task,
expiry timer) is its own cost.

    python benchmarks/bare_websocket.py PORT     (the server; streaming.py starts it)
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect


def build_app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws/agent-progress/{task_id}")
    async def hold(websocket: WebSocket, task_id: str) -> None:
        await websocket.accept()
        await websocket.send_text(json.dumps({"task_id": task_id, "step": "connected"}))
        try:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        except WebSocketDisconnect:
            pass

    return app


def main(port: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    config = uvicorn.Config(
        build_app(), port=port, log_level="warning", ws_per_message_deflate=False, backlog=4096
    )
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main(int(sys.argv[1]))
