"""The SDK's `EventStore` on PostgreSQL (infrastructure/mcp_streams.py): every message of a
streamable HTTP stream is stored before it is sent, its row's position is its SSE event id, and
a client that reconnects with `Last-Event-ID` gets the messages after it, in order.

The SDK gives each store call a stream id only (a request's id, or its GET stream's key), and
request ids repeat across sessions: each session therefore gets its own view of the store
(`for_session`), whose rows carry the session id and its owner and whose replays read only
that session's rows.
"""

from __future__ import annotations

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp_types import JSONRPCMessage, jsonrpc_message_adapter

from infrastructure.mcp_streams import PAGE, McpStreams

_MAX_POSITION = 2**63 - 1  # bigserial


def event_position(event_id: str) -> int | None:
    """The position an SSE event id names; None for anything that is not one."""
    if not event_id.isascii() or not event_id.isdigit() or len(event_id) > 19:
        return None
    position = int(event_id)
    return position if 0 < position <= _MAX_POSITION else None


class PostgresEventStore(EventStore):
    """One session's messages (`for_session`); the unbound store only hands out those views."""

    def __init__(self, streams: McpStreams, session_id: str = "", owner: str = "") -> None:
        self._streams, self._session_id, self._owner = streams, session_id, owner

    @property
    def streams(self) -> McpStreams:
        return self._streams

    def for_session(self, session_id: str, owner: str) -> PostgresEventStore:
        return PostgresEventStore(self._streams, session_id, owner)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        self._check_bound()
        data = None
        if message is not None:
            data = message.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return str(await self._streams.record(self._session_id, stream_id, self._owner, data))

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        """Every message of the stream `last_event_id` is in, after it; the stream's id, or
        None when the id names nothing of this session's (pruned, another session's, junk)."""
        self._check_bound()
        position = event_position(last_event_id)
        found = await self._streams.locate(position) if position is not None else None
        if found is None or found.session_id != self._session_id:
            return None
        after = found.position
        while True:
            page = await self._streams.after(self._session_id, found.stream_id, after)
            for row in page:
                message = jsonrpc_message_adapter.validate_python(row.message, by_name=False)
                await send_callback(EventMessage(message, str(row.position)))
                after = row.position
            if len(page) < PAGE:
                return found.stream_id

    def _check_bound(self) -> None:
        if not self._session_id:
            raise RuntimeError("an MCP event store is used through for_session(...)")
