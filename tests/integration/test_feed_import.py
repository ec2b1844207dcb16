"""Threat-feed imports on PostgreSQL: idempotent re-imports, expiry, sources, the command."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from api.cli import app
from api.errors import EXIT_BAD_INPUT
from infrastructure.feeds import ParsedFeed, import_feed, parse_feed
from infrastructure.indicators import IndicatorRepository
from tests.indicator_writes import assert_indicator

pytestmark = pytest.mark.integration


def feed(text: str, feed_format: str = "domains", category: str = "phishing") -> ParsedFeed:
    return parse_feed(text.encode().splitlines(keepends=True), feed_format, category=category)


async def rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    query = sa.text(
        "SELECT kind, value, category, report_count, source, imported_at, expires_at"
        " FROM scam_indicators ORDER BY kind, value"
    )
    async with engine.connect() as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]


async def test_importing_the_same_feed_twice_changes_only_its_import_time(
    clean_database: AsyncEngine,
) -> None:
    parsed = feed("scam.top\nparcel-fee.top\n# comment\n")
    first = await import_feed(clean_database, parsed, source="blocklist", expire_after=None)
    before = await rows(clean_database)
    again = await import_feed(clean_database, parsed, source="blocklist")
    after = await rows(clean_database)

    assert (first.added, first.refreshed, first.kept) == (2, 0, 0)
    assert (again.added, again.refreshed, again.kept) == (0, 2, 0)
    assert len(after) == 2
    assert [r["report_count"] for r in after] == [1, 1]  # a re-import is not another report
    assert {r["source"] for r in after} == {"blocklist"}
    assert all(r["expires_at"] is None for r in after)
    assert all(a["imported_at"] > b["imported_at"] for a, b in zip(after, before, strict=True))


async def test_an_expired_indicator_no_longer_matches_until_it_is_imported_again(
    clean_database: AsyncEngine,
) -> None:
    repo = IndicatorRepository(clean_database)
    parsed = feed("scam.top\n")
    await import_feed(clean_database, parsed, source="blocklist", expire_after=timedelta(days=30))
    assert [m["value"] for m in await repo.lookup("domain", "login.scam.top", tenant=None)] == [
        "scam.top"
    ]

    await import_feed(clean_database, parsed, source="blocklist", expire_after=timedelta(0))
    assert await repo.lookup("domain", "login.scam.top", tenant=None) == []
    assert await repo.lookup("url", "https://scam.top/x", tenant=None) == []

    counts = await import_feed(clean_database, parsed, source="blocklist", expire_after=None)
    assert counts.refreshed == 1
    assert [m["value"] for m in await repo.lookup("domain", "scam.top", tenant=None)] == [
        "scam.top"
    ]


async def test_an_import_leaves_other_sources_alone_until_their_rows_expire(
    clean_database: AsyncEngine,
) -> None:
    repo = IndicatorRepository(clean_database)
    await assert_indicator(
        repo._engine, "domain", "manual.top", "romance", report_count=7, source="analyst"
    )
    await import_feed(
        clean_database, feed("other.top\n"), source="feed-a", expire_after=timedelta(0)
    )
    await import_feed(clean_database, feed("live.top\n"), source="feed-a")

    counts = await import_feed(
        clean_database, feed("manual.top\nother.top\nlive.top\n"), source="feed-b"
    )

    assert (counts.added, counts.refreshed, counts.kept) == (0, 1, 2)
    by_value = {r["value"]: r for r in await rows(clean_database)}
    assert by_value["manual.top"]["source"] == "analyst"
    assert by_value["manual.top"]["category"] == "romance"
    assert by_value["manual.top"]["report_count"] == 7
    assert by_value["manual.top"]["imported_at"] is None
    assert by_value["live.top"]["source"] == "feed-a"
    assert by_value["other.top"]["source"] == "feed-b"  # expired: taken over
    assert by_value["other.top"]["expires_at"] is None


async def test_an_analyst_report_of_an_expired_feed_indicator_makes_it_match_again(
    clean_database: AsyncEngine,
) -> None:
    repo = IndicatorRepository(clean_database)
    await import_feed(clean_database, feed("scam.top\n"), source="feed", expire_after=timedelta(0))
    await assert_indicator(repo._engine, "domain", "scam.top", "parcel_delivery")

    assert [m["report_count"] for m in await repo.lookup("domain", "scam.top", tenant=None)] == [2]
    # and the feed's next import no longer takes it back, nor makes it expire
    counts = await import_feed(
        clean_database, feed("scam.top\n"), source="feed", expire_after=timedelta(0)
    )
    assert counts.kept == 1
    assert len(await repo.lookup("domain", "scam.top", tenant=None)) == 1


async def test_every_format_stores_its_kinds_and_categories(clean_database: AsyncEngine) -> None:
    csv_feed = feed(
        "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n"
        '"1","2024-05-01","http://1.2.3.4/mozi.m","online","","malware_download","elf","",""\n',
        "csv",
    )
    json_feed = feed(
        json.dumps(["Fraud@Scam.top", {"value": "+1 800 555 0199", "category": "tech_support"}]),
        "json",
    )
    urls_feed = feed("https://paypa1.example/login\n", "urls")
    for source, parsed in (("urlhaus", csv_feed), ("mixed", json_feed), ("urls", urls_feed)):
        await import_feed(clean_database, parsed, source=source)

    stored = [
        (r["kind"], r["value"], r["category"], r["source"]) for r in await rows(clean_database)
    ]
    assert stored == [
        ("email", "fraud@scam.top", "phishing", "mixed"),
        ("phone", "+18005550199", "tech_support", "mixed"),
        ("url", "http://1.2.3.4/mozi.m", "malware_download", "urlhaus"),
        ("url", "https://paypa1.example/login", "phishing", "urls"),
    ]
    repo = IndicatorRepository(clean_database)
    assert (
        await repo.lookup("domain", "paypa1.example", tenant=None) == []
    )  # a URL's host is not added


async def test_a_hundred_thousand_lines_import_in_seconds(clean_database: AsyncEngine) -> None:
    text = "".join(f"0.0.0.0 host-{i}.scam-{i % 977}.top\n" for i in range(100_000))
    started = time.perf_counter()
    parsed = feed(text)
    counts = await import_feed(clean_database, parsed, source="big", expire_after=timedelta(days=1))
    again = await import_feed(clean_database, parsed, source="big", expire_after=timedelta(days=1))
    seconds = time.perf_counter() - started

    assert (counts.added, again.refreshed) == (100_000, 100_000)
    assert seconds < 30, f"two imports of 100,000 lines took {seconds:.1f} s"


# The command itself: arguments, files, exit codes and its one-line summary.


@pytest.fixture
def command_env(migrated_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCAMTRAIL_DATABASE_URL", migrated_database)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["indicators", "import", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


@pytest.mark.usefixtures("command_env")
async def test_the_command_imports_reports_bad_lines_and_is_idempotent(
    clean_database: AsyncEngine, tmp_path: Path
) -> None:
    path = tmp_path / "hosts.txt"
    path.write_text("# blocklist\n0.0.0.0 scam.top\nnot a domain\nscam.top\nx.top\n")
    args = (str(path), "--source", "hosts", "--format", "domains", "--expire-after", "30d")

    code, output = await _in_thread(run, *args)
    assert code == 0
    assert "skipped line 3: expected one domain" in output
    assert (
        "2 added, 0 refreshed, 0 held by other sources, 1 duplicates, 1 bad lines skipped" in output
    )
    assert "1 duplicates" in output
    assert "expiring" in output

    code, output = await _in_thread(run, *args)
    assert code == 0
    assert (
        "0 added, 2 refreshed, 0 held by other sources, 1 duplicates, 1 bad lines skipped" in output
    )
    assert len(await rows(clean_database)) == 2


@pytest.mark.usefixtures("command_env")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("absent.txt", "--format", "domains"), "cannot read"),
        (("feed.txt", "--format", "txt"), "--format must be one of"),
        (("feed.txt", "--format", "domains", "--expire-after", "soon"), "--expire-after"),
        (("feed.txt", "--format", "json"), "not JSON"),
        (("feed.txt", "--format", "domains", "--category", "Bad Cat"), "--category"),
    ],
)
async def test_the_command_refuses_bad_arguments_in_one_line(
    clean_database: AsyncEngine, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "feed.txt").write_text("scam.top\n")
    path, *rest = args
    code, output = await _in_thread(run, str(tmp_path / path), "--source", "s", *rest)
    assert code == EXIT_BAD_INPUT
    assert message in output
    assert len(output.strip().splitlines()) == 1
    assert await rows(clean_database) == []


async def _in_thread(function: Any, *args: Any) -> Any:
    """The command runs its own event loop (asyncio.run), which cannot nest in the test's."""
    import asyncio

    return await asyncio.to_thread(function, *args)
