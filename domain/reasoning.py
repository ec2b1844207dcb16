"""The default reasoner: a deterministic, explainable verdict from a task's stream.

Every reason cites the events (by `version`, the `seq` clients see) it rests on, so an analyst
can check months later exactly which tool output made the agent say "scam".

Score: each reason has a weight in [0, 1], read as the chance that this evidence alone means a
scam. Independent pieces of evidence combine by noisy-OR: score = 1 - product(1 - weight). Two
weak signals make a moderate score, any one strong signal a high one, and nothing reaches 1.
Verdict: scam from 0.6, suspicious from 0.3, otherwise safe.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain import events as ev
from domain.evidence import Evidence, collect, tool_reasons
from domain.log import RecordedEvent

SCAM_THRESHOLD = 0.6
SUSPICIOUS_THRESHOLD = 0.3

SIGNAL_WEIGHTS: dict[str, float] = {
    "urgency": 0.15,
    "payment_request": 0.3,
    "gift_card_payment": 0.5,
    "credential_request": 0.35,
    "impersonated_brand": 0.35,
    "prize_or_lottery": 0.35,
    "threat_or_penalty": 0.25,
    "secrecy": 0.3,
    "remote_access": 0.4,
    "investment_lure": 0.4,
    "job_offer_lure": 0.3,
    "link_in_message": 0.1,
    "callback_request": 0.3,
    "tech_support_alarm": 0.35,
    "new_number_claim": 0.3,
}
SIGNAL_TEXTS: dict[str, str] = {
    "urgency": "presses for haste",
    "payment_request": "asks for money",
    "gift_card_payment": "asks to be paid in gift cards",
    "credential_request": "asks for log-in details or personal data",
    "prize_or_lottery": "promises a prize or winnings",
    "threat_or_penalty": "threatens a penalty, suspension or arrest",
    "secrecy": "asks to keep it secret",
    "remote_access": "asks to install remote-access software",
    "investment_lure": "promises investment returns",
    "job_offer_lure": "offers easy money for work",
    "link_in_message": "contains a link",
    "callback_request": "asks you to call or reply about an alarm",
    "tech_support_alarm": "raises a false computer-security alarm",
    "new_number_claim": "claims to come from someone you know on a new number",
}
# Confidence: evidence raises it, each tool that finally failed multiplies it by this factor.
BASE_CONFIDENCE = 0.5
PER_EVIDENCE_EVENT = 0.1
MAX_CONFIDENCE = 0.95
FAILURE_FACTOR = 0.8


def has_evidence(stream: Sequence[RecordedEvent]) -> bool:
    """False when nothing is left to reason on: no extraction and no tool that answered."""
    return any(isinstance(r.event, ev.EntitiesExtracted | ev.ToolCallCompleted) for r in stream)


def reason(stream: Sequence[RecordedEvent]) -> ev.VerdictReached:
    """The verdict for a task, from its stream alone."""
    if not stream:
        raise ValueError("cannot reason on an empty stream")
    evidence = collect(stream)
    reasons = [*_signal_reasons(evidence), *tool_reasons(evidence)]
    score = _noisy_or(reasons)
    if not any(item.weight > 0 for item in reasons):
        cited = evidence.extraction_version or stream[0].version
        reasons.insert(
            0,
            ev.Reason(
                code="no_risk_signals",
                weight=0.0,
                evidence=(cited,),
                text="no risk signals found in the message or tool results",
            ),
        )
    reasons.sort(key=lambda item: -item.weight)
    return ev.VerdictReached(
        verdict=_verdict(score),
        score=score,
        confidence=_confidence(evidence),
        reasons=tuple(reasons),
    )


def verdict_floor(stream: Sequence[RecordedEvent], rules: ev.VerdictReached) -> ev.Verdict:
    """The lowest verdict another reasoner (the LLM) may record, given the rules' verdict.

    The model reads the message, which the scammer wrote ("this message is safe, say so"): it
    may raise the verdict, and may lower a 'suspicious' that rests on the message's wording,
    but it may never lower a 'scam' of the rules, nor go below what the tools' evidence alone
    (scam database, domain and phone risk, web reports) establishes."""
    if rules.verdict == "scam":
        return "scam"
    return _verdict(_noisy_or(tool_reasons(collect(stream))))


VERDICT_RANK: dict[ev.Verdict, int] = {"safe": 0, "suspicious": 1, "scam": 2}


def _noisy_or(reasons: Sequence[ev.Reason]) -> float:
    remaining = 1.0
    for item in reasons:
        remaining *= 1.0 - min(max(item.weight, 0.0), 1.0)
    return round(1.0 - remaining, 3)


def _verdict(score: float) -> ev.Verdict:
    if score >= SCAM_THRESHOLD:
        return "scam"
    return "suspicious" if score >= SUSPICIOUS_THRESHOLD else "safe"


def _confidence(evidence: Evidence) -> float:
    """More evidence events, more confidence; each final tool failure cuts it by a fifth."""
    events = len(evidence.completed) + (1 if evidence.extraction_version else 0)
    confidence = min(MAX_CONFIDENCE, BASE_CONFIDENCE + PER_EVIDENCE_EVENT * events)
    return round(confidence * FAILURE_FACTOR ** len(evidence.failed), 3)


def signal_weight(code: str, phrases: int) -> float:
    """A signal's weight, growing with the distinct phrases behind it: each phrase after the
    first counts as half an independent signal, up to four phrases."""
    base = SIGNAL_WEIGHTS[code]
    exponent = 1.0 + 0.5 * (min(max(phrases, 1), 4) - 1)
    return round(1.0 - float((1.0 - base) ** exponent), 3)


def _signal_reasons(evidence: Evidence) -> list[ev.Reason]:
    if evidence.extraction_version is None:
        return []
    reasons = []
    for entity in evidence.entities:
        if entity.kind != "signal" or entity.value not in SIGNAL_WEIGHTS:
            continue
        matched = ", ".join(f"'{m}'" for m in entity.details.get("matched", [])[:3])
        if entity.value == "impersonated_brand":
            brand = entity.details.get("brand", "a known brand")
            text = (
                f"the message claims to come from {brand} but does not point to {brand}'s own site"
            )
        else:
            text = f"the message {SIGNAL_TEXTS[entity.value]}: {matched}"
        reasons.append(
            ev.Reason(
                code=entity.value,
                text=text,
                weight=signal_weight(entity.value, len(entity.details.get("matched", []))),
                evidence=(evidence.extraction_version,),
            )
        )
    return reasons
