"""The messages of MCP streamable HTTP streams in PostgreSQL (`mcp_stream_events`), so that a
client resuming with `Last-Event-ID` gets what it missed from any api replica.

A message's event id is its row's `position`. Rows are kept a day: `record` prunes older ones,
at most once a minute per process, so the table holds about a day of MCP traffic.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

_INSERT = sa.text(
    "INSERT INTO mcp_stream_events (session_id, stream_id, owner, message)"
    " VALUES (:session_id, :stream_id, :owner, CAST(:message AS jsonb)) RETURNING position"
)
_LOCATE = sa.text(
    "SELECT position, session_id, stream_id, owner, message FROM mcp_stream_events"
    " WHERE position = :position"
)
_AFTER = sa.text(
    "SELECT position, session_id, stream_id, owner, message FROM mcp_stream_events"
    " WHERE session_id = :session_id AND stream_id = :stream_id AND position > :position"
    " AND message IS NOT NULL ORDER BY position LIMIT :limit"
)
_PRUNE = sa.text(
    "DELETE FROM mcp_stream_events WHERE recorded_at < now() - make_interval(secs => :seconds)"
)

KEEP = timedelta(days=1)
PRUNE_EVERY_S = 60.0
PAGE = 1000


@dataclass(frozen=True)
class StreamMessage:
    position: int
    session_id: str
    stream_id: str
    owner: str
    message: dict[str, Any] | None  # None: a priming event, a place to resume from


class McpStreams:
    def __init__(
        self, engine: AsyncEngine, *, keep: timedelta = KEEP, prune_every_s: float = PRUNE_EVERY_S
    ) -> None:
        self._engine = engine
        self._keep, self._prune_every_s = keep, prune_every_s
        self._next_prune = 0.0  # monotonic time of the next prune

    async def record(
        self, session_id: str, stream_id: str, owner: str, message: dict[str, Any] | None
    ) -> int:
        """Store one message (None: a priming event) and return its position."""
        text = None if message is None else json.dumps(message)
        args = {"session_id": session_id, "stream_id": stream_id, "owner": owner, "message": text}
        async with self._engine.begin() as conn:
            position = (await conn.execute(_INSERT, args)).scalar_one()
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + self._prune_every_s
            await self.prune(self._keep)
        return int(position)

    async def locate(self, position: int) -> StreamMessage | None:
        """The row at `position`, if it is still kept."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(_LOCATE, {"position": position})).first()
        return None if row is None else StreamMessage(*row)

    async def after(
        self, session_id: str, stream_id: str, position: int, *, limit: int = PAGE
    ) -> list[StreamMessage]:
        """The stream's messages after `position`, in order (priming events left out)."""
        args = {"session_id": session_id, "stream_id": stream_id, "position": position,
                "limit": limit}  # fmt: skip
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_AFTER, args)).all()
        return [StreamMessage(*row) for row in rows]

    async def prune(self, older_than: timedelta) -> int:
        """Delete the messages recorded longer ago than `older_than`; how many."""
        async with self._engine.begin() as conn:
            result = await conn.execute(_PRUNE, {"seconds": older_than.total_seconds()})
        return int(result.rowcount)
