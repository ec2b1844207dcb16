"""The tools a worker runs, by name, built once at worker startup and closed at shutdown: the
built-in ones, and a remote MCP tool for each entry of SCAMTRAIL_MCP_TOOLS.

A worker builds its toolbox with a factory: `build_toolbox` (the built-in tools), or the
function that `SCAMTRAIL_TOOLBOX` names as `package.module:function`, with the same signature.
That is the place to put tools of one's own in front of the analysis: other providers, a proxy
that records calls, the slowed-down and counted tools of the fault tests (tests/fault_toolbox.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy.ext.asyncio import AsyncEngine

from domain.tools import Tool
from infrastructure.indicators import IndicatorRepository
from infrastructure.llm_reasoner import LlmReasoner
from infrastructure.settings import Settings
from infrastructure.tools.domain_reputation import DomainReputation
from infrastructure.tools.mcp_remote import McpRemoteTool
from infrastructure.tools.phone_validator import PhoneValidator
from infrastructure.tools.scam_database import ScamDatabase
from infrastructure.tools.web_search import web_search_tool


@dataclass
class Toolbox:
    tools: dict[str, Tool]
    reasoner: LlmReasoner | None = None
    # Called at shutdown, last first: what the tools opened (HTTP clients, connections).
    closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    async def aclose(self) -> None:
        while self.closers:
            await self.closers.pop()()


ToolboxFactory = Callable[[Settings, AsyncEngine], Toolbox]


def build_toolbox(settings: Settings, engine: AsyncEngine) -> Toolbox:
    web = web_search_tool(settings, engine)
    tools: list[Tool] = [
        ScamDatabase(IndicatorRepository(engine)),
        web,
        DomainReputation(),
        PhoneValidator(),
    ]
    box = Toolbox({tool.name: tool for tool in tools})
    box.closers.append(web.provider.aclose)  # an HTTP client when Exa is configured
    for config in settings.mcp_tools:  # SCAMTRAIL_MCP_TOOLS: names never clash (settings)
        remote = McpRemoteTool(config, timeout_s=settings.tool_timeout_s)
        box.tools[remote.name] = remote
        box.closers.append(remote.aclose)
    if settings.llm_base_url:
        box.reasoner = LlmReasoner(
            settings.llm_base_url,
            settings.llm_model,
            api_key=settings.llm_api_key,
            timeout_s=settings.llm_timeout_s,
        )
        box.closers.append(box.reasoner.aclose)
    return box


def toolbox_factory(settings: Settings) -> ToolboxFactory:
    """The factory `settings.toolbox` names (`package.module:function`), else `build_toolbox`.
    A name that does not resolve is refused here, at worker start."""
    if not settings.toolbox:
        return build_toolbox
    module_name, _, function = settings.toolbox.partition(":")
    if not module_name or not function:
        raise ValueError(
            f"SCAMTRAIL_TOOLBOX must be package.module:function, not {settings.toolbox!r}"
        )
    factory = getattr(importlib.import_module(module_name), function, None)
    if not callable(factory):
        raise ValueError(f"SCAMTRAIL_TOOLBOX: {settings.toolbox!r} is not a function")
    return cast(ToolboxFactory, factory)
