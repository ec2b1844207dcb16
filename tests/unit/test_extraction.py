from __future__ import annotations

import time

import pytest

from domain.events import Entity
from domain.extraction import extract_entities

pytestmark = pytest.mark.unit

PARCEL = (
    "USPS: your parcel is on hold. Pay the $1.99 redelivery fee within 24 hours at "
    "usps-redelivery.top/pay or call +1 (202) 555-0143."
)


def of_kind(entities: tuple[Entity, ...], kind: str) -> list[Entity]:
    return [e for e in entities if e.kind == kind]


def test_a_parcel_scam_yields_its_phone_link_domain_amount_and_signals() -> None:
    entities = extract_entities(PARCEL, "sms")
    (phone,) = of_kind(entities, "phone")
    assert phone.value == "+12025550143"
    assert phone.details == {"raw": "+1 (202) 555-0143", "region": "US"}
    (url,) = of_kind(entities, "url")
    assert url.value == "http://usps-redelivery.top/pay"
    assert url.details["host"] == "usps-redelivery.top"
    (domain,) = of_kind(entities, "domain")
    assert domain.details["registered_domain"] == "usps-redelivery.top"
    assert domain.details["suffix"] == "top"
    assert [a.value for a in of_kind(entities, "amount")] == ["1.99 USD"]
    signals = {e.value: e for e in of_kind(entities, "signal")}
    assert {"urgency", "payment_request", "impersonated_brand", "link_in_message"} <= set(signals)
    assert signals["impersonated_brand"].details["brand"] == "USPS"


def test_urls_with_a_scheme_keep_it_and_www_is_dropped_from_the_domain() -> None:
    entities = extract_entities("See https://www.PayPal.com/signin and http://bit.ly/x.", "sms")
    assert [u.value for u in of_kind(entities, "url")] == [
        "https://www.PayPal.com/signin",
        "http://bit.ly/x",
    ]
    assert [d.value for d in of_kind(entities, "domain")] == ["paypal.com", "bit.ly"]


def test_an_email_address_is_lowercased_and_its_domain_becomes_a_domain() -> None:
    entities = extract_entities("Write to Billing@Paypa1-Secure.com today", "email")
    assert [e.value for e in of_kind(entities, "email")] == ["billing@paypa1-secure.com"]
    assert [d.value for d in of_kind(entities, "domain")] == ["paypa1-secure.com"]
    assert of_kind(entities, "url") == []


def test_idn_hosts_are_kept_as_found_with_their_punycode() -> None:
    (domain,) = of_kind(extract_entities("login at p\u0430ypal.com now", "sms"), "domain")
    assert domain.value == "p\u0430ypal.com"
    assert domain.details["punycode"] == "xn--pypal-4ve.com"


@pytest.mark.parametrize(
    ("text", "value", "amount", "currency"),
    [
        ("only $1.99", "1.99 USD", 1.99, "USD"),
        ("send 1.99 USD", "1.99 USD", 1.99, "USD"),
        ("a fee of £500", "500.00 GBP", 500.0, "GBP"),
        ("pay EUR 20 now", "20.00 EUR", 20.0, "EUR"),
        ("total $4,850.00", "4850.00 USD", 4850.0, "USD"),
        ("send 0.05 BTC", "0.05 BTC", 0.05, "BTC"),
    ],
)
def test_amounts_are_normalised(text: str, value: str, amount: float, currency: str) -> None:
    (found,) = of_kind(extract_entities(text, "sms"), "amount")
    assert (found.value, found.details) == (value, {"amount": amount, "currency": currency})


def test_a_bare_phone_submission_is_parsed_whole() -> None:
    (phone,) = of_kind(extract_entities("1-900-555-0199", "phone"), "phone")
    assert phone.value == "+19005550199"


def test_ordinary_dotted_words_are_not_links() -> None:
    entities = extract_entities("See e.g. version 1.2.3 of report.pdf, thanks.", "sms")
    assert of_kind(entities, "url") == []
    assert of_kind(entities, "domain") == []


def test_a_2fa_code_that_says_do_not_share_is_not_a_credential_request() -> None:
    entities = extract_entities("Your code is 482913. Do not share this code with anyone.", "sms")
    assert of_kind(entities, "signal") == []


def test_a_request_for_a_password_is_a_credential_request() -> None:
    entities = extract_entities("Reply with your password to keep your mailbox.", "sms")
    assert [s.value for s in of_kind(entities, "signal")] == ["credential_request"]


def test_a_brand_linking_to_its_own_site_is_not_impersonated() -> None:
    entities = extract_entities("USPS: delivered. Track at https://www.usps.com/track", "sms")
    assert [s.value for s in of_kind(entities, "signal")] == ["link_in_message"]


def test_entities_are_deduplicated_in_first_seen_order() -> None:
    text = "Call 202-555-0143, or +1 202 555 0143, or visit a.example.com and a.example.com"
    entities = extract_entities(text, "sms")
    assert [(e.kind, e.value) for e in entities if e.kind != "signal"] == [
        ("phone", "+12025550143"),
        ("url", "http://a.example.com"),
        ("domain", "a.example.com"),
    ]


def test_a_64_kb_hostile_message_is_bounded_and_fast() -> None:
    hostile = ("a." * 20 + "x" * 70 + "@" + "-" * 50 + " $1 " + "1" * 30 + " ") * 400
    started = time.perf_counter()
    entities = extract_entities(hostile[:70_000], "sms")
    assert time.perf_counter() - started < 1.0
    assert sum(1 for e in entities if e.kind == "amount") <= 50
