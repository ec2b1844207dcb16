from __future__ import annotations

import pytest

from infrastructure.tools.domain_reputation import (
    assess_domain,
    hosting_suffix,
    popular_rank,
    risky_tld_weight,
)

pytestmark = pytest.mark.unit


def codes(domain: str) -> list[str]:
    return [s["code"] for s in assess_domain(domain, None)["signals"]]


@pytest.mark.parametrize(
    "domain",
    [
        "www.google.com",
        "github.com",
        "en.wikipedia.org",
        "amazon.de",
        "amazon.co.jp",
        "paypal.de",
        "chase.com",
        "bankofamerica.com",
    ],
)
def test_real_popular_and_brand_domains_carry_no_risk(domain: str) -> None:
    result = assess_domain(domain, f"https://{domain}/login/verify")
    assert result["risk"] == 0
    assert result["signals"] == []


def test_popular_domains_say_so_with_their_rank() -> None:
    result = assess_domain("www.google.com", None)
    assert result["popular"] is True
    assert result["rank"] == 1
    assert popular_rank("wikipedia.org") is not None
    for not_vouched_for in ("mybakery.co.uk", "walletconnect-claim.netlify.app", "bit.ly"):
        assert "popular" not in assess_domain(not_vouched_for, None)


def test_reference_data_comes_from_the_shipped_files() -> None:
    assert hosting_suffix("someone.github.io") == "github.io"
    assert hosting_suffix("x.pages.dev") == "pages.dev"
    assert hosting_suffix("shop.weebly.com") == "weebly.com"
    assert hosting_suffix("sites.google.com") == "sites.google.com"
    assert hosting_suffix("github.io") is None
    assert hosting_suffix("example.com") is None
    top = risky_tld_weight("top")
    assert top is not None and 0.3 <= top <= 0.4
    assert risky_tld_weight("com") is None
    assert risky_tld_weight("de") is None


@pytest.mark.parametrize(
    "domain",
    [
        "login-paypal-secure.xyz",
        "paypal-verify-account.com",
        "walletconnect-claim.netlify.app",
        "metamask-airdrop.web.app",
        "free-gift-giveaway.top",
        "páypal.com",
        "p\u0430ypal.com",
        "rnicrosoft.com",
        "paypa1.com",
        "secure-paypa1.com",
    ],
)
def test_scam_shaped_hosts_score_high(domain: str) -> None:
    assert assess_domain(domain, None)["risk"] >= 0.5


def test_free_hosting_alone_stays_below_half() -> None:
    result = assess_domain("someone.github.io", None)
    assert codes("someone.github.io") == ["free_hosting"]
    assert 0 < result["risk"] < 0.5
    assert "popular" not in result


def test_lure_and_credential_words_in_the_host() -> None:
    assert "lure_words" in codes("free-gift-giveaway.top")
    assert "credential_words_in_host" in codes("walletconnect-claim.netlify.app")
    assert "credential_words_in_host" in codes("login-microsoft.com")
    assert "credential_words_in_host" in codes("securepaypal.com")
    for ordinary in ("accountant-services.com", "freedom-house.org", "authority.co.uk"):
        assert "credential_words_in_host" not in codes(ordinary)
        assert "lure_words" not in codes(ordinary)


@pytest.mark.parametrize(
    ("domain", "brand"),
    [
        ("páypal.com", "PayPal"),
        ("rnicrosoft.com", "Microsoft"),
        ("paypall.com", "PayPal"),
        ("payppal.com", "PayPal"),
        ("paypla.com", "PayPal"),
        ("gooogle.com", "Google"),
        ("vvalmart.com", "Walmart"),
    ],
)
def test_visual_look_alikes_name_the_brand(domain: str, brand: str) -> None:
    signals = assess_domain(domain, None)["signals"]
    (signal,) = [s for s in signals if s["code"] == "lookalike_brand"]
    assert brand in signal["detail"]
    assert signal["weight"] <= 0.6


@pytest.mark.parametrize(
    "domain",
    [
        "metalwork.shop",
        "applebees.com",
        "purchase-orders.com",
        "mybakery.co.uk",
        "team.com",
        "metabolic.com",
        "chaser.com",
    ],
)
def test_ordinary_words_are_not_look_alikes(domain: str) -> None:
    assert not {"lookalike_brand", "brand_embedded"} & set(codes(domain))
