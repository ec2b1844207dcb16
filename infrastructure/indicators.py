"""Known scam indicators (phones, domains, e-mails, URLs) and the local corpus of scam reports.

Every value is stored and looked up in one normal form (`normalise_indicator`), the form the
entity extractor (domain.extraction) produces, so the unique key (kind, value) answers every
lookup. The tables are in migrations/versions/0002_indicators_and_reports.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import idna
import phonenumbers
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.extraction import split_host
from domain.progress import iso_timestamp

IndicatorKind = Literal["phone", "domain", "email", "url"]
INDICATOR_KINDS: tuple[IndicatorKind, ...] = get_args(IndicatorKind)

MAX_REPORT_COUNT = 2**31 - 1  # report_count is an integer column
_COLUMNS = "id, kind, value, category, report_count, first_seen, last_seen, source"


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
    b.evil.co.uk, evil.co.uk. Never a public suffix (co.uk), which would match everything."""
    registered = split_host(host)[1]
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

    def as_match(self) -> dict[str, Any]:
        """The scam_database tool's match shape (domain.tools)."""
        return {
            "kind": self.kind,
            "value": self.value,
            "category": self.category,
            "report_count": self.report_count,
            "first_seen": iso_timestamp(self.first_seen),
            "last_seen": iso_timestamp(self.last_seen),
        }


@dataclass(frozen=True)
class ReportHit:
    title: str
    url: str
    snippet: str
    score: float
    published: date | None


# Candidates are computed in Python so a lookup is one statement on the (kind, value) index.
_LOOKUP = sa.text(
    f"SELECT {_COLUMNS} FROM scam_indicators"
    " WHERE (kind = :kind AND value = :value) OR (kind = 'domain' AND value = ANY(:domains))"
    " ORDER BY (kind = :kind AND value = :value) DESC, length(value) DESC, report_count DESC"
)

# Re-adding a known indicator is one more report of it: counts add up, the seen window widens,
# and the newest category wins (an analyst's correction). The count stops at the column's
# maximum rather than fail the upsert.
_UPSERT = sa.text(
    "INSERT INTO scam_indicators AS i"
    "  (kind, value, category, report_count, first_seen, last_seen, source)"
    " VALUES (:kind, :value, :category, :count,"
    "         coalesce(:seen, now()), coalesce(:seen, now()), :source)"
    " ON CONFLICT (kind, value) DO UPDATE SET"
    "  report_count = least(CAST(i.report_count AS bigint) + EXCLUDED.report_count, :max_count),"
    "  first_seen = least(i.first_seen, EXCLUDED.first_seen),"
    "  last_seen = greatest(i.last_seen, EXCLUDED.last_seen),"
    "  category = EXCLUDED.category"
    f" RETURNING {_COLUMNS}"
)

# Any one of the query's words: the fallback match, and always what the snippet highlights (a
# body rarely holds every word when the title holds some, and ts_headline then shows only its
# opening words).
_ANY_WORD = (
    "CAST(replace(CAST(plainto_tsquery('english', :query) AS text), ' & ', ' | ') AS tsquery)"
)
# Ranked on the matching ids first, so ts_headline (costly) runs only on the rows returned.
_SEARCH = """
    WITH q AS (SELECT {tsquery} AS q, {any_word} AS any_word),
    top AS (
        SELECT r.id, ts_rank_cd(r.search, q.q, 32) AS score
        FROM scam_reports r, q WHERE r.search @@ q.q
        ORDER BY score DESC, r.published DESC NULLS LAST, r.id LIMIT :limit
    )
    SELECT r.title, r.url, r.published, top.score,
           ts_headline('english', r.body, q.any_word,
                       'MaxFragments=2, MaxWords=30, MinWords=12, StartSel="", StopSel=""')
             AS snippet
    FROM top JOIN scam_reports r USING (id), q
    ORDER BY top.score DESC, r.published DESC NULLS LAST, r.id
"""
# First every word must appear (websearch syntax: quotes, or, -word); if nothing has them all,
# any word may: an agent's query is often a whole message, which no report contains entirely.
_SEARCH_ALL = sa.text(
    _SEARCH.format(tsquery="websearch_to_tsquery('english', :query)", any_word=_ANY_WORD)
)
_SEARCH_ANY = sa.text(_SEARCH.format(tsquery=_ANY_WORD, any_word=_ANY_WORD))


class IndicatorRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def lookup(self, kind: str, value: str) -> list[dict[str, Any]]:
        """Known indicators matching `value`, most specific first. A domain matches itself and
        any parent down to its registered domain; a URL matches itself or its host as a domain.
        ValueError if `value` is not a `kind`."""
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
        params = {"kind": kind, "value": normalised, "domains": domains}
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_LOOKUP, params)).all()
        return [_indicator(row).as_match() for row in rows]

    async def add_indicator(
        self,
        kind: str,
        value: str,
        category: str,
        *,
        report_count: int = 1,
        source: str = "manual",
        seen_at: datetime | None = None,
    ) -> Indicator:
        """Record `report_count` more reports of an indicator (an upsert). ValueError if `value`
        is not a `kind`."""
        if not 0 <= report_count <= MAX_REPORT_COUNT:
            raise ValueError(f"report_count must be from 0 to {MAX_REPORT_COUNT}")
        params = {
            "kind": kind,
            "value": normalise_indicator(kind, value),
            "category": category,
            "count": report_count,
            "seen": seen_at,
            "source": source,
            "max_count": MAX_REPORT_COUNT,
        }
        async with self._engine.begin() as conn:
            row = (await conn.execute(_UPSERT, params)).one()
        return _indicator(row)

    async def search_reports(self, query: str, limit: int = 5) -> list[ReportHit]:
        """Scam reports about `query`, best first (full-text rank, title above body)."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        if not query.strip():
            return []
        params = {"query": query, "limit": limit}
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_SEARCH_ALL, params)).all()
            if not rows:
                rows = (await conn.execute(_SEARCH_ANY, params)).all()
        return [
            ReportHit(row.title, row.url, row.snippet, float(row.score), row.published)
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


def _indicator(row: sa.Row[Any]) -> Indicator:
    return Indicator(**row._mapping)
