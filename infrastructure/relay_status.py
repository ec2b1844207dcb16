"""How far the relay has got, read from its checkpoint row: what any api replica reports at
/metrics, whether the relay runs in that process or not.

The checkpoint's cursor is parsed by `domain.log.LogCursor.parse`, the one reader of its text
form; the lag queries take the parsed parts as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.relay_partitions import checkpoint_names, published_through

_CHECKPOINTS = sa.text(
    "SELECT name, published_total, log_cursor FROM relay_checkpoints WHERE name = ANY(:names)"
)
_PAST_CHECKPOINT = """
    FROM events e WHERE (e.transaction_id, e.global_position)
        > (CAST(:tx AS text)::xid8, CAST(:position AS bigint))
"""
_LAG = sa.text(
    f"""
    SELECT (SELECT count(*) FROM (SELECT 1 {_PAST_CHECKPOINT} LIMIT :limit) p) AS lag_events,
        -- the age of the first unpublished event in log order: one index entry, where min()
        -- over every unpublished row cost 30 ms per scrape at a 100,000-event backlog
        (SELECT extract(epoch FROM now() - e.recorded_at) {_PAST_CHECKPOINT}
            ORDER BY e.transaction_id, e.global_position LIMIT 1) AS lag_seconds
    """
)


@dataclass(frozen=True)
class RelayStatus:
    published: int  # events the relay published and checkpointed, all runs together
    lag_events: int  # committed events past the checkpoint, counted up to a limit
    lag_seconds: float  # age of the oldest of those; 0 when there are none


class RelayStatusReader:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def read(
        self, relay_name: str, *, count_limit: int, partitions: int = 1
    ) -> RelayStatus | None:
        """The named relay's status over its partitions (published: all of them; lag: past
        the least checkpoint); None before its first checkpoint. Lag counts stop at
        `count_limit`: past it, "at least that many" is all a scrape needs to say."""
        names = checkpoint_names(relay_name, partitions)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_CHECKPOINTS, {"names": names})).all()
            if not rows:
                return None
            cursor = published_through({r.name: r.log_cursor for r in rows}, relay_name, partitions)
            params = {"tx": str(cursor.transaction_id), "position": cursor.position,
                      "limit": count_limit}  # fmt: skip
            lag = (await conn.execute(_LAG, params)).one()
        return RelayStatus(
            published=sum(int(row.published_total) for row in rows),
            lag_events=int(lag.lag_events),
            lag_seconds=float(lag.lag_seconds or 0.0),
        )
