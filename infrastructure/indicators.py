"""Known scam indicators (phones, domains, e-mails, URLs) and the local corpus of scam reports.

Every value is stored and looked up in one normal form (`normalise_indicator`), the form the
entity extractor (domain.extraction) produces, so the unique key (kind, value, stream_id)
answers every lookup. Indicators are written as events (infrastructure/indicator_log.py); this
module reads their projection, scoped: a lookup for a tenant sees the global indicators and
that tenant's own (domain.indicators). The tables are in migrations/versions/0002, 0007, 0009.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import idna
import phonenumbers
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.extraction import split_host
from domain.indicators import GLOBAL_STREAM, Scope, scope_of, visible_streams
from domain.progress import iso_timestamp
from domain.search_relevance import Searched, written_forms
from infrastructure import raw_sql
from infrastructure.hosting import owner_site
from infrastructure.indicator_projection import COLUMNS
from infrastructure.indicator_projection import MAX_REPORT_COUNT as MAX_REPORT_COUNT

IndicatorKind = Literal["phone", "domain", "email", "url"]
INDICATOR_KINDS: tuple[IndicatorKind, ...] = get_args(IndicatorKind)


def normalise_indicator(kind: str, value: str, *, region: str = "US") -> str:
    """The stored form of `value`: phone E.164, domain lowercase hostname without a leading
    "www.", e-mail lowercase, URL as given (scheme included). ValueError if it is not one."""
    text = value.strip()
    if not text:
        raise ValueError(f"empty {kind} value")
    _check_text(text)
    if kind == "phone":
        return _phone(text, region)
    if kind == "domain":
        return _domain(text)
    if kind == "email":
        local, at, host = text.lower().rpartition("@")
        if not at or not local or any(c.isspace() for c in local):
            raise ValueError(f"not an e-mail address: {value!r}")
        _domain(host)  # only to check it; the address keeps its own spelling, lowercased
        return f"{local}@{host}"
    if kind == "url":
        _url_host(text)
        return text
    expected = ", ".join(INDICATOR_KINDS)
    raise ValueError(f"unknown indicator kind {kind!r}; expected one of {expected}")


def _check_text(text: str) -> None:
    # PostgreSQL text holds neither U+0000 nor a lone surrogate (UTF-8 cannot encode one).
    if "\x00" in text or any("\ud800" <= c <= "\udfff" for c in text):
        raise ValueError(f"not an indicator: {text!r} holds U+0000 or a lone surrogate")


def _phone(text: str, region: str) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"not a phone number: {text!r} ({error})") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"not a possible phone number: {text!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# An ASCII label as host names really use it: DNS allows "_" (log_in.example.top resolves), so
# the extractor takes it, and a lookup must too; only IDNA2008 forbids it.
_ASCII_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def _domain(text: str) -> str:
    """The stored form of a host name: lowercase Unicode, without "www.". Only non-ASCII and
    punycode (xn--) labels go through IDNA; an ASCII label needs only to be a DNS label."""
    host = _host_text(text)
    try:
        # UTS 46 mapping (fullwidth dots, long s, Kelvin sign); "_" passes (std3 rules off).
        mapped = host if host.isascii() else idna.uts46_remap(host, std3_rules=False)
    except idna.IDNAError as error:
        raise ValueError(f"not a domain name: {text!r} ({error})") from None
    labels = [_label(label, text) for label in mapped.split(".")]
    if len(labels) < 2:
        raise ValueError(f"not a domain name: {text!r} (no top-level domain)")
    if sum(len(ascii_form) + 1 for _, ascii_form in labels) > 254:
        raise ValueError(f"not a domain name: {text!r} (longer than 253 characters)")
    return ".".join(unicode_form for unicode_form, _ in labels)


def _host_text(text: str) -> str:
    host = (urlsplit(text).hostname or "") if "://" in text else text
    return host.lower().rstrip(".").removeprefix("www.")


def _label(label: str, text: str) -> tuple[str, str]:
    """(Unicode form, ASCII form) of one label; ValueError if it is not one."""
    if label.isascii() and not label.startswith("xn--"):
        if not _ASCII_LABEL.fullmatch(label):
            raise ValueError(f"not a domain name: {text!r} (label {label!r})")
        return label, label
    try:
        # Unicode, as domain.extraction writes it; a punycode (xn--) spelling is decoded, so a
        # homoglyph domain matches however it was written.
        ascii_form = idna.alabel(label).decode("ascii")
        return idna.ulabel(ascii_form), ascii_form
    except (idna.IDNAError, UnicodeError) as error:
        raise ValueError(f"not a domain name: {text!r} ({error})") from None


def _url_host(text: str) -> str:
    return _domain(_url_hostname(text))


def _url_hostname(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {text!r}")
    return parts.hostname


def _lookup_domains(host: str) -> list[str]:
    """What a lookup of `host` compares with stored domains: `host` and its parents down to the
    registered domain (domain_candidates), each in normal form. A label IDNA refuses in the
    subdomain (a Cyrillic label with "_") leaves out only the names holding it, so a known
    registered domain is still found. ValueError if not even the registered domain is one."""
    try:
        return domain_candidates(_domain(host))
    except ValueError:
        if not (raw := _host_text(host)):
            raise
    found: list[str] = []
    for candidate in domain_candidates(raw):
        try:
            normal = _domain(candidate)
        except ValueError:
            continue
        if normal not in found:
            found.append(normal)
    if not found:
        _domain(host)  # raises, with the reason
    return found


def domain_candidates(host: str) -> list[str]:
    """`host` and each parent down to its registered domain: a.b.evil.co.uk → a.b.evil.co.uk,
    b.evil.co.uk, evil.co.uk. Never a public suffix (co.uk), which would match everything, nor
    a shared hosting platform (github.io, blogspot.com), under which anyone has a site: a user
    site's parents stop at the user's site (a.evil.github.io → a.evil.github.io,
    evil.github.io)."""
    registered = owner_site(host) or split_host(host)[1]
    if not host.endswith(registered):
        return [host]
    labels = host.split(".")
    depth = registered.count(".") + 1
    return [".".join(labels[i:]) for i in range(len(labels) - depth + 1)]


@dataclass(frozen=True)
class Indicator:
    id: int
    kind: IndicatorKind
    value: str
    category: str
    report_count: int
    first_seen: datetime
    last_seen: datetime
    source: str
    stream_id: str  # its scope: the global stream or one tenant's (domain.indicators)
    # The event that last asserted it, and who made it; None only for rows no event wrote.
    asserted_seq: int | None
    asserted_tenant: str | None
    asserted_by: str | None
    asserted_at: datetime | None

    @property
    def scope(self) -> Scope:
        return scope_of(self.stream_id)

    def attribution(self) -> dict[str, Any]:
        """Who put the indicator there: the stream and seq of the event, its tenant and actor,
        and when it was recorded."""
        return {
            "stream_id": self.stream_id,
            "seq": self.asserted_seq,
            "tenant": self.asserted_tenant,
            "actor": self.asserted_by,
            "at": iso_timestamp(self.asserted_at) if self.asserted_at else None,
        }

    def as_match(self) -> dict[str, Any]:
        """The scam_database tool's match shape (domain.tools)."""
        return {
            "kind": self.kind,
            "value": self.value,
            "category": self.category,
            "report_count": self.report_count,
            "first_seen": iso_timestamp(self.first_seen),
            "last_seen": iso_timestamp(self.last_seen),
            "source": self.source,
            "scope": self.scope,
            "asserted": self.attribution(),
        }


@dataclass(frozen=True)
class ReportHit:
    title: str
    url: str
    snippet: str
    score: float
    published: date | None


# Candidates are computed in Python so a lookup is one statement on the (kind, value,
# stream_id) key, in the streams the caller sees. A feed's indicator whose expiry has passed
# (infrastructure/feeds.py) is no longer a match. The global row comes before a tenant's own
# for the same value.
_LOOKUP = sa.text(
    f"SELECT {COLUMNS} FROM scam_indicators"
    " WHERE ((kind = :kind AND value = :value) OR (kind = 'domain' AND value = ANY(:domains)))"
    "   AND stream_id = ANY(:streams)"
    "   AND (expires_at IS NULL OR expires_at > now())"
    " ORDER BY (kind = :kind AND value = :value) DESC, length(value) DESC,"
    "   (stream_id = :global) DESC, report_count DESC"
)

# Any one of the words: what a snippet highlights (a body rarely holds every word when the title
# holds some, and ts_headline then shows only its opening words). Never a match on its own.
_ANY_WORD = (
    "CAST(replace(CAST(plainto_tsquery('english', :words) AS text), ' & ', ' | ') AS tsquery)"
)
_HEADLINE = (
    "ts_headline('english', r.body, q.any_word,"
    ' \'MaxFragments=2, MaxWords=30, MinWords=12, StartSel="", StopSel=""\')'
)
# Ranked on the matching ids first, so the snippet (ts_headline is costly) is made only for the
# rows returned.
_SEARCH = """
    WITH q AS (SELECT {tsquery} AS q, {any_word} AS any_word),
    top AS (
        SELECT r.id, {rank} AS score
        FROM scam_reports r, q WHERE {document} @@ q.q
        ORDER BY score DESC, r.published DESC NULLS LAST, r.id LIMIT :limit
    )
    SELECT r.title, r.url, r.published, top.score, {snippet} AS snippet
    FROM top JOIN scam_reports r USING (id), q
    ORDER BY top.score DESC, r.published DESC NULLS LAST, r.id
"""
# Every word must appear (websearch syntax: quotes, or, -word).
_SEARCH_WORDS = sa.text(
    _SEARCH.format(
        tsquery="websearch_to_tsquery('english', :query)",
        any_word=_ANY_WORD,
        rank="ts_rank_cd(r.search, q.q, 32)",
        document="r.search",
        snippet=_HEADLINE,
    )
)
# A report's words as exact lexemes, each reversed, are its `names` column (migration 0012 says
# how they are computed): a domain, an address and a phone number (also with its digits joined)
# are one word each, and every subdomain of a domain is one prefix ("pay.x.top" is "pot.x.yap").
# A report names a searched entity if one of its words is a form the entity is written in; a
# short body is its own snippet, so whoever reads the result sees where the report names it.
_SEARCH_NAMES = sa.text(
    _SEARCH.format(
        tsquery="CAST(:names AS tsquery)",
        any_word=_ANY_WORD,
        rank="ts_rank(r.names, q.q)",
        document="r.names",
        snippet=f"CASE WHEN length(r.body) <= :whole_body THEN r.body ELSE {_HEADLINE} END",
    )
)
WHOLE_BODY = 500  # characters: a report body this short is returned whole as the snippet
# The tools' lookups, run through asyncpg itself: one round trip each (infrastructure/raw_sql.py).
_RAW_LOOKUP = raw_sql.RawStatement(_LOOKUP)
_RAW_SEARCH_NAMES = raw_sql.RawStatement(_SEARCH_NAMES)
_RAW_SEARCH_WORDS = raw_sql.RawStatement(_SEARCH_WORDS)


def _names_query(names: Sequence[Searched]) -> tuple[str, str]:
    """(tsquery, words) for the reports naming any of `names`. The index holds each report's
    words reversed, so a domain's subdomains are one prefix: "pay.x.top" is "pot.x.yap"."""
    terms, words = [], []
    for searched in names:
        forms, parents = written_forms(searched)
        terms += [_reversed_lexeme(form) for form in forms]
        terms += [_reversed_lexeme("." + parent) + ":*" for parent in parents]
        words += forms
    return " | ".join(dict.fromkeys(terms)), " ".join(dict.fromkeys(words))


def _reversed_lexeme(word: str) -> str:
    text = word.lower()[::-1].replace("\\", "\\\\").replace("'", "''")
    return f"'{text}'"


class IndicatorRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def lookup(self, kind: str, value: str, *, tenant: str | None) -> list[dict[str, Any]]:
        """Known indicators matching `value` that `tenant` sees (the global ones and its own;
        None: the global ones only), most specific first. A domain matches itself and any
        parent down to its registered domain or, on a shared host, the user's site; a URL
        matches itself or its host as a domain. ValueError if `value` is not a `kind`."""
        text = value.strip()
        _check_text(text)
        domains: list[str] = []
        if kind == "domain":
            domains = _lookup_domains(text)
            normalised = domains[0]
        elif kind == "url":
            normalised = text  # a URL's normal form is the URL as given
            domains = _lookup_domains(_url_hostname(text))
        else:
            normalised = normalise_indicator(kind, text)
        params = {
            "kind": kind,
            "value": normalised,
            "domains": domains,
            "streams": visible_streams(tenant),
            "global": GLOBAL_STREAM,
        }
        rows = await raw_sql.fetch(self._engine, _RAW_LOOKUP.sql, *_RAW_LOOKUP.args(params))
        return [Indicator(**row).as_match() for row in rows]

    async def search_reports(
        self, query: str, limit: int = 5, *, names: Sequence[Searched] = ()
    ) -> list[ReportHit]:
        """Scam reports naming any of `names` (a phone number in any usual format, a domain or a
        subdomain of it, an e-mail address), or without names, holding every word of `query`;
        best first. Never reports that share only some words: "scam" is in all of them."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        if names:
            tsquery, words = _names_query(names)
            statement = _RAW_SEARCH_NAMES
            params = {"names": tsquery, "words": words, "whole_body": WHOLE_BODY}
        elif query.strip():
            statement, params = _RAW_SEARCH_WORDS, {"query": query, "words": query}
        else:
            return []
        args = statement.args({**params, "limit": limit})
        rows = await raw_sql.fetch(self._engine, statement.sql, *args)
        return [
            ReportHit(
                row["title"], row["url"], row["snippet"], float(row["score"]), row["published"]
            )
            for row in rows
        ]

    async def counts(self) -> dict[str, int]:
        """Indicators per kind, their total, and the number of reports."""
        query = sa.text(
            "SELECT kind, count(*) AS n FROM scam_indicators GROUP BY kind"
            " UNION ALL SELECT 'reports', count(*) FROM scam_reports"
        )
        async with self._engine.connect() as conn:
            found = {row.kind: int(row.n) for row in await conn.execute(query)}
        counts: dict[str, int] = {kind: found.get(kind, 0) for kind in INDICATOR_KINDS}
        counts["indicators"] = sum(counts.values())
        counts["reports"] = found.get("reports", 0)
        return counts


def indicator_from_row(row: sa.Row[Any]) -> Indicator:
    return Indicator(**row._mapping)
