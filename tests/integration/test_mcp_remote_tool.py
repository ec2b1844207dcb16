"""The remote-tool client (infrastructure/tools/mcp_remote.py) against a real MCP server process
over streamable HTTP (tests/mcp_tool_server.py): it returns the contract's output from
structured or text content, tells a failure worth retrying from an unusable answer, sends the
configured headers, and carries its calls on one session that outlives a timed-out call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from domain.tools import ToolError, UnusableAnswer
from infrastructure.settings import McpToolConfig
from infrastructure.tools.mcp_remote import McpRemoteTool
from tests.mcp_servers import ToolServer
from tests.mcp_servers import tool_servers as tool_servers

pytestmark = pytest.mark.integration

Servers = Callable[..., ToolServer]
RISKY = {"kind": "domain", "value": "usps-redelivery.top"}


def remote(server: ToolServer, timeout_s: float = 5.0, **fields: Any) -> McpRemoteTool:
    return McpRemoteTool(McpToolConfig.model_validate(server.entry(**fields)), timeout_s)


@pytest.mark.parametrize("answer", ["structured", "text"])
async def test_the_answer_is_the_contract_output(tool_servers: Servers, answer: str) -> None:
    tool = remote(tool_servers(answer=answer))
    try:
        output = await tool(RISKY)
        quiet = await tool({"kind": "domain", "value": "example.org"})
    finally:
        await tool.aclose()
    assert output["risk"] == 0.8 and output["signals"][0]["code"] == "listed"
    assert output["source"] == "test-server", "fields beyond the contract are kept"
    assert quiet == {"risk": 0.0, "signals": [], "source": "test-server"}


async def test_an_answer_off_the_contract_is_unusable(tool_servers: Servers) -> None:
    tool = remote(tool_servers(answer="bad"))
    try:
        with pytest.raises(UnusableAnswer, match="risk"):
            await tool(RISKY)
    finally:
        await tool.aclose()


async def test_an_error_result_or_an_unreachable_server_is_worth_retrying(
    tool_servers: Servers,
) -> None:
    server = tool_servers(fail_first=1)
    tool = remote(server)
    try:
        with pytest.raises(ToolError, match="upstream unavailable") as failed:
            await tool(RISKY)
        assert not isinstance(failed.value, UnusableAnswer)
        assert (await tool(RISKY))["risk"] == 0.8, "the next attempt is answered"
        server.process.stop()
        with pytest.raises(ToolError, match="did not answer") as down:
            await tool(RISKY)
        assert not isinstance(down.value, UnusableAnswer)
    finally:
        await tool.aclose()
    assert server.calls() == {"domain:usps-redelivery.top": 2}


async def test_the_configured_headers_are_sent(tool_servers: Servers) -> None:
    server = tool_servers(key="k-123")
    keyed = remote(server, headers={"X-Api-Key": "k-123"})
    bare = remote(server)
    try:
        assert (await keyed(RISKY))["risk"] == 0.8
        with pytest.raises(ToolError, match="did not answer"):
            await bare(RISKY)
    finally:
        await keyed.aclose()
        await bare.aclose()


async def test_calls_share_one_session_and_a_timed_out_call_retires_it_alone(
    tool_servers: Servers,
) -> None:
    server = tool_servers(latency_s=0.2)
    tool = remote(server)
    values = [f"site{i}.example" for i in range(12)]
    try:
        hanging = asyncio.create_task(tool({"kind": "domain", "value": "hangs.example"}))
        outputs = await asyncio.gather(*(tool({"kind": "domain", "value": v}) for v in values[:6]))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):  # the worker's tool timeout does this
                await hanging
        outputs += await asyncio.gather(*(tool({"kind": "domain", "value": v}) for v in values[6:]))
    finally:
        await tool.aclose()
    assert [o["risk"] for o in outputs] == [0.0] * 12, "the calls beside it were answered"
    assert tool.sessions_opened == 2, "one for the first calls, a new one after the timeout"
    assert sum(server.calls().values()) == 13
