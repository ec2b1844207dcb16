"""Scam phrases `text_signals` must find (and everyday messages it must leave alone)."""

from __future__ import annotations

import pytest

from domain.events import Entity, Kind
from domain.extraction import extract_entities
from domain.signals import text_signals

pytestmark = pytest.mark.unit


def found(text: str, kind: Kind = "sms") -> dict[str, list[str]]:
    """Code → matched phrases, with the entities (links, domains…) the extractor finds."""
    entities: list[Entity] = [e for e in extract_entities(text, kind) if e.kind != "signal"]
    return {code: matched for code, matched, _ in text_signals(text, kind, entities)}


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("send $4,850.00 to the account below", "send $4,850.00"),
        ("Please send $480 to the account below", "send $480"),
        ("transfer £2,400 today", "transfer £2,400"),
        ("pay EUR 1500 now", "pay eur 1500"),
        ("wire 980 USD", "wire 980 usd"),
        ("send us US$ 12,000 by Friday", "send us us$ 12,000"),
    ],
)
def test_a_request_for_an_amount_of_several_digits_matches_the_whole_amount(
    text: str, phrase: str
) -> None:
    assert phrase in found(text).get("payment_request", [])


@pytest.mark.parametrize(
    "hostile",
    [
        "$" + "1,000" * 13_000,
        "a" * 65_536,
        "send $" + "1" * 65_530,
        "pay " + "1." * 32_000,
        "guaranteed " + "20% " * 16_000,
        "read me " + "the " * 16_000,
        "returns of " + "9" * 65_000,
        "connect your " + "x " * 32_000,
    ],
)
def test_hostile_64_kb_inputs_come_back(hostile: str) -> None:
    # The amount and number patterns are bounded ({0,15}-style), never nested quantifiers, so
    # these finish in milliseconds; a backtracking pattern would hang the test run instead.
    assert isinstance(text_signals(hostile, "sms", ()), list)


@pytest.mark.parametrize(
    "text",
    [
        "read me the 6-digit code we just sent",
        "tell the agent the code you received",
        "what is the code we texted you",
        "What's the verification code we just sent you?",
        "share the verification code with our representative",
    ],
)
def test_asking_for_a_one_time_code_to_be_read_out_is_a_credential_request(text: str) -> None:
    assert "credential_request" in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Our bank details have changed. Kindly update your records.",
        "Please note we have changed our bank details for all future invoices.",
        "our bank details have changed, please update your records and pay the invoice to the "
        "new account",
    ],
)
def test_changed_bank_details_are_a_payment_request(text: str) -> None:
    phrases = found(text).get("payment_request", [])
    assert any("bank details" in p for p in phrases), phrases


@pytest.mark.parametrize(
    "text",
    [
        "please do not call to confirm, I'm in meetings all day",
        "Don't phone to verify this, just process it today.",
        "No need to call to confirm the new account.",
    ],
)
def test_asking_not_to_verify_by_phone_is_secrecy(text: str) -> None:
    assert "secrecy" in found(text)


def test_a_whole_invoice_redirection_email_has_both_signals() -> None:
    text = (
        "Hi, our bank details have changed, please update your records and pay the invoice to "
        "the new account. Please do not call to confirm, I'm in meetings all day."
    )
    assert {"payment_request", "secrecy"} <= set(found(text, "email"))


@pytest.mark.parametrize(
    "text",
    [
        "guaranteed 20% monthly returns",
        "earn 3x your investment in 30 days",
        "returns of 15% per week guaranteed",
        "profits of up to 30% weekly",
        "Get 2% daily profit on every deposit",
        "triple your money in a week",
    ],
)
def test_promised_returns_are_an_investment_lure(text: str) -> None:
    assert "investment_lure" in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "connect your wallet to claim the airdrop",
        "verify your wallet to avoid suspension",
        "validate your MetaMask wallet",
        "Sync your Trust Wallet now",
    ],
)
def test_asking_to_connect_or_verify_a_wallet_is_a_credential_request(text: str) -> None:
    assert "credential_request" in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "claim your airdrop",
        "Claim your tokens before Friday",
        "connect your wallet to claim the airdrop",
    ],
)
def test_claiming_an_airdrop_or_tokens_is_a_prize(text: str) -> None:
    assert "prize_or_lottery" in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "your account will be suspended in 24 hours",
        "access will be restricted unless you verify",
        "we will suspend your service",
        "We will terminate your account today.",
        "Your electricity will be disconnected tonight",
        "Failure to verify will result in closure.",
    ],
)
def test_threats_of_suspension_are_a_threat(text: str) -> None:
    assert "threat_or_penalty" in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Log in to the team meeting at 3pm",
        "sign in to the app to see your new statement",
        "Please log in now to the portal from your usual bookmark.",
    ],
)
def test_log_in_without_a_link_is_not_a_credential_request(text: str) -> None:
    assert "credential_request" not in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Sign in to the app at https://evil.top to see your statement",
        "Log in at secure-bank-verify.com to keep your account",
    ],
)
def test_log_in_with_a_link_is_still_a_credential_request(text: str) -> None:
    assert "credential_request" in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Your verification code is 482913. Don't share it with anyone.",
        "Your verification code is 482913. Never share this code, not even with us.",
        "Your Amazon order has shipped",
        "Reminder: your dentist appointment is tomorrow at 10am",
        "Your monthly statement is ready",
        "Thanks for your payment of $45.00",
        "We received your payment of £1,250.00. Thank you.",
        "Guaranteed free returns on all orders over $50",
        "We will close the office early on Friday.",
        "We will never ask you to read us the code.",
        "Never connect your wallet to a site you do not trust.",
        "Please read the code of conduct before Monday.",
    ],
)
def test_everyday_messages_give_no_signals(text: str) -> None:
    assert found(text) == {}
