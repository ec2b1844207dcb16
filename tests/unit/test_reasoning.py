from __future__ import annotations

import pytest

from domain import events as ev
from domain.extraction import extract_entities
from domain.reasoning import has_evidence, reason
from tests.factories import recorded_stream as stream

pytestmark = pytest.mark.unit

PHONE = "+18005550199"


def submitted(content: str) -> ev.TaskSubmitted:
    return ev.TaskSubmitted(content=content, kind="sms")


def extracted(content: str) -> ev.EntitiesExtracted:
    return ev.EntitiesExtracted(entities=extract_entities(content, "sms"))


def scam_db_hit(count: int) -> ev.ToolCallCompleted:
    match = {
        "kind": "phone",
        "value": PHONE,
        "category": "irs_impersonation",
        "report_count": count,
        "first_seen": None,
        "last_seen": None,
    }
    return ev.ToolCallCompleted(
        call_id=f"scam_db:phone:{PHONE}",
        tool="scam_database",
        step="scam_db",
        output={"matches": [match]},
    )


def failed(call_id: str, *, will_retry: bool = False) -> ev.ToolCallFailed:
    return ev.ToolCallFailed(
        call_id=call_id,
        tool="web_search",
        step="exa_search",
        error="timeout",
        will_retry=will_retry,
    )


def test_a_harmless_message_is_safe_because_no_risk_signals_were_found() -> None:
    verdict = reason(stream(submitted("See you at 6?"), extracted("See you at 6?")))
    assert verdict.verdict == "safe"
    assert verdict.score == 0.01  # no verdict is certain: the floor of the calibrated score
    (only,) = verdict.reasons
    assert only.code == "no_risk_signals"
    assert only.evidence == (2,)


def test_a_scam_database_hit_is_cited_with_its_value_count_and_category() -> None:
    text = f"Call {PHONE} now about your taxes"
    verdict = reason(stream(submitted(text), extracted(text), scam_db_hit(41)))
    assert verdict.verdict == "scam"
    top = verdict.reasons[0]
    assert top.text.startswith(
        f"{PHONE} is reported 41 times in the scam database as 'irs_impersonation'"
    )
    assert top.evidence == (3,)


def test_signals_add_up_to_a_scam_and_each_cites_the_extraction() -> None:
    text = "USPS: pay the $1.99 redelivery fee within 24 hours at usps-redelivery.top/pay"
    verdict = reason(stream(submitted(text), extracted(text)))
    assert verdict.verdict in {"suspicious", "scam"}
    assert {r.code for r in verdict.reasons} >= {"urgency", "payment_request", "impersonated_brand"}
    assert all(r.evidence == (2,) for r in verdict.reasons if r.code != "scam_wording")
    risky = ev.ToolCallCompleted(
        call_id="domain_reputation:usps-redelivery.top",
        tool="domain_reputation",
        step="domain_reputation",
        output={
            "domain": "usps-redelivery.top",
            "registered_domain": "usps-redelivery.top",
            "risk": 0.65,
            "signals": [{"code": "risky_tld", "detail": ".top is cheap", "weight": 0.3}],
        },
    )
    with_tool = reason(stream(submitted(text), extracted(text), risky))
    assert with_tool.verdict == "scam"
    assert with_tool.score >= verdict.score
    domain_reason = next(r for r in with_tool.reasons if r.code == "domain_risk")
    assert domain_reason.evidence == (3,)
    assert domain_reason.text.startswith("usps-redelivery.top looks risky: .top is cheap")


def test_final_failures_lower_confidence_and_are_cited_but_retries_are_not() -> None:
    text = "See you at 6?"
    base = reason(stream(submitted(text), extracted(text)))
    retried = reason(stream(submitted(text), extracted(text), failed("s1", will_retry=True)))
    lost = reason(stream(submitted(text), extracted(text), failed("s1"), failed("s2")))
    assert retried.confidence == base.confidence
    assert lost.confidence == pytest.approx(base.confidence * 0.8**2, abs=0.001)
    assert [r.evidence for r in lost.reasons if r.code == "tool_failed"] == [(3,), (4,)]


def test_a_call_that_failed_and_then_completed_is_not_a_failure() -> None:
    text = f"Call {PHONE}"
    events = stream(
        submitted(text), extracted(text), failed(f"scam_db:phone:{PHONE}"), scam_db_hit(3)
    )
    verdict = reason(events)
    assert "tool_failed" not in {r.code for r in verdict.reasons}


def test_more_evidence_means_a_higher_score_and_a_confident_scam() -> None:
    text = f"Call {PHONE}"
    little = reason(stream(submitted(text), extracted(text)))
    more = reason(stream(submitted(text), extracted(text), scam_db_hit(1)))
    assert little.verdict == "safe" and more.verdict == "scam"
    assert more.score > little.score
    assert more.confidence == more.score  # the calibrated chance that "scam" is right
    assert little.confidence == pytest.approx(1 - little.score, abs=0.001)


def domain_finding(risk: float, code: str, detail: str) -> ev.ToolCallCompleted:
    return ev.ToolCallCompleted(
        call_id="domain_reputation:paypa1-help.com",
        tool="domain_reputation",
        step="domain_reputation",
        output={
            "domain": "paypa1-help.com",
            "registered_domain": "paypa1-help.com",
            "risk": risk,
            "signals": [{"code": code, "detail": detail, "weight": risk}],
        },
    )


def test_no_signal_is_safe() -> None:
    text = "Dinner at 7 tomorrow still works? Bring the board game."
    verdict = reason(stream(submitted(text), extracted(text)))
    assert verdict.verdict == "safe"
    assert verdict.confidence >= 0.9


def test_one_weak_signal_is_suspicious_at_most() -> None:
    for text in ("Please reply asap", "Details at https://example-shop.net/offers"):
        verdict = reason(stream(submitted(text), extracted(text)))
        assert verdict.verdict in {"safe", "suspicious"}, (text, verdict)


def test_a_lookalike_alone_is_suspicious_and_confirmed_by_another_sign() -> None:
    text = "Your statement: https://paypa1-help.com"
    lookalike = domain_finding(0.55, "lookalike_brand", "paypa1-help.com imitates PayPal")
    alone = reason(stream(submitted(text), extracted(text), lookalike))
    assert alone.verdict == "suspicious"
    urgent = "URGENT: verify your account within 24 hours at https://paypa1-help.com"
    confirmed = reason(stream(submitted(urgent), extracted(urgent), lookalike))
    assert confirmed.verdict == "scam"


def test_each_weight_is_how_much_its_reason_moved_the_score() -> None:
    text = "USPS: pay the $1.99 redelivery fee within 24 hours at usps-redelivery.top/pay"
    verdict = reason(stream(submitted(text), extracted(text), scam_db_hit(3)))
    assert verdict.verdict == "scam"
    moved = [r for r in verdict.reasons if r.weight > 0]
    assert moved and all(0 < r.weight <= verdict.score for r in moved)
    top = verdict.reasons[0]
    assert top.code == "scam_database_match"  # the finding that moved the score most


def test_has_evidence_is_false_only_when_nothing_answered() -> None:
    assert has_evidence(stream(submitted("x"), extracted("x")))
    assert has_evidence(stream(submitted("x"), scam_db_hit(1)))
    assert not has_evidence(stream(submitted("x"), failed("a"), failed("b")))


def test_the_same_finding_from_two_calls_is_one_reason_citing_both() -> None:
    content = f"Call {PHONE} now"
    again = scam_db_hit(41).model_copy(update={"call_id": "scam_db:url:other"})
    once = reason(stream(submitted(content), extracted(content), scam_db_hit(41)))
    twice = reason(stream(submitted(content), extracted(content), scam_db_hit(41), again))

    (merged,) = [r for r in twice.reasons if r.code == "scam_database_match"]
    assert merged.evidence == (3, 4)
    assert twice.score == once.score, "a finding counts once however many calls repeat it"
