"""Threat-feed import: `scamtrail indicators import` of a 50,000-line domain list, first into an
empty indicator set (every entry added) and again (every entry refreshed). Prints JSON.

    python benchmarks/feeds.py [--lines 50000] [--runs 3]

The import parses and normalises every line, records the feed as IndicatorsImported events in
the global indicator stream and projects them into `scam_indicators`, in one transaction.
Baseline, measured in the same run: the same (kind, value, category) rows written with COPY into
a plain table, the least any import of them can cost. Uses SCAMTRAIL_TEST_DATABASE_URL or
SCAMTRAIL_DATABASE_URL with the database `scamtrail_bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from benchmarks.common import as_text, bench_database
from infrastructure.database import create_engine, migrate
from infrastructure.feeds import import_feed, read_feed
from infrastructure.settings import load_settings


def write_feed(path: Path, lines: int) -> None:
    """A hosts-file style domain list: distinct registered domains under a few suffixes."""
    suffixes = ("top", "xyz", "com", "info", "shop")
    with path.open("w") as file:
        file.write("# benchmark feed\n")
        for n in range(lines):
            file.write(f"0.0.0.0 parcel-fee-{n}.{suffixes[n % len(suffixes)]}\n")


async def one_run(database_url: str, pool: asyncpg.Pool, feed: Path) -> dict[str, float]:
    await pool.execute("TRUNCATE events, scam_indicators, bench_feed_plain CASCADE")
    engine = create_engine(load_settings(database_url=database_url), pool_size=2)
    try:
        began = time.perf_counter()
        parsed = read_feed(feed, "domains", category="phishing")
        parse_s = time.perf_counter() - began
        began = time.perf_counter()
        await import_feed(engine, parsed, source="bench-feed")
        first_s = time.perf_counter() - began
        began = time.perf_counter()
        await import_feed(engine, parsed, source="bench-feed")
        again_s = time.perf_counter() - began
    finally:
        await engine.dispose()
    rows = [(kind, value, category) for (kind, value), category in parsed.entries.items()]
    began = time.perf_counter()
    await pool.copy_records_to_table("bench_feed_plain", records=rows)
    copy_s = time.perf_counter() - began
    return {
        "parse_s": parse_s,
        "first_import_s": parse_s + first_s,
        "reimport_s": parse_s + again_s,
        "plain_copy_s": copy_s,
    }


async def main(lines: int, runs: int) -> None:
    url = bench_database()
    database_url = as_text(url)
    await migrate(database_url)
    pool = await asyncpg.create_pool(as_text(url, driver="postgresql"), min_size=1, max_size=2)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS bench_feed_plain (kind text, value text, category text)"
    )
    with tempfile.TemporaryDirectory() as folder:
        feed = Path(folder) / "feed.txt"
        write_feed(feed, lines)
        measured = [await one_run(database_url, pool, feed) for _ in range(runs)]
    await pool.execute("DROP TABLE bench_feed_plain; TRUNCATE events, scam_indicators CASCADE")
    await pool.close()
    figures = {
        key: {
            "min": round(min(r[key] for r in measured), 3),
            "median": round(statistics.median(r[key] for r in measured), 3),
            "max": round(max(r[key] for r in measured), 3),
        }
        for key in measured[0]
    }
    report = {
        "benchmark": "feeds",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "lines": lines,
        "runs": runs,
        "seconds": figures,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.lines, args.runs))
