"""Threat feeds: lists of known-bad domains and URLs, imported into the global indicators.

Parsing is pure (`parse_feed` reads raw lines and returns normalised entries and the bad lines);
`read_feed` bounds and reads a file; `import_feed` records the entries in the global indicator
stream, a batch per event (IndicatorsImported), and projects them into scam_indicators. Formats:

- `domains`: one domain a line; hosts-file lines ("0.0.0.0 evil.example") give their names.
- `urls`: one http(s) URL a line, stored as a `url` indicator only. Its host is not added as a
  domain: feeds list URLs on hosts anyone can publish under (shared hosting, file sharing), and
  the host of one bad URL would flag every page there. A URL lookup still matches a domain
  indicator for its host when a domains feed, or an analyst, stored one.
- `csv`: URLhaus-style; `#` lines are comments, and a header row (commented or not) naming a
  `url` column picks it, with `threat` (else the first of `tags`) as the category. Without a
  header, a row's first cell holding "://" is its URL.
- `json`: an array of strings (the kind guessed: URL, e-mail, phone, else domain) or of objects
  with `value` (or `url` / `domain`) and optional `kind` and `category`.

A value belongs to the source that stored it first. Importing a feed again refreshes its own
rows (category, last_seen, imported_at, expires_at) and never adds to report_count; a row held
by another source is left alone (kept) unless it has expired, when the importing feed takes it
over. Rows added by hand or from the seed data (`scamtrail seed`) never expire and are never
touched.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.events import IndicatorsImported
from domain.indicators import GLOBAL_STREAM, system_metadata
from domain.log import NewEvent
from infrastructure.event_store import EventStore
from infrastructure.indicator_log import IndicatorLog
from infrastructure.indicators import INDICATOR_KINDS, IndicatorKind, normalise_indicator

FeedFormat = Literal["domains", "urls", "csv", "json"]
FEED_FORMATS: tuple[FeedFormat, ...] = get_args(FeedFormat)

MAX_FILE_BYTES = 200 * 2**20  # a feed larger than this is refused whole
MAX_LINE_BYTES = 4096  # a longer line (or JSON value) is skipped as bad
MAX_VALUE_CHARS = 2048  # scam_indicators.value's CHECK
MAX_CATEGORY_CHARS = 64  # scam_indicators.category's CHECK
REPORTED_BAD_LINES = 5  # bad lines kept with their reason; the others are only counted
BATCH = 5_000  # entries per IndicatorsImported event, each projected in one statement

CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,63}")  # the api's category pattern
SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}")  # scam_indicators.source

# Names a hosts file maps for the machine itself, not blocked domains.
_HOSTS_BOILERPLATE = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
    }
)
_PHONE = re.compile(r"\+?[\d\s().-]{7,}")
_IP_CHARACTERS = re.compile(r"[0-9A-Fa-f.:%]+")


class FeedError(Exception):
    """The feed as a whole cannot be read: missing, unreadable, too large, not JSON."""


@dataclass(frozen=True)
class BadLine:
    line: int  # 1-based; for the json format, the item's position in the array
    reason: str


@dataclass
class ParsedFeed:
    """Normalised entries, each (kind, value) once, with their category."""

    entries: dict[tuple[IndicatorKind, str], str] = field(default_factory=dict)
    bad: int = 0
    first_bad: list[BadLine] = field(default_factory=list)
    duplicates: int = 0

    def add(self, line: int, kind: str, raw: str, category: str) -> None:
        """Record one entry, or a bad line saying why it is not one."""
        try:
            key = (_kind(kind), _value(kind, raw))
        except ValueError as error:
            self.skip(line, str(error))
            return
        if key in self.entries:
            self.duplicates += 1
        else:
            self.entries[key] = category

    def skip(self, line: int, reason: str) -> None:
        self.bad += 1
        if len(self.first_bad) < REPORTED_BAD_LINES:
            self.first_bad.append(BadLine(line, _shortened(reason)))


def _kind(kind: str) -> IndicatorKind:
    for known in INDICATOR_KINDS:
        if kind == known:
            return known
    raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(INDICATOR_KINDS)}")


def _value(kind: str, raw: str) -> str:
    if kind == "domain" and _is_ip(raw):
        raise ValueError(f"an IP address, not a domain: {raw.strip()!r}")
    value = normalise_indicator(kind, raw)
    if len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"longer than {MAX_VALUE_CHARS} characters")
    return value


def _is_ip(text: str) -> bool:
    address = text.strip().strip("[]")
    if not _IP_CHARACTERS.fullmatch(address):  # most names: no exception raised and caught
        return False
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _shortened(reason: str, limit: int = 160) -> str:
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def category_of(text: str | None, default: str) -> str:
    """A feed's category as the api writes categories (lowercase, `_` between words), or
    `default` when there is none or it makes no such word ("32-bit")."""
    slug = re.sub(r"[^a-z0-9]+", "_", (text or "").strip().lower()).strip("_")
    slug = slug[:MAX_CATEGORY_CHARS].rstrip("_")
    return slug if CATEGORY.fullmatch(slug) else default


def guess_kind(value: str) -> IndicatorKind:
    """The kind of a bare value in a json feed: URL, e-mail address, phone number, else domain."""
    text = value.strip()
    if "://" in text:
        return "url"
    if "@" in text:
        return "email"
    if _PHONE.fullmatch(text) and not _is_ip(text):
        return "phone"
    return "domain"


def parse_feed(lines: Iterable[bytes], feed_format: str, *, category: str) -> ParsedFeed:
    """The entries of a feed given as raw lines (as a binary file yields them). `category` is
    that of entries that carry none. FeedError for an unknown format or a json feed that is not
    an array; a bad line is skipped and counted, never an error."""
    feed = ParsedFeed()
    if feed_format == "domains":
        _domains(_texts(lines, feed), feed, category)
    elif feed_format == "urls":
        _urls(_texts(lines, feed), feed, category)
    elif feed_format == "csv":
        _csv(_texts(lines, feed), feed, category)
    elif feed_format == "json":
        _json(b"".join(lines), feed, category)
    else:
        raise _unknown_format(feed_format)
    return feed


def _unknown_format(feed_format: str) -> FeedError:
    return FeedError(f"unknown format {feed_format!r}; expected one of {', '.join(FEED_FORMATS)}")


def _texts(lines: Iterable[bytes], feed: ParsedFeed) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of every line that is not blank, comments included; a line
    too long or not UTF-8 is skipped as bad."""
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip(b"\r\n")
        if len(line) > MAX_LINE_BYTES:
            feed.skip(number, f"longer than {MAX_LINE_BYTES} bytes")
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            feed.skip(number, f"not UTF-8 ({error.reason} at byte {error.start})")
            continue
        if number == 1:
            text = text.removeprefix("\ufeff")
        if text := text.strip():
            yield number, text


def _domains(texts: Iterable[tuple[int, str]], feed: ParsedFeed, category: str) -> None:
    for number, text in texts:
        words = text.split("#", 1)[0].split()  # a domain never holds "#"
        if len(words) > 1:
            if not _is_ip(words[0]):
                feed.skip(number, "expected one domain, or an address and its names")
                continue
            # A hosts-file line: its names, less the machine's own and addresses.
            words = [w for w in words[1:] if w.lower() not in _HOSTS_BOILERPLATE and not _is_ip(w)]
        for word in words:
            feed.add(number, "domain", word.removeprefix("*."), category)


def _urls(texts: Iterable[tuple[int, str]], feed: ParsedFeed, category: str) -> None:
    for number, text in texts:
        if text.startswith("#"):
            continue
        if len(text.split()) > 1:
            feed.skip(number, "expected one URL")
            continue
        feed.add(number, "url", text, category)


def _csv(texts: Iterable[tuple[int, str]], feed: ParsedFeed, category: str) -> None:
    columns: dict[str, int] | None = None
    for number, text in texts:
        comment = text.startswith("#")
        cells = _cells(text.lstrip("#") if comment else text)
        names = [cell.strip().lower() for cell in cells]
        if "url" in names:  # the header, commented as URLhaus writes it, or not
            columns = {name: i for i, name in reversed(list(enumerate(names)))}
            continue
        if comment:
            continue
        if not cells:
            feed.skip(number, "not a CSV row")
        elif columns is None:
            url = next((cell.strip() for cell in cells if "://" in cell), None)
            if url is None:
                feed.skip(number, "no URL in the row")
            else:
                feed.add(number, "url", url, category)
        elif columns["url"] >= len(cells):
            feed.skip(number, f"no url column (only {len(cells)} cells)")
        else:
            feed.add(number, "url", cells[columns["url"]], _csv_category(cells, columns, category))


def _cells(text: str) -> list[str]:
    try:
        return next(csv.reader([text]), [])
    except csv.Error:
        return []


def _csv_category(cells: list[str], columns: dict[str, int], default: str) -> str:
    def cell(name: str) -> str:
        i = columns.get(name)
        return cells[i] if i is not None and i < len(cells) else ""

    if threat := category_of(cell("threat"), ""):
        return threat
    for tag in cell("tags").split(","):
        if found := category_of(tag, ""):
            return found
    return default


def _json(data: bytes, feed: ParsedFeed, category: str) -> None:
    try:
        items = json.loads(data)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError
        raise FeedError(f"not JSON: {_shortened(str(error))}") from None
    if not isinstance(items, list):
        raise FeedError(f"expected a JSON array, not {type(items).__name__}")
    for number, item in enumerate(items, 1):
        _json_item(number, item, feed, category)


def _json_item(number: int, item: Any, feed: ParsedFeed, category: str) -> None:
    kind: Any = None
    if isinstance(item, dict):
        if "value" in item:
            value = item["value"]
        elif "url" in item:
            value, kind = item["url"], "url"
        elif "domain" in item:
            value, kind = item["domain"], "domain"
        else:
            feed.skip(number, "an object without value, url or domain")
            return
        kind = item.get("kind", kind)
        given = item.get("category")
        category = category_of(given, category) if isinstance(given, str) else category
    else:
        value = item
    if not isinstance(value, str):
        feed.skip(number, f"expected a string or an object, not {type(value).__name__}")
    elif len(value.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
        feed.skip(number, f"longer than {MAX_LINE_BYTES} bytes")
    elif kind is not None and not isinstance(kind, str):
        feed.skip(number, f"kind is not a string: {kind!r}")
    else:
        feed.add(number, kind or guess_kind(value), value, category)


def read_feed(path: Path, feed_format: str, *, category: str) -> ParsedFeed:
    """parse_feed on a file; FeedError if it is missing, unreadable or over MAX_FILE_BYTES."""
    if feed_format not in FEED_FORMATS:
        raise _unknown_format(feed_format)
    try:
        with path.open("rb") as file:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise FeedError(
                    f"{path} is {size / 2**20:.0f} MB; feeds over {MAX_FILE_BYTES // 2**20} MB"
                    " are refused (split it)"
                )
            return parse_feed(file, feed_format, category=category)
    except OSError as error:
        raise FeedError(f"cannot read {path}: {error.strerror or error}") from None


@dataclass(frozen=True)
class ImportCounts:
    added: int  # new rows
    refreshed: int  # this source's rows (or expired ones) stamped with this import
    kept: int  # held by another source and not expired: left alone
    imported_at: datetime
    expires_at: datetime | None


async def import_feed(
    engine: AsyncEngine,
    feed: ParsedFeed,
    *,
    source: str,
    expire_after: timedelta | None = None,
    actor: str = "cli",
) -> ImportCounts:
    """Record the feed's entries in the global indicator stream as `source`'s, as one
    IndicatorsImported event per BATCH entries, and project them, in one transaction: all or
    nothing. The import time is the database's clock, the one lookups compare expiries with.
    `actor` is who ran the import (the command passes the user's name)."""
    if not SOURCE.fullmatch(source):
        raise ValueError(f"a source is 1-100 letters, digits or ._:/@+- ; not {source!r}")
    entries = [(kind, value, category) for (kind, value), category in feed.entries.items()]
    metadata = system_metadata(actor)
    log = IndicatorLog(EventStore(engine))
    async with log.store.transaction() as conn:
        now: datetime = (await conn.execute(sa.text("SELECT now()"))).scalar_one()
        expires = now + expire_after if expire_after is not None else None
        events = [
            NewEvent(
                # Built without validation: every entry was normalised by parse_feed already,
                # and validating a tuple per entry would cost more than the rest of the import.
                IndicatorsImported.model_construct(
                    source=source,
                    imported_at=now,
                    expires_at=expires,
                    entries=tuple(entries[start : start + BATCH]),
                ),
                metadata,
            )
            for start in range(0, len(entries), BATCH)
        ]
        done = await log.record_in(conn, GLOBAL_STREAM, events) if events else None
    added = done.added if done else 0
    refreshed = done.refreshed if done else 0
    return ImportCounts(added, refreshed, len(entries) - added - refreshed, now, expires)
