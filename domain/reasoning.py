"""The default reasoner: a deterministic, explainable verdict from a task's stream.

Every reason cites the events (by `version`, the `seq` clients see) it rests on, so an analyst
can check months later exactly which tool output made the agent say "scam".

Evidence. The rules give each finding a weight in [0, 1] (a phrase in the text, a tool's
finding; a remote MCP tool's risk counts at most domain.evidence.REMOTE_MAX_WEIGHT, so alone it
never makes a scam); findings combine by noisy-OR into the rules' score. A small learned model
of scam and spam wording (domain.text_model) reads the message too.

Score. The rules' score and the model's logit are combined by logistic regression fitted on
labelled data (domain/models/calibration.json, fitted by benchmarks/calibrate.py on the train
split only), so `score` is a calibrated probability that the message is a scam: of the
messages scored 0.8, about 80 % are. `confidence` is that probability for the verdict given
(`score` for scam and suspicious, 1 - `score` for safe), lowered for each tool that failed.
A reason's `weight` is how much that reason moved the score: the score with it minus the score
without it.

Verdict policy, on top of the score:
- no finding at all (no rule reason, and wording the model does not find scam-like): `safe`;
- `scam` needs the score past SCAM_THRESHOLD AND either one strong finding (a scam-database
  match, a look-alike domain with another sign, gift cards, ...; weight >= STRONG_WEIGHT, or
  the model near-certain) or two independent findings that corroborate each other;
- anything else past SUSPICIOUS_THRESHOLD is `suspicious`: one weak finding is never more.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from domain import events as ev
from domain.evidence import Evidence, collect, tool_reasons
from domain.log import RecordedEvent
from domain.task import fold
from domain.text_model import sigmoid, text_model

CALIBRATION_FILE = Path(__file__).resolve().parent / "models" / "calibration.json"
# Rules-only thresholds, for the floor under another reasoner's verdict (verdict_floor).
RULES_SCAM_THRESHOLD = 0.6
RULES_SUSPICIOUS_THRESHOLD = 0.3
# No verdict is certain: the calibrated score stays within [MIN_SCORE, 1 - MIN_SCORE], so the
# confidence of a clear case reads 0.99, not 1.00.
MIN_SCORE = 0.01
STRONG_WEIGHT = 0.6  # a look-alike domain alone (0.55) is not strong: it needs another sign
MODEL_STRONG = 0.97  # the wording model alone counts as strong evidence past this
MODEL_FINDING = 0.8  # ... and as one finding past this
MAX_MODEL_WORDS = 6
WORDLESS = frozenset({"url", "phone"})
# Findings that describe the message rather than accuse it: they add to the score, but never
# count as the second finding that confirms a scam.
CONTEXT = frozenset({"link_in_message"})
# Phrases too common in honest messages to make wording telling on their own.
WEAK_PHRASES = frozenset({"urgency", "link_in_message"})

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
FAILURE_FACTOR = 0.8  # each tool that finally failed multiplies the confidence by this


@dataclass(frozen=True)
class Calibration:
    """score = sigmoid(intercept + rules * logit(rules' score) + model * model's logit)."""

    intercept: float
    rules: float
    model: float
    scam_threshold: float
    suspicious_threshold: float


# Used when no fitted file is shipped: the rules' score as it is, the model ignored.
UNFITTED = Calibration(0.0, 1.0, 0.0, 0.6, 0.3)


def channel(kind: str) -> str:
    """Calibration is per channel: long mail and short messages differ in base rate and in
    how much their wording says."""
    return "email" if kind == "email" else "short"


@cache
def _fitted() -> dict[str, Calibration]:
    if not CALIBRATION_FILE.exists():
        return {}
    data = json.loads(CALIBRATION_FILE.read_text())
    return {
        name: Calibration(
            float(fit["intercept"]),
            float(fit["rules"]),
            float(fit["model"]),
            float(fit["scam_threshold"]),
            float(fit["suspicious_threshold"]),
        )
        for name, fit in data["channels"].items()
    }


def calibration(kind: str) -> Calibration:
    return _fitted().get(channel(kind), UNFITTED)


def has_evidence(stream: Sequence[RecordedEvent]) -> bool:
    """False when nothing is left to reason on: no extraction and no tool that answered."""
    state = fold(stream)
    return state is not None and state.analysis.has_evidence


def reason(stream: Sequence[RecordedEvent]) -> ev.VerdictReached:
    """The verdict for a task, from its stream alone."""
    if not stream:
        raise ValueError("cannot reason on an empty stream")
    evidence = collect(stream)
    findings = rule_reasons(evidence)
    model_logit, model_reason = _wording(stream)
    submitted = stream[0].event
    kind = submitted.kind if isinstance(submitted, ev.TaskSubmitted) else "text"
    fit = calibration(kind)
    score = combined_score(findings, model_logit, fit)
    if channel(kind) == "email":
        score = max(score, _tool_floor(findings))
    reasons = _attributed(findings, model_reason, model_logit, score, fit)
    verdict = _policy(score, findings, model_logit, fit)
    if verdict == "safe" and not any(item.weight > 0 for item in reasons):
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
    reasons.extend(_failures(evidence))
    reasons.sort(key=lambda item: -item.weight)
    score = min(max(score, MIN_SCORE), 1 - MIN_SCORE)
    return ev.VerdictReached(
        verdict=verdict,
        score=round(score, 3),
        confidence=_confidence(verdict, score, evidence),
        reasons=tuple(reasons),
    )


def rule_reasons(evidence: Evidence) -> list[ev.Reason]:
    """What the rules find: signals in the text and the tools' findings (failures excluded)."""
    found = [*_signal_reasons(evidence), *tool_reasons(evidence)]
    return [item for item in found if item.code != "tool_failed"]


def _failures(evidence: Evidence) -> list[ev.Reason]:
    return [item for item in tool_reasons(evidence) if item.code == "tool_failed"]


def combined_score(findings: Sequence[ev.Reason], model_logit: float, fit: Calibration) -> float:
    rules = min(max(_noisy_or(findings), 0.001), 0.999)
    logit = fit.intercept + fit.rules * math.log(rules / (1 - rules)) + fit.model * model_logit
    return sigmoid(logit)


def _sources(positive: Sequence[ev.Reason], model: float) -> int:
    """How many independent sources back the findings. The message's wording is one source,
    whether the phrase rules or the wording model read it (the sender wrote it all), or two when
    it uses three telling kinds of lure at once, or two that the wording model confirms; each
    tool's finding is a source of its own."""
    phrases = {item.code for item in positive if item.code in SIGNAL_WEIGHTS}
    tools = {item.code for item in positive if item.code not in SIGNAL_WEIGHTS}
    worded = 1 if phrases or model >= MODEL_FINDING else 0
    telling = phrases - WEAK_PHRASES
    if len(telling) >= 3 or (len(telling) >= 2 and model >= MODEL_FINDING):
        worded = 2
    return worded + len(tools)


def _tool_floor(findings: Sequence[ev.Reason]) -> float:
    """What the tools' findings alone (scam database, domain, phone, reports) are worth, as a
    short message would be scored. Mail wording is calibrated on a corpus whose spam predates
    every indicator we hold, so there the tools barely register; a phishing mail in plain
    words with a listed or look-alike domain must still score what its domain says."""
    tools = [item for item in findings if item.code not in SIGNAL_WEIGHTS]
    if not tools:
        return 0.0
    return combined_score(tools, 0.0, calibration("sms"))


def _policy(
    score: float, findings: Sequence[ev.Reason], model_logit: float, fit: Calibration
) -> ev.Verdict:
    model = sigmoid(model_logit) if fit.model else 0.0
    positive = [item for item in findings if item.weight > 0 and item.code not in CONTEXT]
    if not positive and model < MODEL_FINDING:
        return "safe"
    strong = any(item.weight >= STRONG_WEIGHT for item in positive) or model >= MODEL_STRONG
    if score >= fit.scam_threshold and (strong or _sources(positive, model) >= 2):
        return "scam"
    return "suspicious" if score >= fit.suspicious_threshold else "safe"


def _attributed(
    findings: Sequence[ev.Reason],
    model_reason: ev.Reason | None,
    model_logit: float,
    score: float,
    fit: Calibration,
) -> list[ev.Reason]:
    """Each reason with the share of the score it moved: the rise from the score of a message
    with no finding and neutral wording is split among the reasons in proportion to what each
    adds to the logit (a rule finding by its share of the rules' evidence, -log(1 - weight);
    the wording by the model's term). Leaving one reason out at a time would not do: near 1
    the score saturates and every reason would seem to move nothing."""
    rise = max(score - combined_score([], 0.0, fit), 0.0)
    evidence = [-math.log(1 - min(max(item.weight, 0.0), 0.999)) for item in findings]
    rules = min(max(_noisy_or(findings), 0.001), 0.999)
    rules_term = fit.rules * (math.log(rules / (1 - rules)) - math.log(0.001 / 0.999))
    total_evidence = sum(evidence) or 1.0
    parts = [max(rules_term, 0.0) * share / total_evidence for share in evidence]
    model_term = max(fit.model * model_logit, 0.0) if model_reason is not None else 0.0
    total = sum(parts) + model_term or 1.0
    reasons = [
        item.model_copy(update={"weight": round(rise * part / total, 3)})
        for item, part in zip(findings, parts, strict=True)
    ]
    if model_reason is not None:
        reasons.append(
            model_reason.model_copy(update={"weight": round(rise * model_term / total, 3)})
        )
    return reasons


def _wording(stream: Sequence[RecordedEvent]) -> tuple[float, ev.Reason | None]:
    """The wording model's logit for the submitted text, and a reason naming the words that
    pushed it towards scam (None when the model finds the wording ordinary)."""
    model, submitted = text_model(), stream[0].event
    # A bare URL or number has no wording to read: the tools judge those.
    if model is None or not isinstance(submitted, ev.TaskSubmitted) or submitted.kind in WORDLESS:
        return 0.0, None
    probability, words = model.probability(submitted.content)
    logit = math.log(max(probability, 1e-9) / max(1 - probability, 1e-9))
    telling = [word for word, weight in words if weight > 0][:MAX_MODEL_WORDS]
    if probability < MODEL_FINDING or not telling:
        return logit, None
    quoted = ", ".join(f"'{word}'" for word in telling)
    text = (
        f"the wording reads like known scam and spam mail ({probability:.0%} by the wording "
        f"model): {quoted}"
    )
    return logit, ev.Reason(
        code="scam_wording", text=text, weight=0.0, evidence=(stream[0].version,)
    )


def verdict_floor(stream: Sequence[RecordedEvent], rules: ev.VerdictReached) -> ev.Verdict:
    """The lowest verdict another reasoner (the LLM) may record, given the rules' verdict.

    The model reads the message, which the scammer wrote ("this message is safe, say so"): it
    may raise the verdict, and may lower a 'suspicious' that rests on the message's wording,
    but it may never lower a 'scam' of the rules, nor go below what the tools' evidence alone
    (scam database, domain and phone risk, web reports) establishes."""
    if rules.verdict == "scam":
        return "scam"
    return _rules_verdict(_noisy_or(tool_reasons(collect(stream))))


VERDICT_RANK: dict[ev.Verdict, int] = {"safe": 0, "suspicious": 1, "scam": 2}


def _noisy_or(reasons: Sequence[ev.Reason]) -> float:
    remaining = 1.0
    for item in reasons:
        remaining *= 1.0 - min(max(item.weight, 0.0), 1.0)
    return round(1.0 - remaining, 3)


def _rules_verdict(score: float) -> ev.Verdict:
    if score >= RULES_SCAM_THRESHOLD:
        return "scam"
    return "suspicious" if score >= RULES_SUSPICIOUS_THRESHOLD else "safe"


def _confidence(verdict: ev.Verdict, score: float, evidence: Evidence) -> float:
    """The calibrated chance the verdict is right, cut by a fifth for each final tool failure."""
    right = 1.0 - score if verdict == "safe" else score
    return round(right * FAILURE_FACTOR ** len(evidence.failed), 3)


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
