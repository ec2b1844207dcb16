"""Tell-tale phrases of scams, found in a message's text as signal codes.

Each code lists its phrases as small, linear regexes. A request that the text itself negates
("never share your password") is not a request, so those codes look a few words back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from domain.brands import BRANDS, Brand
from domain.events import Entity, Kind

MAX_MATCHED = 5
_NEGATION = re.compile(
    r"\b(?:not|never|don't|do not|won't|will not|no one)\b[^.!?\n]{0,30}$", re.IGNORECASE
)
_NEGATABLE = frozenset({"payment_request", "credential_request", "gift_card_payment"})
# A brand named next to any of these asks for something the brand would not ask for this way.
_REQUESTS = _NEGATABLE | {"callback_request", "remote_access", "tech_support_alarm"}
_W = r"(?:\s+\S+){0,3}?\s+"  # up to three words in between

_PHRASES: dict[str, tuple[str, ...]] = {
    "urgency": (
        r"urgent(?:ly)?",
        r"immediately",
        r"act now",
        r"right away",
        r"asap",
        r"within \d{1,3} ?(?:hours?|hrs?|minutes?|mins?|days?)",
        r"final (?:notice|warning|reminder)",
        r"last (?:chance|warning|notice)",
        r"expires? (?:today|tonight|soon)",
        r"today only",
        r"limited time",
        r"don'?t delay",
        r"before (?:midnight|it'?s too late)",
        r"time.sensitive",
        r"(?:call|act|respond|pay|do it) now",
    ),
    "payment_request": (
        r"pay(?: now| immediately| the| a| your| us| online|ment required)\b",
        r"(?:redelivery|delivery|customs|shipping|processing|release|clearance|unlock|activation|"
        r"registration|admin|toll) (?:fee|charge|payment)",
        r"you owe",
        r"outstanding (?:balance|"
        r"amount|toll|fee|debt|invoice)",
        r"unpaid (?:toll|invoice|bill|tax|taxes|balance|fee)",
        r"settle" + _W + r"(?:balance|debt|payment|invoice|bill)",
        r"wire (?:transfer|the|money)",
        r"send" + _W + r"(?:money|payment|funds|bitcoin|btc|usdt)",
        r"(?:via|through|by|with) "
        r"(?:zelle|venmo|cash ?app|western union|moneygram|crypto|bitcoin)",
        r"back taxes",
        r"small fee",
        r"fee (?:of \S+ )?(?:is )?(?:required|due|outstanding|pending)",
        r"send (?:me |us )?(?:[$£€]|us\$)\s?\d",
        r"deposit" + _W + r"(?:to|into) (?:this|the|our)",
    ),
    "gift_card_payment": (
        r"(?:buy|purchase|get|send|pay with|pay in|in the form of)" + _W + r"gift ?cards?",
        r"gift ?cards? (?:codes?|numbers?)",
        r"scratch (?:off )?the back",
    ),
    "credential_request": (
        r"(?:verify|confirm|validate|update|unlock|reactivate|restore)\s+your\s+(?:\w+\s+){0,2}?"
        r"(?:account|identity|details|information|info|password|login|credentials|card)",
        r"(?:enter|provide|send|share|give|tell|reply with|confirm|type)"
        + _W
        + r"(?:password|passcode|pin|ssn|social security number|card number|cvv|security "
        r"(?:code|questions?)|login details|bank details|one.time code|otp|verification code|code"
        r"|date of birth|(?:medicare|insurance|routing|national insurance|account) number)",
        r"(?:log|sign) ?in (?:to|at|here|now|via)",
        r"seed phrase",
        r"recovery phrase",
        r"private key",
    ),
    "prize_or_lottery": (
        r"you(?:'ve| have)? (?:won|been selected|been chosen)",
        r"winner",
        r"lottery",
        r"jackpot",
        r"sweepstakes?",
        r"claim (?:your|the) (?:prize|reward|gift|winnings|refund|bonus)",
        r"cash prize",
        r"free (?:iphone|gift|vacation|cruise)",
        r"congratulations[^.!?\n]{0,40}"
        r"(?:won|selected|winner|prize|reward)",
    ),
    "threat_or_penalty": (
        r"(?:will|has been|have been|is|was) (?:be )?(?:suspended|locked|closed|terminated|"
        r"blocked|deactivated|frozen|seized|disabled|restricted|cancell?ed)",
        r"arrest(?:ed)?",
        r"warrant",
        r"legal action",
        r"lawsuit",
        r"penalt(?:y|ies)",
        r"late fees?",
        r"deportation",
        r"police",
        r"court",
        r"prosecut\w+",
        r"criminal",
        r"suspicious (?:activity|login|sign.in)",
        r"unauthori[sz]ed (?:access|login|transaction)",
        r"license (?:will be )?suspen\w+",
        r"account (?:suspen\w+|locked|on hold)",
    ),
    "callback_request": (
        r"if (?:this was(?:n't| not) you|you did(?:n't| not) (?:authori[sz]e|make|request|"
        r"recogni[sz]e) (?:this|it))[,.]? (?:please )?(?:call|contact|click|tap|reply|visit)",
        r"press 1",
        r"call (?:our|the) (?:fraud|security|billing|refund) (?:team|department|line)",
    ),
    "tech_support_alarm": (
        r"(?:is|been|are) (?:infected|hacked|compromised)",
        r"virus(?:es)? (?:detected|found)",
        r"call (?:microsoft|apple|windows|norton|mcafee|amazon) (?:support|technician)",
        r"technician",
    ),
    "new_number_claim": (
        r"(?:this is|here'?s) my new number",
        r"(?:lost|dropped|broke|broken) my phone",
    ),
    "secrecy": (
        r"(?:don'?t|do not) tell (?:anyone|your|the bank|mum|mom|dad|my)",
        r"keep (?:this|it) (?:secret|between|"
        r"confidential)",
        r"(?:don'?t|do not) (?:contact|call) (?:your bank|the bank|anyone)",
    ),
    "remote_access": (
        r"anydesk",
        r"teamviewer",
        r"ultraviewer",
        r"remote (?:access|desktop)",
    ),
    "investment_lure": (
        r"guaranteed (?:returns?|profits?|income)",
        r"double your (?:money|investment|bitcoin)",
        r"\d{2,4} ?% (?:returns?|profit|roi)",
        r"(?:crypto|forex|bitcoin) (?:investment|trading) "
        r"(?:opportunity|platform|mentor)",
        r"risk.free (?:investment|profit|returns?)",
    ),
    "job_offer_lure": (
        r"work(?:ing)? from home",
        r"earn \$?\d[\d,]* ?(?:per|a|/) ?(?:day|hour|week)",
        r"(?:remote|part.time) (?:job|position|role)" + r"[^.!?\n]{0,40}(?:\$|earn|pay)",
        r"no experience (?:needed|required)",
        r"hiring manager",
        r"whatsapp me",
    ),
}


@cache
def _patterns() -> dict[str, re.Pattern[str]]:
    return {
        code: re.compile(r"(?<!\w)(?:" + "|".join(phrases) + r")(?!\w)", re.IGNORECASE)
        for code, phrases in _PHRASES.items()
    }


@cache
def _brand_pattern() -> tuple[re.Pattern[str], dict[str, tuple[str, Brand]]]:
    """One pattern for every brand mention, with one named group per mention.

    A case-insensitive match can differ from the mention by more than ASCII case ("usps" written
    with a long s, "ICLOUD" with a dotted capital I), and such text names the brand all the same,
    so the brand is found by the group that matched, never by looking the matched text up."""
    by_mention = {m: brand for brand in BRANDS for m in brand.mentions}
    ordered = sorted(by_mention, key=len, reverse=True)
    groups = {f"m{index}": (mention, by_mention[mention]) for index, mention in enumerate(ordered)}
    alternatives = "|".join(f"(?P<{name}>{re.escape(m)})" for name, (m, _) in groups.items())
    return re.compile(rf"(?<![\w.])(?:{alternatives})(?![\w@])", re.IGNORECASE), groups


def text_signals(
    text: str, kind: Kind, entities: Sequence[Entity]
) -> list[tuple[str, list[str], dict[str, Any]]]:
    """(code, matched phrases, extra details) for every signal found, in a fixed code order."""
    signals: list[tuple[str, list[str], dict[str, Any]]] = []
    for code, pattern in _patterns().items():
        matched = _matches(pattern, text, negatable=code in _NEGATABLE)
        if matched:
            signals.append((code, matched, {}))
    requests = any(code in _REQUESTS for code, _, _ in signals)
    brand_signal = _impersonation(text, entities, requests=requests)
    if brand_signal:
        signals.append(brand_signal)
    urls = [e.value for e in entities if e.kind == "url"]
    if urls and kind != "url":
        signals.append(("link_in_message", urls[:MAX_MATCHED], {}))
    return signals


def _matches(pattern: re.Pattern[str], text: str, *, negatable: bool) -> list[str]:
    matched: list[str] = []
    for match in pattern.finditer(text):
        if negatable and _NEGATION.search(text, max(0, match.start() - 40), match.start()):
            continue
        phrase = match.group(0).lower()
        if phrase not in matched:
            matched.append(phrase)
            if len(matched) >= MAX_MATCHED:
                break
    return matched


def _impersonation(
    text: str, entities: Sequence[Entity], *, requests: bool
) -> tuple[str, list[str], dict[str, Any]] | None:
    """A named brand is impersonated when the message sends you to a domain that brand does not
    own, or asks for money or credentials without pointing at the brand's own site."""
    pattern, groups = _brand_pattern()
    registered = {
        str(e.details.get("registered_domain", "")) for e in entities if e.kind == "domain"
    }
    for match in pattern.finditer(text):
        mention, brand = groups[str(match.lastgroup)]
        own = registered & brand.domains
        foreign = registered - brand.domains
        if foreign or (requests and not own):
            return "impersonated_brand", [mention], {"brand": brand.name}
    return None
