"""Whether a search result names what was searched: the sender's phone number, domain or e-mail
address. Only such a result is evidence about the sender; a page that merely shares the query's
words ("FedEx", "scam") says nothing about this message.

Pure: the reasoner checks every `web_search` result here against the entities the planned call
lists, whatever provider answered, and the local report search asks its index for the forms
`written_forms` gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import phonenumbers

from domain.extraction import split_host

SearchedKind = Literal["phone", "domain", "email"]
SEARCHED_KINDS: tuple[SearchedKind, ...] = get_args(SearchedKind)
PROVIDER_NAMES = {"local": "local reports", "exa": "Exa"}
# Words by which a web page (not our own corpus, which holds only scam reports) reports a scam.
SCAM_WORDS = ("scam", "fraud", "phishing", "smishing", "fake", "spam", "complaint", "warning")

_HOST = re.compile(r"(?<![\w.-])(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.){1,10}[^\W_][\w-]{0,62}")
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]{1,64}@[\w.-]{1,253}\w")


@dataclass(frozen=True)
class Searched:
    """One entity a web search looked for, in the extractor's normal form (E.164, lower-case
    host without `www.`, lower-case address)."""

    kind: SearchedKind
    value: str


def searched_entities(raw: Any) -> list[Searched]:
    """The entities listed in a `web_search` call's input; anything malformed is left out, so a
    call recorded without them names nothing."""
    if not isinstance(raw, list):
        return []
    found = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        kind, value = item.get("kind"), item.get("value")
        if kind in SEARCHED_KINDS and isinstance(value, str) and value.strip():
            value = value.strip().lower()
            found.append(Searched(kind, value.removeprefix("www.") if kind == "domain" else value))
    return found


def naming_results(
    results: Iterable[dict[str, Any]], searched: Sequence[Searched], *, provider: str
) -> list[tuple[dict[str, Any], list[Searched]]]:
    """Each result that reports a searched entity as a scam, with the entities it names. A page
    from the web must use a scam word too (the local reports are all scam reports), and a page
    served from the searched domain itself (the company's own site) reports nothing about it."""
    found = []
    for result in results:
        said = " ".join(str(result.get(key) or "") for key in ("title", "snippet"))
        if provider != "local" and not any(word in said.lower() for word in SCAM_WORDS):
            continue
        text = f"{said} {result.get('url') or ''}"
        named = [s for s in searched if names(text, s) and not _served_from(result, s)]
        if named:
            found.append((result, named))
    return found


def names(text: str, searched: Searched) -> bool:
    """Whether `text` names the entity: the number in any usual format, the domain (or its
    registered domain, or a subdomain of it), the address in any case."""
    if searched.kind == "phone":
        return _names_phone(text, searched.value)
    if searched.kind == "domain":
        return any(_same_site(host, searched.value) for host in _hosts(text))
    return searched.value.lower() in (m.group(0).lower() for m in _EMAIL.finditer(text))


def written_forms(searched: Searched) -> tuple[list[str], list[str]]:
    """(words, parents): how a report may write the entity, lower-case. A report names it if
    one of its words is in `words`, or, for a domain, is a host under one of `parents`."""
    if searched.kind == "phone":
        return _phone_forms(searched.value), []
    if searched.kind == "domain":
        host = searched.value
        registered = split_host(host)[1]
        return list(dict.fromkeys([host, registered])), [host]
    return [searched.value], []


def _phone_forms(value: str) -> list[str]:
    number = _parse(value)
    if number is None:
        return [value]
    e164 = _e164(number)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    forms = [e164, e164[1:], phonenumbers.national_significant_number(number)]
    return list(dict.fromkeys([*forms, re.sub(r"\D", "", national)]))


def _names_phone(text: str, value: str) -> bool:
    number = _parse(value)
    if number is None:
        return False
    e164 = _e164(number)
    region = phonenumbers.region_code_for_number(number)
    matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE)
    return any(_e164(match.number) == e164 for match in matcher)


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse(value: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None


def _hosts(text: str) -> set[str]:
    return {m.group(0).lower().rstrip(".").removeprefix("www.") for m in _HOST.finditer(text)}


def _same_site(host: str, searched: str) -> bool:
    """The host is the searched domain, a subdomain of it, or its registered domain."""
    return host == searched or host.endswith("." + searched) or host == split_host(searched)[1]


def _served_from(result: dict[str, Any], searched: Searched) -> bool:
    if searched.kind != "domain":
        return False
    try:
        host = urlsplit(str(result.get("url") or "")).hostname or ""
    except ValueError:
        return False
    return bool(host) and split_host(host)[1] == split_host(searched.value)[1]
