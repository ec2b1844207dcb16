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
# A money amount: "$4,850.00", "US$ 12,000", "EUR 1500", "980 USD". The number is one run of at
# most 16 digits, commas and dots, never a nested repeat, so a hostile "1,000" * 13000 costs a
# bounded amount of backtracking per position rather than an exponential one.
_NUM = r"\d(?:[\d,.]{0,14}\d)?"
_CUR = r"(?:usd|eur|gbp|cad|aud)"
_AMOUNT = rf"(?:(?:us)?[$£€]\s?{_NUM}|{_CUR}\s?{_NUM}|{_NUM}\s?(?:{_CUR}|dollars|euros|pounds))"
_PCT = r"\d{1,4}(?:\.\d{1,2})? ?%"  # "20%", "2.5 %"

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
        # "send $4,850.00", "transfer £2,400", "pay EUR 1500", "wire 980 USD"; "payment of $45"
        # (a receipt) does not match, the verb must be the whole word.
        r"(?:send|transfer|pay|wire|deposit|remit)(?: me| us)? " + _AMOUNT,
        # Invoice redirection (business e-mail compromise): the payee's account "has changed".
        r"(?:bank|banking|account|payment) (?:details|information) (?:have|has) (?:been )?"
        r"(?:changed|updated)",
        r"(?:changed|updated) (?:our|my) (?:bank|banking) (?:details|information|account)",
        r"(?:pay|send|transfer|remit)" + _W + r"(?:to|into) (?:our|the|my) new (?:bank )?account",
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
        # A caller asking for the code just texted: "read me the code", "what is the code we sent".
        r"read (?:me|us|out|back)" + _W + r"(?:code|otp|passcode|pin)",
        r"what(?:'s| is| was) the (?:\S+ )?code (?:we|i|you) (?:just )?"
        r"(?:sent|texted|received|got)",
        r"(?:connect|link|sync|verify|validate|confirm|restore|unlock|rectify) your (?:\w+ ){0,2}?"
        r"wallets?",
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
        r"claim (?:your|the) (?:free )?(?:prize|reward|gift|winnings|refund|bonus|airdrop|tokens?)",
        r"cash prize",
        r"free (?:iphone|gift|vacation|cruise)",
        r"congratulations[^.!?\n]{0,40}"
        r"(?:won|selected|winner|prize|reward)",
    ),
    "threat_or_penalty": (
        r"(?:will|has been|have been|is|was) (?:be )?(?:suspended|locked|closed|terminated|"
        r"blocked|deactivated|frozen|seized|disabled|restricted|cancell?ed|disconnected|revoked)",
        # Active voice needs an object that is yours, or "we will close the office" would match.
        r"will (?:permanently )?(?:suspend|terminate|close|block|deactivate|freeze|disable|"
        r"restrict|cancel|disconnect) your",
        r"failure to (?:verify|confirm|comply|pay|respond|update)",
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
        # Keeps the victim from checking with the real person ("do not call to confirm").
        r"(?:don'?t|do not|no need to) (?:call|phone|ring)(?: me| us)?(?: \w+)? to "
        r"(?:verify|confirm|check)",
    ),
    "remote_access": (
        r"anydesk",
        r"teamviewer",
        r"ultraviewer",
        r"remote (?:access|desktop)",
    ),
    "investment_lure": (
        # "guaranteed 20% monthly returns", but not a shop's "guaranteed free returns".
        r"guaranteed (?:" + _PCT + r" )?(?:(?:daily|weekly|monthly) )?(?:returns?|profits?|income)",
        r"(?:returns?|profits?|interest|roi) of (?:up to )?" + _PCT + r" (?:daily|weekly|monthly|"
        r"(?:per|a|every|each) (?:day|week|month))",
        _PCT + r" (?:daily|weekly|monthly|per (?:day|week|month)) (?:returns?|profits?|roi|gains?)",
        r"(?:double|triple|\d{1,3} ?(?:x|times)) your (?:money|investment|bitcoin|crypto|deposit)",
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
# Phrases that are a request only when the message also carries a link or domain to do it at:
# "log in to the team meeting" or a bank's "sign in to the app to see your statement" is not.
_LINKED_PHRASES: dict[str, tuple[str, ...]] = {
    "credential_request": (r"(?:log|sign) ?in (?:to|at|here|now|via)",),
}


@cache
def _patterns(linked: bool) -> dict[str, re.Pattern[str]]:
    patterns = {}
    for code, phrases in _PHRASES.items():
        if linked:
            phrases += _LINKED_PHRASES.get(code, ())
        alternatives = "|".join(phrases)
        # Every phrase begins with a word character, so the lookahead only skips, cheaply, the
        # places no phrase could start at: a run of punctuation tries no alternative at all.
        patterns[code] = re.compile(r"(?<!\w)(?=\w)(?:" + alternatives + r")(?!\w)", re.IGNORECASE)
    return patterns


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


@cache
def _brand_finder() -> re.Pattern[str]:
    """The brand mentions as one prefix tree, matching exactly what `_brand_pattern` matches.

    A flat alternation of every mention is tried mention by mention at each word start, which
    costs the number of mentions per word; in the tree a word start that begins no mention fails
    on its first character, so a 64 KB message costs one pass whatever it holds. The longer
    mention still wins: each optional continuation is greedy, so "bank of america" is tried
    before "bank", and the closing lookahead sends it back to a shorter one as the flat
    alternation would."""
    tree: dict[str, Any] = {}
    for brand in BRANDS:
        for mention in brand.mentions:
            node = tree
            for char in mention:
                node = node.setdefault(char, {})
            node[""] = {}
    # The first characters of the mentions, as a set: a place no mention starts at is skipped
    # without trying the tree's branches one by one.
    first = "".join(sorted(re.escape(char) for char in tree))
    return re.compile(rf"(?<![\w.])(?=[{first}]){_tree_regex(tree)}(?![\w@])", re.IGNORECASE)


def _tree_regex(node: dict[str, Any]) -> str:
    branches = [
        re.escape(char) + _tree_regex(child) for char, child in sorted(node.items()) if char
    ]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


def text_signals(
    text: str, kind: Kind, entities: Sequence[Entity]
) -> list[tuple[str, list[str], dict[str, Any]]]:
    """(code, matched phrases, extra details) for every signal found, in a fixed code order."""
    signals: list[tuple[str, list[str], dict[str, Any]]] = []
    linked = any(e.kind in ("url", "domain") for e in entities)
    for code, pattern in _patterns(linked).items():
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
    for found in _brand_finder().finditer(text):
        # The tree finds where a mention is; the flat pattern, tried only there, says which.
        match = pattern.match(text, found.start())
        if match is None:  # the two match the same text, so this never happens
            continue
        mention, brand = groups[str(match.lastgroup)]
        own = registered & brand.domains
        foreign = registered - brand.domains
        if foreign or (requests and not own):
            return "impersonated_brand", [mention], {"brand": brand.name}
    return None
