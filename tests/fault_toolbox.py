"""A worker toolbox for fault tests: the real tools, each invocation counted in a Redis hash by
call id (the counts survive a killed worker) and then slowed down, so that a kill, a signal or a
run's timeout lands mid-analysis, and a test can tell which calls were really made.

A worker process gets it through its settings: `slow_tools(latency_s=..., ledger=...)` gives
the overrides (SCAMTRAIL_TOOLBOX names `build`, which reads SCAMTRAIL_FAULT_TOOL_LATENCY_S and
SCAMTRAIL_FAULT_TOOL_CALL_LEDGER). A worker in the test's own process takes
`fault_toolbox(...)` as `build_worker(settings, toolbox=...)`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.planning import call_id
from domain.tools import Tool
from infrastructure.settings import Settings
from workers.toolbox import Toolbox, ToolboxFactory, build_toolbox

FAULT_TOOLBOX = "tests.fault_toolbox:build"
LATENCY_ENV = "SCAMTRAIL_FAULT_TOOL_LATENCY_S"
LEDGER_ENV = "SCAMTRAIL_FAULT_TOOL_CALL_LEDGER"


def slow_tools(latency_s: float = 0.0, ledger: str | None = None) -> dict[str, Any]:
    """Settings overrides for a worker process (WorkerProcess, settings_env, child_env) whose
    tools each take `latency_s` longer and, with `ledger`, count their calls in that hash."""
    overrides: dict[str, Any] = {"toolbox": FAULT_TOOLBOX, "fault_tool_latency_s": latency_s}
    if ledger is not None:
        overrides["fault_tool_call_ledger"] = ledger
    return overrides


def build(settings: Settings, engine: AsyncEngine) -> Toolbox:
    """The factory SCAMTRAIL_TOOLBOX names: configured by the environment."""
    latency_s = float(os.environ.get(LATENCY_ENV) or 0)
    return fault_toolbox(latency_s=latency_s, ledger=os.environ.get(LEDGER_ENV))(settings, engine)


def fault_toolbox(*, latency_s: float = 0.0, ledger: str | None = None) -> ToolboxFactory:
    def factory(settings: Settings, engine: AsyncEngine) -> Toolbox:
        box = build_toolbox(settings, engine)
        redis = Redis.from_url(settings.redis_url) if ledger else None
        box.tools = {
            name: FaultyTool(tool, latency_s, redis, ledger) for name, tool in box.tools.items()
        }
        if redis is not None:
            box.closers.append(redis.aclose)
        return box

    return factory


class FaultyTool:
    """A real tool, counted in the ledger as it is called, then slowed down. Both happen
    inside the worker's tool timeout, as part of the call."""

    def __init__(
        self, tool: Tool, latency_s: float, redis: Redis | None, ledger: str | None
    ) -> None:
        self.name = tool.name
        self._tool, self._latency_s = tool, latency_s
        self._redis, self._ledger = redis, ledger

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        if self._redis is not None and self._ledger is not None:
            await self._redis.hincrby(self._ledger, call_id(self.name, call_input), 1)  # type: ignore[misc]
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        return await self._tool(call_input)
