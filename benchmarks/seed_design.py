"""The design scamtrail replaces, as a baseline for benchmarks/streaming.py: the writer PUBLISHes
each event's progress message right after its append, and the WebSocket server opens one Redis
Pub/Sub subscription per socket and forwards what arrives. No catch-up from the log, no
ordering guarantee across a reconnect, no bound on what a slow socket holds: only the hot path,
which is what the benchmark compares.

    python benchmarks/seed_design.py PORT     (the server; streaming.py starts it)

The server speaks the same wire format as scamtrail's `/ws/agent-progress/{task_id}`: a
`connected` message once subscribed, then each message as published.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from redis.asyncio import Redis

from benchmarks.common import bench_redis_url

TERMINAL = ("TaskCompleted", "TaskFailed", "TaskCancelled")


def seed_channel(task_id: str) -> str:
    return f"seed:{task_id}"


def build_app(redis_url: str) -> FastAPI:
    app = FastAPI()
    redis = Redis.from_url(redis_url, max_connections=None)

    @app.websocket("/ws/agent-progress/{task_id}")
    async def progress(websocket: WebSocket, task_id: str) -> None:
        await websocket.accept()
        pubsub = redis.pubsub()  # one subscription, hence one Redis connection, per socket
        await pubsub.subscribe(seed_channel(task_id))
        await websocket.send_text(json.dumps({"task_id": task_id, "step": "connected"}))
        try:
            async for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                await websocket.send_text(message["data"].decode())
                if json.loads(message["data"])["event_type"] in TERMINAL:
                    await websocket.close()
                    return
        except WebSocketDisconnect:
            pass
        finally:
            await pubsub.aclose()

    return app


def main(port: int) -> None:
    # Two descriptors per socket (the client's and its Redis subscription's).
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    app = build_app(bench_redis_url())
    config = uvicorn.Config(app, port=port, log_level="warning", ws_per_message_deflate=False)
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main(int(sys.argv[1]))
