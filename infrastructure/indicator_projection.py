"""The indicator projection: scam_indicators rows from the indicator streams' events.

`apply` gives one recorded event its effect, inside the caller's transaction: the live path
(infrastructure/indicator_log.py) runs it right after the append, and `rebuild_indicators` runs
it for every indicator event again. Each statement takes its values from the event and its
envelope only (never the clock), so a rebuild gives back the rows the live path wrote (but for
their `id` and `created_at`). Every row names its stream and the event that last asserted it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain import events as ev
from domain.indicators import STREAM_PREFIX
from domain.log import RecordedEvent
from infrastructure.event_store import EventStore

MAX_REPORT_COUNT = 2**31 - 1  # report_count is an integer column
COLUMNS = (
    "id, kind, value, category, report_count, first_seen, last_seen, source, stream_id,"
    " asserted_seq, asserted_tenant, asserted_by, asserted_at"
)
_ATTRIBUTION = "asserted_seq, asserted_tenant, asserted_by, asserted_at"
_ATTRIBUTED = (
    " asserted_seq = EXCLUDED.asserted_seq, asserted_tenant = EXCLUDED.asserted_tenant,"
    " asserted_by = EXCLUDED.asserted_by, asserted_at = EXCLUDED.asserted_at"
)

# One more report of an indicator in its stream: counts add up, the seen window widens, and the
# newest category wins (an analyst's correction). The count stops at the column's maximum rather
# than fail. A report by hand is not a feed's: the row no longer expires, and a feed's re-import
# no longer refreshes it (infrastructure/feeds.py).
_ASSERT = sa.text(
    "INSERT INTO scam_indicators AS i"
    f"  (kind, value, category, report_count, first_seen, last_seen, source, stream_id,"
    f"   {_ATTRIBUTION})"
    " VALUES (:kind, :value, :category, :count, :seen, :seen, :source, :stream,"
    "         :seq, :tenant, :actor, :at)"
    " ON CONFLICT (kind, value, stream_id) DO UPDATE SET"
    "  report_count = least(CAST(i.report_count AS bigint) + EXCLUDED.report_count, :max_count),"
    "  first_seen = least(i.first_seen, EXCLUDED.first_seen),"
    "  last_seen = greatest(i.last_seen, EXCLUDED.last_seen),"
    "  category = EXCLUDED.category,"
    "  imported_at = NULL,"
    "  expires_at = NULL,"
    f" {_ATTRIBUTED}"
    f" RETURNING {COLUMNS}"
)
_RETRACT = sa.text(
    "DELETE FROM scam_indicators WHERE kind = :kind AND value = :value AND stream_id = :stream"
)
# A feed's batch. `xmax = 0` tells a row inserted from one updated. The WHERE of the update
# leaves another source's live rows, and rows added by hand, as they are; a row whose expiry
# has passed by the import time is taken over.
_IMPORT = sa.text(
    "INSERT INTO scam_indicators AS i"
    "  (kind, value, category, report_count, first_seen, last_seen, source,"
    f"   imported_at, expires_at, stream_id, {_ATTRIBUTION})"
    " SELECT f.kind, f.value, f.category, 1, CAST(:now AS timestamptz),"
    "   CAST(:now AS timestamptz), CAST(:source AS text), CAST(:now AS timestamptz),"
    "   CAST(:expires AS timestamptz), CAST(:stream AS text), CAST(:seq AS integer),"
    "   CAST(:tenant AS text), CAST(:actor AS text), CAST(:at AS timestamptz)"
    " FROM unnest(CAST(:kind AS text[]), CAST(:value AS text[]), CAST(:category AS text[]))"
    "   AS f(kind, value, category)"
    " ON CONFLICT (kind, value, stream_id) DO UPDATE SET"
    "  category = EXCLUDED.category,"
    "  last_seen = greatest(i.last_seen, EXCLUDED.last_seen),"
    "  source = EXCLUDED.source,"
    "  imported_at = EXCLUDED.imported_at,"
    "  expires_at = EXCLUDED.expires_at,"
    f" {_ATTRIBUTED}"
    " WHERE (i.source = EXCLUDED.source AND i.imported_at IS NOT NULL)"
    "   OR i.expires_at <= EXCLUDED.imported_at"
    " RETURNING (xmax = 0) AS added"
)
# Whole indicators (seed data, rows carried over by migration 0009): a value the stream holds
# already is left alone.
_LOAD = sa.text(
    "INSERT INTO scam_indicators"
    "  (kind, value, category, report_count, first_seen, last_seen, source, imported_at,"
    f"   expires_at, stream_id, {_ATTRIBUTION})"
    " SELECT l.*, CAST(:stream AS text), CAST(:seq AS integer), CAST(:tenant AS text),"
    "   CAST(:actor AS text), CAST(:at AS timestamptz)"
    " FROM unnest(CAST(:kind AS text[]), CAST(:value AS text[]), CAST(:category AS text[]),"
    "   CAST(:report_count AS integer[]), CAST(:first_seen AS timestamptz[]),"
    "   CAST(:last_seen AS timestamptz[]), CAST(:source AS text[]),"
    "   CAST(:imported_at AS timestamptz[]), CAST(:expires_at AS timestamptz[])) AS l"
    " ON CONFLICT (kind, value, stream_id) DO NOTHING"
)


@dataclass(frozen=True)
class Applied:
    """What one event did to the table: rows added, refreshed and removed, and for an
    assertion the row as it now stands."""

    added: int = 0
    refreshed: int = 0
    removed: int = 0
    row: sa.Row[Any] | None = None


def _envelope(recorded: RecordedEvent) -> dict[str, Any]:
    return {
        "stream": recorded.stream_id,
        "seq": recorded.version,
        "tenant": recorded.metadata.tenant,
        "actor": recorded.metadata.actor,
        "at": recorded.recorded_at,
    }


async def apply(conn: AsyncConnection, recorded: RecordedEvent) -> Applied:
    """Give one indicator event its effect on scam_indicators; other events have none."""
    event = recorded.event
    if isinstance(event, ev.IndicatorAsserted):
        params = {
            **_envelope(recorded),
            "kind": event.kind,
            "value": event.value,
            "category": event.category,
            "count": min(event.report_count, MAX_REPORT_COUNT),
            "seen": event.seen_at or recorded.recorded_at,
            "source": event.source,
            "max_count": MAX_REPORT_COUNT,
        }
        return Applied(row=(await conn.execute(_ASSERT, params)).one())
    if isinstance(event, ev.IndicatorRetracted):
        params = {"kind": event.kind, "value": event.value, "stream": recorded.stream_id}
        return Applied(removed=(await conn.execute(_RETRACT, params)).rowcount)
    if isinstance(event, ev.IndicatorsImported):
        if not event.entries:
            return Applied()
        kinds, values, categories = zip(*event.entries, strict=True)
        params = {
            **_envelope(recorded),
            "kind": list(kinds),
            "value": list(values),
            "category": list(categories),
            "now": event.imported_at,
            "expires": event.expires_at,
            "source": event.source,
        }
        inserted = (await conn.execute(_IMPORT, params)).scalars().all()
        return Applied(added=sum(inserted), refreshed=len(inserted) - sum(inserted))
    if isinstance(event, ev.IndicatorsLoaded):
        if not event.indicators:
            return Applied()
        columns: dict[str, list[Any]] = {
            name: [getattr(known, name) for known in event.indicators]
            for name in ev.KnownIndicator.model_fields
        }
        result = await conn.execute(_LOAD, {**_envelope(recorded), **columns})
        return Applied(added=result.rowcount)
    return Applied()


@dataclass
class IndicatorRebuild:
    streams: int = 0
    events: int = 0
    rows: int = 0


# Streams are listed by their first event; the prefix keeps task streams out.
_STREAMS = sa.text(
    "SELECT stream_id FROM events WHERE version = 1 AND stream_id LIKE :prefix ORDER BY stream_id"
)
PAGE = 100  # events read at a time: an import's events hold thousands of entries each


async def rebuild_indicators(engine: AsyncEngine) -> IndicatorRebuild:
    """Empty scam_indicators and replay every indicator stream into it, in one transaction.
    Writers wait meanwhile (the table is locked against writes; lookups go on, reading the rows
    as they were until the rebuild commits)."""
    store, report = EventStore(engine), IndicatorRebuild()
    async with engine.begin() as conn:
        await conn.execute(sa.text("LOCK TABLE scam_indicators IN EXCLUSIVE MODE"))
        await conn.execute(sa.text("DELETE FROM scam_indicators"))
        streams = (await conn.scalars(_STREAMS, {"prefix": STREAM_PREFIX + "%"})).all()
        for stream_id in streams:
            report.streams += 1
            after = 0
            while page := await store.read_stream(stream_id, after, limit=PAGE):
                for recorded in page:
                    await apply(conn, recorded)
                report.events += len(page)
                after = page[-1].version
        count = await conn.scalar(sa.text("SELECT count(*) FROM scam_indicators"))
        report.rows = int(count or 0)
    return report
