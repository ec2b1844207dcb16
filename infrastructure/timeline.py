"""The timeline projection: every task event's timeline entry, rendered once and stored as
JSON text (table `timeline_entries`, migration 0011), so that GET /tasks/{id}/timeline joins
stored entries instead of decoding and rendering each event on every read.

Who writes it: the relay, which renders each entry beside the event's progress message and
stores those published since its last checkpoint in the statement that moves the checkpoint
(infrastructure/relay.py), so every task event gets its entry, at least once, like its PUBLISH,
a checkpoint interval later at most; and a projection rebuild, which renders every entry again.

What a read serves: a page comes from the projection only when it is whole, its versions
running from `after + 1` without a hole up to the limit or to the stream's version, and only
entries rendered by this code's `TIMELINE_FORMAT`. Anything else (the relay behind or not
running, entries of an older format) is rendered from the log, as it was before the projection
existed. The projection makes a read cheaper, never different.

A row references its event (ON DELETE CASCADE): a pruned task's entries go with its events,
and no entry outlives the event it renders, so a stream id used again never shows another
task's entries.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pydantic_core
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.events import UnreadableEvent
from domain.indicators import is_task_stream
from domain.log import RecordedEvent
from domain.timeline import TIMELINE_FORMAT, timeline_entry
from infrastructure import raw_sql


def insert_sql(first: int = 1) -> str:
    """The statement that stores entries, its parameters numbered from `first`: the entries'
    stream ids, versions, event ids and texts, then the format (`PendingEntries.args`).
    An entry is stored only beside the very event it renders, matched by its id too: one whose
    event has gone (a prune committed after the batch was read), or whose stream and version now
    hold another event (a stream id used again), is left out. An event deleted while the
    statement runs still fails it; the relay then starts again from its checkpoint, past which
    it no longer reads that event. An entry is rewritten only when it differs."""
    streams, versions, event_ids, texts, fmt = (f"${first + i}" for i in range(5))
    return f"""
    INSERT INTO timeline_entries (stream_id, version, format, entry)
    SELECT u.stream_id, u.version, {fmt}, u.entry
    FROM unnest({streams}::text[], {versions}::integer[], {event_ids}::uuid[], {texts}::text[])
         AS u(stream_id, version, event_id, entry)
    JOIN events e
      ON e.stream_id = u.stream_id AND e.version = u.version AND e.event_id = u.event_id
    ON CONFLICT (stream_id, version) DO UPDATE
    SET format = EXCLUDED.format, entry = EXCLUDED.entry
    WHERE (timeline_entries.format, timeline_entries.entry)
          IS DISTINCT FROM (EXCLUDED.format, EXCLUDED.entry)
"""


_SAVE = insert_sql()
# One row: how many entries of the page, its first and last version, the entries joined in
# version order (ready to go between the brackets of a JSON array), and the stream's version in
# the log, all in one snapshot: whether the page is whole is decided on the log itself.
_PAGE = """
    SELECT count(*) AS entries, min(version) AS first, max(version) AS last,
           string_agg(entry, ',' ORDER BY version) AS joined,
           (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1) AS through
    FROM (SELECT version, entry FROM timeline_entries
          WHERE stream_id = $1 AND version > $2 AND format = $4
          ORDER BY version LIMIT $3) AS page
"""


@dataclass(frozen=True)
class TimelineSlice:
    """A page of a task's timeline: its entries as JSON objects joined by commas, how many,
    and the version of the last one."""

    joined: str
    count: int
    last: int | None

    @classmethod
    def of(cls, stream: Sequence[RecordedEvent]) -> TimelineSlice:
        """Rendered now, from the events."""
        return cls(
            ",".join(render(recorded) for recorded in stream),
            len(stream),
            stream[-1].version if stream else None,
        )

    def next_after(self, limit: int) -> int | None:
        """Where the next page starts; None when this one is the last."""
        return self.last if self.count == limit else None


def render(recorded: RecordedEvent, message: dict[str, Any] | None = None) -> str:
    """The event's timeline entry as JSON text."""
    return pydantic_core.to_json(timeline_entry(recorded, message)).decode()


def whole(after: int, limit: int, through: int, count: int, first: int | None,
          last: int | None) -> bool:  # fmt: skip
    """Whether stored entries `first`..`last` (`count` of them) are the whole page after
    `after` of a stream at version `through`: no hole, from after + 1, and either `limit` of
    them or up to the stream's version."""
    if count == 0:
        return through <= after
    assert first is not None and last is not None
    return first == after + 1 and last - first + 1 == count and (count == limit or last >= through)


class PendingEntries:
    """Rendered entries waiting to be stored (the relay's, until its next checkpoint), as the
    columns `insert_sql` takes."""

    def __init__(self) -> None:
        self.streams: list[str] = []
        self.versions: list[int] = []
        self.event_ids: list[uuid.UUID] = []
        self.texts: list[str] = []

    def add(self, recorded: RecordedEvent, text: str) -> None:
        """Hold the event's entry, unless it has none to store: an indicator stream's event
        (no timeline), or an event this code cannot read (the relay reads tolerantly). A page
        holding one is then rendered from the log, as any read of it is, and newer code that
        can read it is not served this code's placeholder."""
        if is_task_stream(recorded.stream_id) and not isinstance(recorded.event, UnreadableEvent):
            self.streams.append(recorded.stream_id)
            self.versions.append(recorded.version)
            self.event_ids.append(recorded.event_id)
            self.texts.append(text)

    def __len__(self) -> int:
        return len(self.texts)

    def args(self) -> tuple[list[str], list[int], list[uuid.UUID], list[str], int]:
        """`insert_sql`'s parameters, in its order."""
        return self.streams, self.versions, self.event_ids, self.texts, TIMELINE_FORMAT


class TimelineEntries:
    """The projection's reads over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(self, task_id: str, after: int, limit: int) -> TimelineSlice | None:
        """The stored page of `task_id`'s timeline after version `after`, if the projection holds
        all of it; None otherwise (render it from the log)."""
        (row,) = await raw_sql.fetch(self._engine, _PAGE, task_id, after, limit, TIMELINE_FORMAT)
        if not whole(after, limit, row["through"], row["entries"], row["first"], row["last"]):
            return None
        return TimelineSlice(row["joined"] or "", row["entries"], row["last"])


async def save_rendered(conn: asyncpg.Connection, events: Iterable[RecordedEvent]) -> int:
    """Render the events' entries now and store them on `conn`, inside its transaction (a
    rebuild's batch); return how many rows were written (new or changed)."""
    pending = PendingEntries()
    for recorded in events:
        pending.add(recorded, render(recorded))
    if not pending:
        return 0
    status = await conn.execute(_SAVE, *pending.args())
    return int(status.rsplit(" ", 1)[-1])  # "INSERT 0 <rows>"
