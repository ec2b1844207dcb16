"""Start the test MCP tool server (tests/mcp_tool_server.py) as a real process, and read what it
was asked."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infrastructure.embedded_redis import free_port
from tests.e2e.progress_stack import Process
from tests.waiting import eventually_sync


@dataclass
class ToolServer:
    process: Process
    url: str
    calls_file: Path

    def calls(self) -> Counter[str]:
        """Calls received so far, by "kind:value"."""
        if not self.calls_file.exists():
            return Counter()
        lines = self.calls_file.read_text().splitlines()
        return Counter(f"{c['kind']}:{c['value']}" for c in map(json.loads, lines))

    def entry(self, name: str = "checker", **fields: Any) -> dict[str, Any]:
        """A SCAMTRAIL_MCP_TOOLS entry for this server's `assess` tool."""
        return {"name": name, "url": self.url, "tool": "assess", "entities": ["domain"], **fields}


def start_tool_server(log_dir: Path, **env: object) -> ToolServer:
    """The server on a free port, with `env` as its switches (MCP_TOOL_SERVER_*, without the
    prefix, lower case: fail_first=1); returns once it accepts connections."""
    port = free_port()
    calls_file = log_dir / f"mcp-calls-{port}.jsonl"
    switches = {f"MCP_TOOL_SERVER_{k.upper()}": str(v) for k, v in env.items()}
    process = Process(
        [sys.executable, "-m", "tests.mcp_tool_server", "--port", str(port)],
        {**os.environ, "MCP_TOOL_SERVER_CALLS": str(calls_file), **switches},
        log_dir / f"mcp-tool-server-{port}.log",
    )

    def listening() -> bool:
        assert process.alive(), f"the tool server exited:\n{process.output()[-2000:]}"
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True

    try:
        eventually_sync(listening, within=20, what="the tool server listens", ignoring=(OSError,))
    except AssertionError:
        process.stop()
        raise
    return ToolServer(process, f"http://127.0.0.1:{port}/mcp", calls_file)


@pytest.fixture
def tool_servers(tmp_path: Path) -> Iterator[Callable[..., ToolServer]]:
    """Starts test tool servers (`tool_servers(fail_first=1)`); stops them after the test."""
    started: list[ToolServer] = []

    def start(**env: object) -> ToolServer:
        server = start_tool_server(tmp_path, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.process.stop()
