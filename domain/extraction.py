"""Entity extraction: the phones, links, domains, e-mail addresses, amounts and tell-tale phrases
in a submitted message. Pure and deterministic; the worker records the result as EntitiesExtracted.

Work is bounded: only the first `MAX_CONTENT` characters are read, every regex is linear (no
nested quantifiers over the same characters, no pattern re-read from inside a run of digits),
the phone matcher gives up after `MAX_PHONE_TRIES` false candidates, and each kind of entity
is capped. Whatever a message holds, extracting it costs about what ordinary text of the same
length does (tests/unit/test_extraction_adversarial.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import idna
import phonenumbers
import tldextract

from domain.events import Entity, Kind
from domain.signals import text_signals

MAX_CONTENT = 65_536
MAX_PER_KIND = 50
# Number-like fragments that are not phone numbers (and the pieces of them re-read as numbers)
# the phone matcher may reject before it gives up on a message. Each costs up to ~0.1 ms, so
# this bounds a hostile "1,000" * 13000 to tens of ms where the library's own limit (65535)
# allows a second; an ordinary message has a few dozen such fragments.
MAX_PHONE_TRIES = 500

_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.%+-]{1,64}@((?:[^\W_](?:[\w-]{0,61}[^\W_])?\.){1,8}[^\W\d_]{2,63})"
)
# A link with a scheme, or a bare host with a known public suffix (checked afterwards).
_URL = re.compile(
    r"(?<![\w@.-])(?:(?:https?|hxxps?)://)?"
    r"((?:[^\W_](?:[\w-]{0,61}[^\W_])?\.){1,10}[^\W\d_]{2,63}|\d{1,3}(?:\.\d{1,3}){3})"
    r"(?::\d{1,5})?(?:[/?#][^\s<>\"']{0,2000})?",
    re.IGNORECASE,
)
_SCHEME = re.compile(r"^(?:https?|hxxps?)://", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\"»"

_SYMBOLS = {"$": "USD", "£": "GBP", "€": "EUR", "¥": "JPY", "₹": "INR"}
_CODES = "USD|EUR|GBP|CAD|AUD|INR|JPY|CHF|NGN|BTC|ETH|USDT"
_WORDS = {"dollars": "USD", "euros": "EUR", "pounds": "GBP", "bitcoin": "BTC"}
_NUMBER = r"(\d{1,3}(?:,\d{3}){1,4}(?:\.\d{1,8})?|\d{1,12}(?:\.\d{1,8})?)"
_AMOUNTS = (
    re.compile(r"(?:US)?([$£€¥₹])\s?" + _NUMBER),
    re.compile(rf"\b({_CODES})\s?" + _NUMBER + r"\b"),
    # Only from the first digit of a run: tried inside a run, the number would be re-read from
    # every digit of it ("1" * 65536 costs twelve tries at each of 65536 places).
    re.compile(
        r"(?<!\d)" + _NUMBER + rf"\s?({_CODES}|dollars|euros|pounds|bitcoin)\b", re.IGNORECASE
    ),
)


@cache
def _tld_extract() -> tldextract.TLDExtract:
    # The bundled public-suffix snapshot: never fetch the list over the network.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def split_host(host: str) -> tuple[str, str, str]:
    """(subdomain, registered domain, public suffix) of a host; IP literals have no suffix."""
    parts = _tld_extract()(host)
    registered = parts.top_domain_under_public_suffix or host
    return parts.subdomain, registered, parts.suffix


def extract_entities(content: str, kind: Kind, *, default_region: str = "US") -> tuple[Entity, ...]:
    """Every entity in `content`, deduplicated, in first-seen order (signals last)."""
    text = content[:MAX_CONTENT]
    found: dict[tuple[str, str], Entity] = {}

    def add(entity: Entity) -> None:
        found.setdefault((entity.kind, entity.value), entity)

    for entity in _phones(text, kind, default_region):
        add(entity)
    email_spans = []
    for entity, span in _emails(text):
        add(entity)
        add(_domain_entity(entity.value.rsplit("@", 1)[1]))
        email_spans.append(span)
    for url, host in _urls(text, email_spans):
        add(Entity(kind="url", value=url, details={"host": host}))
        add(_domain_entity(host))
    for entity in _amounts(text):
        add(entity)
    entities = tuple(found.values())
    for code, matched, details in text_signals(text, kind, entities):
        add(Entity(kind="signal", value=code, details={"matched": matched, **details}))
    return tuple(found.values())


def _phones(text: str, kind: Kind, region: str) -> Iterator[Entity]:
    if kind == "phone":
        try:
            number = phonenumbers.parse(text.strip()[:64], region)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and phonenumbers.is_possible_number(number):
            yield _phone_entity(number, text.strip()[:64])
    matcher = phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.VALID, max_tries=MAX_PHONE_TRIES
    )
    for count, match in enumerate(matcher):
        if count >= MAX_PER_KIND:
            break
        yield _phone_entity(match.number, match.raw_string)


def _phone_entity(number: phonenumbers.PhoneNumber, raw: str) -> Entity:
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(number)
    return Entity(kind="phone", value=e164, details={"raw": raw, "region": region})


def _emails(text: str) -> Iterator[tuple[Entity, tuple[int, int]]]:
    for count, match in enumerate(_EMAIL.finditer(text)):
        if count >= MAX_PER_KIND:
            break
        yield Entity(kind="email", value=match.group(0).lower()), match.span()


def _urls(text: str, skip: list[tuple[int, int]]) -> Iterator[tuple[str, str]]:
    count = 0
    for match in _URL.finditer(text):
        if count >= MAX_PER_KIND:
            break
        if any(start <= match.start() < end for start, end in skip):
            continue
        raw = match.group(0).rstrip(_TRAILING)
        has_scheme = bool(_SCHEME.match(raw))
        host = match.group(1).lower()
        if not has_scheme and not _is_public_host(host, raw):
            continue
        url = raw if has_scheme else "http://" + raw
        url = re.sub(r"^hxxp", "http", url, flags=re.IGNORECASE)
        count += 1
        yield url, urlsplit(url).hostname or host


def _is_public_host(host: str, raw: str) -> bool:
    """A bare word with dots is a link only if it ends in a real suffix (or is an IP with a path);
    this keeps "e.g." or "v1.2" out."""
    if host[0].isdigit() and host.replace(".", "").isdigit():
        return len(raw) > len(host)
    _, registered, suffix = split_host(host)
    return bool(suffix) and registered != suffix


def _domain_entity(host: str) -> Entity:
    host = host.lower().rstrip(".")
    host = host.removeprefix("www.")
    _, registered, suffix = split_host(host)
    details: dict[str, Any] = {"registered_domain": registered, "suffix": suffix}
    try:
        details["punycode"] = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        details["punycode"] = None
    return Entity(kind="domain", value=host, details=details)


def _amounts(text: str) -> Iterator[Entity]:
    hits: list[tuple[int, float, str]] = []
    for index, pattern in enumerate(_AMOUNTS):
        for match in pattern.finditer(text):
            if len(hits) >= MAX_PER_KIND * 3:
                break
            first, second = match.group(1), match.group(2)
            number, unit = (second, first) if index < 2 else (first, second)
            currency = _SYMBOLS.get(unit) or _WORDS.get(unit.lower()) or unit.upper()
            hits.append((match.start(), float(number.replace(",", "")), currency))
    for _, amount, currency in sorted(hits)[:MAX_PER_KIND]:
        value = f"{amount:.8f}".rstrip("0").rstrip(".") if currency in {"BTC", "ETH"} else None
        value = value or f"{amount:.2f}"
        yield Entity(
            kind="amount",
            value=f"{value} {currency}",
            details={"amount": amount, "currency": currency},
        )
