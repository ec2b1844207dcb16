"""Scam indicators and reports on PostgreSQL: lookups, upserts, the seed, full-text search."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.tools import ToolError
from infrastructure.indicators import IndicatorRepository
from infrastructure.seed import load_seed
from infrastructure.tools.scam_database import ScamDatabase
from infrastructure.tools.web_search import LocalReportSearch, WebSearch
from tests.indicator_writes import assert_indicator

pytestmark = pytest.mark.integration

MATCH_KEYS = {
    "kind", "value", "category", "report_count", "first_seen", "last_seen", "source", "scope",
    "asserted",
}  # fmt: skip
RESULT_KEYS = {"title", "url", "snippet", "score", "published"}


@pytest.fixture
def repo(clean_database: AsyncEngine) -> IndicatorRepository:
    return IndicatorRepository(clean_database)


def values(matches: list[dict[str, object]]) -> list[object]:
    return [m["value"] for m in matches]


async def test_a_domain_matches_its_subdomains_but_not_its_parent_or_a_lookalike(
    repo: IndicatorRepository,
) -> None:
    await assert_indicator(repo._engine, "domain", "usps-redelivery.top", "parcel_delivery")
    await assert_indicator(repo._engine, "domain", "evil.co.uk", "bank_impersonation")

    assert values(await repo.lookup("domain", "usps-redelivery.top", tenant=None)) == [
        "usps-redelivery.top"
    ]
    assert values(await repo.lookup("domain", "WWW.USPS-Redelivery.top.", tenant=None)) == [
        "usps-redelivery.top"
    ]
    assert values(await repo.lookup("domain", "a.track.usps-redelivery.top", tenant=None)) == [
        "usps-redelivery.top"
    ]
    assert values(await repo.lookup("domain", "login.evil.co.uk", tenant=None)) == ["evil.co.uk"]
    assert await repo.lookup("domain", "redelivery.top", tenant=None) == []
    assert await repo.lookup("domain", "usps-redelivery.top.example.com", tenant=None) == []
    assert (
        await repo.lookup("domain", "other.co.uk", tenant=None) == []
    )  # never matched by suffix alone


async def test_the_most_specific_match_comes_first(repo: IndicatorRepository) -> None:
    await assert_indicator(
        repo._engine, "domain", "paypa1-secure.com", "bank_impersonation", report_count=90
    )
    await assert_indicator(repo._engine, "domain", "login.paypa1-secure.com", "bank_impersonation")

    found = await repo.lookup("domain", "www.a.login.paypa1-secure.com", tenant=None)

    assert values(found) == ["login.paypa1-secure.com", "paypa1-secure.com"]
    assert set(found[0]) == MATCH_KEYS


async def test_a_url_matches_exactly_or_by_its_host(repo: IndicatorRepository) -> None:
    await assert_indicator(
        repo._engine, "url", "https://paypa1-secure.com/login", "bank_impersonation"
    )
    await assert_indicator(repo._engine, "domain", "paypa1-secure.com", "bank_impersonation")

    exact = await repo.lookup("url", "https://paypa1-secure.com/login", tenant=None)
    by_host = await repo.lookup("url", "http://verify.paypa1-secure.com/other?x=1", tenant=None)

    assert [(m["kind"], m["value"]) for m in exact] == [
        ("url", "https://paypa1-secure.com/login"),
        ("domain", "paypa1-secure.com"),
    ]
    assert [(m["kind"], m["value"]) for m in by_host] == [("domain", "paypa1-secure.com")]


async def test_phone_numbers_are_stored_and_found_in_e164(repo: IndicatorRepository) -> None:
    stored = await assert_indicator(repo._engine, "phone", "+1 (800) 555-0199", "tech_support")

    assert stored.value == "+18005550199"
    for spelling in ("800.555.0199", "(800) 555 0199", "+18005550199"):
        assert values(await repo.lookup("phone", spelling, tenant=None)) == ["+18005550199"]
    assert await repo.lookup("phone", "+18005550198", tenant=None) == []
    with pytest.raises(ValueError, match="not a phone number"):
        await assert_indicator(repo._engine, "phone", "call me maybe", "tech_support")


async def test_emails_are_case_insensitive(repo: IndicatorRepository) -> None:
    await assert_indicator(repo._engine, "email", "Claims@USPS-Redelivery.top", "parcel_delivery")
    assert values(await repo.lookup("email", "claims@usps-redelivery.TOP", tenant=None)) == [
        "claims@usps-redelivery.top"
    ]


async def test_re_adding_an_indicator_adds_to_its_count_and_widens_its_window(
    repo: IndicatorRepository,
) -> None:
    early, late = datetime(2025, 1, 5, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
    engine = repo._engine
    await assert_indicator(engine, "domain", "sunpass-unpaid.xin", "toll_road", report_count=2,
                           seen_at=early)  # fmt: skip
    again = await assert_indicator(engine, "domain", "SUNPASS-unpaid.xin", "toll_road",
                                   report_count=3, seen_at=late)  # fmt: skip

    assert (again.report_count, again.first_seen, again.last_seen) == (5, early, late)
    (match,) = await repo.lookup("domain", "sunpass-unpaid.xin", tenant=None)
    assert match["report_count"] == 5
    assert (match["first_seen"], match["last_seen"]) == (
        "2025-01-05T00:00:00.000Z",
        "2025-06-01T00:00:00.000Z",
    )
    assert (await repo.counts())["domain"] == 1


async def test_the_seed_loads_once_however_often_it_runs(repo: IndicatorRepository) -> None:
    engine = repo._engine
    first = await load_seed(engine)
    second = await load_seed(engine)

    assert first.totals["indicators"] >= 1000 and first.totals["reports"] >= 200
    assert all(first.totals[kind] > 0 for kind in ("phone", "domain", "email", "url"))
    assert (first.indicators_added, first.reports_added) == (
        first.totals["indicators"],
        first.totals["reports"],
    )
    assert (second.indicators_added, second.reports_added) == (0, 0)
    assert second.totals == first.totals
    (usps,) = await repo.lookup("domain", "usps-redelivery.top", tenant=None)
    assert usps["category"] == "parcel_delivery"
    for legitimate in ("paypal.com", "usps.com", "irs.gov", "sunpass.com"):
        assert await repo.lookup("domain", legitimate, tenant=None) == [], legitimate


async def test_full_text_search_finds_the_campaign_a_user_describes(
    repo: IndicatorRepository,
) -> None:
    await load_seed(repo._engine)

    hits = await repo.search_reports("toll road unpaid balance", limit=5)
    assert len(hits) == 5
    assert all("toll" in hit.title.lower() for hit in hits)
    assert hits[0].score > 0 and "unpaid" in hits[0].snippet.lower()

    # No report holds every word of a pasted message: sharing a few generic words is not a
    # match (such a report says nothing about this sender).
    loose = await repo.search_reports("URGENT your E-ZPass toll is unpaid, grandma says hi", 3)
    assert loose == []
    assert await repo.search_reports("   ", 3) == []


async def test_the_scam_database_tool_answers_in_the_contract_shape(
    repo: IndicatorRepository,
) -> None:
    await assert_indicator(
        repo._engine, "domain", "usps-redelivery.top", "parcel_delivery", report_count=7
    )
    tool = ScamDatabase(repo)

    known = await tool({"kind": "domain", "value": "track.usps-redelivery.top"})
    unknown = await tool({"kind": "phone", "value": "+1 202 555 0100"})

    assert tool.name == "scam_database"
    assert [set(m) for m in known["matches"]] == [MATCH_KEYS]
    assert known["matches"][0]["report_count"] == 7
    assert unknown == {"matches": []}
    with pytest.raises(ToolError, match="not a phone number"):
        await tool({"kind": "phone", "value": "nope"})
    with pytest.raises(ToolError, match="kind"):
        await tool({"kind": "fax", "value": "123"})


async def test_the_local_web_search_answers_in_the_contract_shape(
    repo: IndicatorRepository,
) -> None:
    await load_seed(repo._engine)
    tool = WebSearch(LocalReportSearch(repo), max_results=3)

    answer = await tool({"query": "toll road unpaid balance"})

    assert tool.name == "web_search" and answer["provider"] == "local"
    assert len(answer["results"]) == 3
    for result in answer["results"]:
        assert set(result) == RESULT_KEYS
        assert isinstance(result["score"], float) and 0 < result["score"] <= 1
        assert datetime.fromisoformat(result["published"])
        assert result["url"].startswith("https://reports.scamtrail.example/")
    with pytest.raises(ToolError, match="query"):
        await tool({"query": "  "})
