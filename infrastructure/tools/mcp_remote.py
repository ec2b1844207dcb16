"""A remote tool: one tool of an MCP server, reached over streamable HTTP with the official `mcp`
SDK's client, as one of the agent's tools (SCAMTRAIL_MCP_TOOLS; the contract is in domain.tools).

One MCP session per configured tool carries its calls, side by side (JSON-RPC multiplexes them):
on the same machine a call on an open session takes about 15 ms, where a session opened for
each call took about 50 ms (its handshake, its event stream and its closing DELETE), and 40
calls at once 0.6 s instead of 2.7 s. The session is held open by a task of its own, which
entered it and exits it (the SDK's task groups must be left by the task that entered them); a
call that fails for any reason but its answer retires that session: the calls still on it
finish, then it is closed, and the next call opens a new one. So does a call the worker's
timeout cancelled, in case the session itself is stuck. A server that restarted and forgot the
session, or a connection gone bad, costs one failed attempt, which is retried.

The worker's rules apply as to any tool: its timeout (tool_timeout_s), its retries with backoff
and every attempt an event. What fails here is told apart as the contract says: an answer that
is not the contract's is `UnusableAnswer` (not retried); anything else (isError, a JSON-RPC
error, the server unreachable, a reply the SDK refuses) is `ToolError`, retried.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult, TextContent

from domain.storable import clean_text
from domain.tools import REMOTE_KINDS, ToolError, UnusableAnswer, remote_output
from infrastructure.settings import McpToolConfig

MAX_ERROR_CHARS = 300  # of a server's error text quoted in a failure


class McpRemoteTool:
    """The agent tool `config.name`: the tool `config.tool` of the MCP server at `config.url`."""

    def __init__(self, config: McpToolConfig, timeout_s: float) -> None:
        self.name = config.name
        self._config = config
        headers = {name: value.get_secret_value() for name, value in config.headers.items()}
        # Bounded like a call: a request of a session being closed must not hang a worker.
        self._http = create_mcp_http_client(headers=headers, timeout=httpx2.Timeout(timeout_s))
        self._session: Session | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.sessions_opened = 0

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        kind, value = call_input.get("kind"), call_input.get("value")
        if kind not in REMOTE_KINDS or not isinstance(value, str):
            raise ToolError(
                f"{self.name} takes {{'kind': one of {', '.join(REMOTE_KINDS)}, 'value': str}},"
                f" got {call_input!r}"
            )
        result = await self._call({"kind": kind, "value": value})
        if result.is_error:
            raise ToolError(f"{self.name}: the tool reported an error: {_text_of(result)}")
        return remote_output(_answer_of(result))

    async def _call(self, arguments: dict[str, Any]) -> CallToolResult:
        session = self._current()
        session.users += 1
        try:
            client = await session.client()
            return await client.call_tool(self._config.tool, arguments)
        except Exception as error:  # the SDK's, httpx's, anyio's: the server did not answer
            self._retire(session)
            raise ToolError(
                f"{self.name}: {self._config.url} did not answer: {_described(error)}"
            ) from error
        except asyncio.CancelledError:  # the worker's timeout: the next call gets a new session
            self._retire(session)
            raise
        finally:
            session.users -= 1
            if session.retired and not session.users:
                self._close_soon(session)

    def _current(self) -> Session:
        """The open session, or a new one (no await in between: concurrent first calls share
        one)."""
        if self._session is None or self._session.ended:
            transport = streamable_http_client(self._config.url, http_client=self._http)
            self._session = Session(Client(transport, cache=None))
            self.sessions_opened += 1
        return self._session

    def _retire(self, session: Session) -> None:
        session.retired = True
        if self._session is session:
            self._session = None

    def _close_soon(self, session: Session) -> None:
        task = asyncio.create_task(session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close the session and the connections (the toolbox's closer, at worker shutdown)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        await asyncio.gather(*self._closing, return_exceptions=True)
        await self._http.aclose()


class Session:
    """One MCP session, entered and exited by a task of its own; `users` are the calls on it."""

    def __init__(self, client: Client) -> None:
        self.users = 0
        self.retired = False
        self._ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._hold(client))

    @property
    def ended(self) -> bool:
        return self._task.done()

    async def client(self) -> Client:
        """The connected client, once the handshake is done (its failure, if it failed)."""
        return await asyncio.shield(self._ready)

    async def _hold(self, client: Client) -> None:
        try:
            async with client:
                self._ready.set_result(client)
                await self._stop.wait()
        except Exception as error:  # the handshake failed, or the session broke
            if not self._ready.done():
                self._ready.set_exception(error)
        finally:
            if not self._ready.done():  # cancelled before the handshake ended
                self._ready.set_exception(ToolError("the MCP session was closed"))
            self._ready.exception()  # retrieved: no warning when no call was waiting for it

    async def close(self) -> None:
        self._stop.set()
        await asyncio.gather(self._task, return_exceptions=True)


def _answer_of(result: CallToolResult) -> Any:
    """The structured content; else the JSON its first text content holds; else None."""
    if result.structured_content is not None:
        return result.structured_content
    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    if not texts:
        raise UnusableAnswer("the answer has neither structured content nor text")
    try:
        return json.loads(texts[0])
    except ValueError:
        raise UnusableAnswer(f"the answer's text is not JSON: {texts[0][:80]!r}") from None


def _text_of(result: CallToolResult) -> str:
    text = " ".join(b.text for b in result.content if isinstance(b, TextContent)) or "no text"
    return clean_text(text[:MAX_ERROR_CHARS])


def _described(error: BaseException) -> str:
    """An error's type and text; an exception group (anyio's task groups) by its first leaf."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return clean_text(f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS])
