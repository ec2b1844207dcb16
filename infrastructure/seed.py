"""Load the seed data (infrastructure/seed_data/) into scam_indicators and scam_reports.

Idempotent: rows already there (same kind and value, same report URL) are left alone, so loading
twice changes nothing and never undoes what analysts added or counted since.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.indicators import IndicatorRepository, normalise_indicator

# One statement per table: 1,000 rows as arrays cost one round trip, not 1,000.
_INSERT_INDICATORS = sa.text(
    "INSERT INTO scam_indicators"
    "  (kind, value, category, report_count, first_seen, last_seen, source)"
    " SELECT * FROM unnest(CAST(:kind AS text[]), CAST(:value AS text[]),"
    "   CAST(:category AS text[]), CAST(:report_count AS integer[]),"
    "   CAST(:first_seen AS timestamptz[]), CAST(:last_seen AS timestamptz[]),"
    "   CAST(:source AS text[]))"
    " ON CONFLICT (kind, value) DO NOTHING"
)
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


async def load_seed(engine: AsyncEngine) -> SeedCounts:
    """Insert the seed rows that are not there yet; one transaction, so all or nothing."""
    indicators, reports = seed_indicators(), seed_reports()
    async with engine.begin() as conn:
        added = (await conn.execute(_INSERT_INDICATORS, indicators)).rowcount
        reported = (await conn.execute(_INSERT_REPORTS, reports)).rowcount
    totals = await IndicatorRepository(engine).counts()
    return SeedCounts(added, reported, totals)
