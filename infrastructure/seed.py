"""Load the seed data (infrastructure/seed_data/): indicators into the global indicator stream,
reports into scam_reports.

Idempotent: the seed's indicators are IndicatorsLoaded events whose ids derive from their
content, so loading the same data again appends nothing; a value the global set holds already
is left alone, and so is a report whose URL is there, so loading never undoes what admins
asserted, retracted or counted since.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.events import IndicatorsLoaded, KnownIndicator
from domain.indicators import GLOBAL_STREAM, system_metadata
from domain.log import NewEvent
from infrastructure.event_store import EventStore
from infrastructure.indicator_log import IndicatorLog
from infrastructure.indicators import IndicatorRepository, normalise_indicator

SEED_CHUNK = 500  # indicators per IndicatorsLoaded event
# Event ids of the seed's events: uuid5 under this namespace of the chunk's content.
_SEED_IDS = uuid.UUID("0b7c3f4e-9a1d-4c55-8e2f-5d6a7b8c9d01")

# One statement for every report: 1,000 rows as arrays cost one round trip, not 1,000.
_INSERT_REPORTS = sa.text(
    "INSERT INTO scam_reports (title, url, body, published, source)"
    " SELECT * FROM unnest(CAST(:title AS text[]), CAST(:url AS text[]), CAST(:body AS text[]),"
    "   CAST(:published AS date[]), CAST(:source AS text[]))"
    " ON CONFLICT (url) DO NOTHING"
)


@dataclass(frozen=True)
class SeedCounts:
    indicators_added: int
    reports_added: int
    totals: dict[str, int]  # IndicatorRepository.counts() after loading


def _read(name: str) -> str:
    return (resources.files("infrastructure") / "seed_data" / name).read_text(encoding="utf-8")


def _day(text: str) -> datetime:
    return datetime.combine(date.fromisoformat(text), time(), UTC)


def seed_indicators() -> dict[str, list[Any]]:
    """The seed indicators as column arrays, values normalised as every lookup expects."""
    columns: dict[str, list[Any]] = {
        k: [] for k in ("kind", "value", "category", "report_count", "first_seen", "last_seen")
    }
    for row in csv.DictReader(io.StringIO(_read("indicators.csv"))):
        columns["kind"].append(row["kind"])
        columns["value"].append(normalise_indicator(row["kind"], row["value"]))
        columns["category"].append(row["category"])
        columns["report_count"].append(int(row["report_count"]))
        columns["first_seen"].append(_day(row["first_seen"]))
        columns["last_seen"].append(_day(row["last_seen"]))
    columns["source"] = ["seed"] * len(columns["kind"])
    return columns


def _published(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def seed_reports() -> dict[str, list[Any]]:
    reports = [json.loads(line) for line in _read("reports.jsonl").splitlines() if line.strip()]
    return {
        "title": [r["title"] for r in reports],
        "url": [r["url"] for r in reports],
        "body": [r["body"] for r in reports],
        "published": [_published(r.get("published")) for r in reports],
        "source": ["seed"] * len(reports),
    }


def seed_events() -> list[NewEvent]:
    """The seed indicators as IndicatorsLoaded events, each with an id derived from its
    content: appending them again is a no-op."""
    columns = seed_indicators()
    known = [
        KnownIndicator(**{name: values[i] for name, values in columns.items()})
        for i in range(len(columns["kind"]))
    ]
    events = []
    for start in range(0, len(known), SEED_CHUNK):
        event = IndicatorsLoaded(indicators=tuple(known[start : start + SEED_CHUNK]))
        digest = hashlib.sha256(event.model_dump_json().encode()).hexdigest()
        events.append(NewEvent(event, system_metadata("seed"), uuid.uuid5(_SEED_IDS, digest)))
    return events


async def load_seed(engine: AsyncEngine) -> SeedCounts:
    """Record the seed indicators not recorded yet, and insert the reports not there yet."""
    log = IndicatorLog(EventStore(engine))
    async with engine.begin() as conn:
        loaded = await log.record_in(conn, GLOBAL_STREAM, seed_events(), one_by_one=True)
        reported = (await conn.execute(_INSERT_REPORTS, seed_reports())).rowcount
    totals = await IndicatorRepository(engine).counts()
    return SeedCounts(loaded.added, reported, totals)
