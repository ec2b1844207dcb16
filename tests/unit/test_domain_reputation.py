from __future__ import annotations

import pytest

from domain.tools import ToolError
from infrastructure.tools.domain_reputation import DomainReputation, assess_domain

pytestmark = pytest.mark.unit


def codes(domain: str, url: str | None = None) -> list[str]:
    return [s["code"] for s in assess_domain(domain, url)["signals"]]


@pytest.mark.parametrize(
    "domain", ["paypal.com", "www.usps.com", "tools.usps.com", "irs.gov", "amazon.co.uk"]
)
def test_the_brands_own_domains_carry_no_risk(domain: str) -> None:
    result = assess_domain(domain, f"https://{domain}/signin/verify")
    assert result["risk"] == 0
    assert result["signals"] == []


@pytest.mark.parametrize(
    ("domain", "brand"),
    [
        ("paypa1.com", "PayPal"),
        ("netfIix.com", "Netflix"),
        ("arnazon.com", "Amazon"),
        ("bankofamerlca.com", "Bank of America"),
        ("steamcommunlty.com", "Steam"),
    ],
)
def test_look_alikes_of_brands_are_named(domain: str, brand: str) -> None:
    (signal,) = assess_domain(domain, None)["signals"]
    assert signal["code"] == "lookalike_brand"
    assert brand in signal["detail"]


def test_a_brand_name_inside_a_foreign_domain_is_flagged() -> None:
    assert codes("paypal.secure-login.com") == ["brand_embedded", "credential_words_in_host"]
    result = assess_domain("usps-redelivery.top", "http://usps-redelivery.top/pay")
    assert [s["code"] for s in result["signals"]] == ["brand_embedded", "risky_tld"]
    assert result["risk"] == pytest.approx(0.7)  # .top weighs 0.4 in risky_tlds.json
    assert result["registered_domain"] == "usps-redelivery.top"


def test_a_homoglyph_domain_is_caught_in_unicode_and_punycode() -> None:
    for form in ("p\u0430ypal.com", "xn--pypal-4ve.com"):
        assert codes(form) == ["idn", "homoglyph", "lookalike_brand"]
        assert assess_domain(form, None)["risk"] > 0.8


def test_ip_hosts_shorteners_deep_subdomains_and_credential_paths() -> None:
    assert codes("10.0.0.1", "http://10.0.0.1/admin") == ["ip_literal"]
    assert codes("bit.ly", "http://bit.ly/x") == ["url_shortener"]
    assert codes("a.b.c.example-shop.net") == ["deep_subdomain"]
    assert codes("example-shop.net", "http://example-shop.net/account/verify") == [
        "credential_path"
    ]


@pytest.mark.parametrize("domain", ["github.com", "purchase.com", "pineapple.com", "team.com"])
def test_ordinary_domains_are_clean(domain: str) -> None:
    assert assess_domain(domain, None)["risk"] == 0


def test_risk_combines_signals_but_stays_below_one() -> None:
    result = assess_domain("x.y.paypal.verify-login.top", "http://x/login/verify")
    assert 0.7 < result["risk"] < 1


async def test_the_tool_answers_the_contract_and_rejects_bad_input() -> None:
    tool = DomainReputation()
    assert tool.name == "domain_reputation"
    output = await tool({"domain": "usps-redelivery.top", "url": None})
    assert set(output) == {"domain", "registered_domain", "risk", "signals"}
    with pytest.raises(ToolError):
        await tool({"domain": 42})
    with pytest.raises(ToolError):
        await tool({"domain": "not a host", "url": None})
