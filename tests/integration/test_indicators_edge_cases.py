"""Indicators written the way scammers really write them, and input PostgreSQL cannot store:
host names with "_", NUL characters, a report count past the integer column's maximum."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.extraction import extract_entities
from domain.planning import plan_tool_calls
from infrastructure.indicators import MAX_REPORT_COUNT, IndicatorRepository, normalise_indicator
from infrastructure.tools.scam_database import ScamDatabase
from tests.indicator_writes import assert_indicator

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(clean_database: AsyncEngine) -> IndicatorRepository:
    return IndicatorRepository(clean_database)


@pytest.fixture
def client(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """The in-process api of tests/conftest.py, as every test here calls it."""
    return api


def values(matches: list[dict[str, object]]) -> list[object]:
    return [m["value"] for m in matches]


def test_an_underscore_in_an_ascii_label_is_a_host_name() -> None:
    assert normalise_indicator("domain", "LOG_IN.usps-redelivery.top.") == (
        "log_in.usps-redelivery.top"
    )
    assert normalise_indicator("url", "http://log_in.evil.top/x") == "http://log_in.evil.top/x"
    assert normalise_indicator("email", "a@mail_1.evil.top") == "a@mail_1.evil.top"
    # Non-ASCII labels still go through IDNA: punycode is decoded, a joiner is refused.
    assert normalise_indicator("domain", "xn--pypal-4ve.com") == "p\u0430ypal.com"
    for bad in ("a..evil.top", "-a.evil.top", "a\u200d.evil.top", "evil", "a b.top"):
        with pytest.raises(ValueError, match="not a domain name"):
            normalise_indicator("domain", bad)


async def test_a_subdomain_with_an_underscore_finds_its_known_registered_domain(
    repo: IndicatorRepository,
) -> None:
    await assert_indicator(repo._engine, "domain", "usps-redelivery.top", "parcel_delivery")

    for value in ("log_in.usps-redelivery.top", "pay_p\u0430l.usps-redelivery.top"):
        assert values(await repo.lookup("domain", value, tenant=None)) == ["usps-redelivery.top"]
    found = await repo.lookup("url", "https://secure_login.usps-redelivery.top/pay", tenant=None)
    assert values(found) == ["usps-redelivery.top"]


async def test_the_agent_finds_a_seeded_domain_behind_an_underscore_subdomain(
    repo: IndicatorRepository,
) -> None:
    await assert_indicator(repo._engine, "domain", "paypal-verify.top", "bank_impersonation")
    tool = ScamDatabase(repo)
    text = "Your account is locked, verify at https://secure_login.paypal-verify.top/x"
    calls = [
        call
        for call in plan_tool_calls(extract_entities(text, "sms"), kind="sms", client_metadata={})
        if call.tool == "scam_database"
    ]

    answers = [await tool(call.input) for call in calls]  # no ToolError

    assert calls
    assert all(values(a["matches"]) == ["paypal-verify.top"] for a in answers)


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "domain", "value": "evil-ok.top", "category": "x", "source": "a\u0000b"},
        {"kind": "email", "value": "a\u0000b@evil.top", "category": "x"},
        {"kind": "url", "value": "http://evil.top/\u0000", "category": "x"},
    ],
)
async def test_an_indicator_holding_a_nul_is_refused_not_a_server_error(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/indicators", json=body)

    assert response.status_code == 422
    assert "NUL" in response.text
    lookup = await client.get("/indicators", params={"kind": "domain", "value": "evil-ok.top"})
    assert lookup.json() == {"matches": []}


async def test_looking_up_a_value_holding_a_nul_is_refused(client: httpx.AsyncClient) -> None:
    for kind, value in (("email", "a\u0000b@evil.top"), ("url", "http://evil.top/\u0000")):
        response = await client.get("/indicators", params={"kind": kind, "value": value})
        assert response.status_code == 422, (kind, response.text)


async def test_the_report_count_stops_at_its_maximum_instead_of_failing(
    client: httpx.AsyncClient, repo: IndicatorRepository
) -> None:
    body = {"kind": "domain", "value": "overflow.top", "category": "x", "report_count": 1_000_000}
    await assert_indicator(  # in the tenant the api client's token names
        repo._engine, "domain", "overflow.top", "x", report_count=MAX_REPORT_COUNT - 10,
        tenant="public",
    )  # fmt: skip

    responses = [await client.post("/indicators", json=body) for _ in range(3)]

    assert [r.status_code for r in responses] == [201, 201, 201]
    assert responses[-1].json()["report_count"] == MAX_REPORT_COUNT
    with pytest.raises(ValueError, match="report_count"):
        await assert_indicator(
            repo._engine, "domain", "overflow.top", "x", report_count=MAX_REPORT_COUNT + 1
        )
