"""Threat-feed parsing: every format, normalised values, bad lines skipped with their reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infrastructure.feeds import (
    MAX_LINE_BYTES,
    REPORTED_BAD_LINES,
    FeedError,
    ParsedFeed,
    category_of,
    guess_kind,
    parse_feed,
    read_feed,
)

pytestmark = pytest.mark.unit


def parse(text: str | bytes, feed_format: str, category: str = "phishing") -> ParsedFeed:
    data = text.encode() if isinstance(text, str) else text
    return parse_feed(data.splitlines(keepends=True), feed_format, category=category)


def entries(feed: ParsedFeed) -> list[tuple[str, str, str]]:
    return [(kind, value, category) for (kind, value), category in feed.entries.items()]


def test_domains_skip_comments_and_blanks_and_read_hosts_file_lines() -> None:
    feed = parse(
        "# a blocklist\n\n"
        "Evil-Bank.example\r\n"
        "www.parcel-fee.top  # inline comment\n"
        "0.0.0.0 login.paypa1.com\n"
        "127.0.0.1 localhost\n"
        "0.0.0.0 0.0.0.0\n"
        "0.0.0.0 a.scam.top b.scam.top\n"
        "*.wild.top\n",
        "domains",
    )
    assert [value for _, value, _ in entries(feed)] == [
        "evil-bank.example",
        "parcel-fee.top",
        "login.paypa1.com",
        "a.scam.top",
        "b.scam.top",
        "wild.top",
    ]
    assert {kind for kind, _, _ in entries(feed)} == {"domain"}
    assert feed.bad == 0


def test_bad_domain_lines_are_counted_and_the_first_ones_say_why() -> None:
    feed = parse("good.top\nnot a domain\nlocalhost\n1.2.3.4\nbad..top\n", "domains")
    assert entries(feed) == [("domain", "good.top", "phishing")]
    assert feed.bad == 4
    assert [bad.line for bad in feed.first_bad] == [2, 3, 4, 5]
    assert "one domain" in feed.first_bad[0].reason
    assert "IP address" in feed.first_bad[2].reason


def test_only_the_first_few_bad_lines_are_kept() -> None:
    feed = parse("x\n" * 50, "domains")
    assert feed.bad == 50
    assert len(feed.first_bad) == REPORTED_BAD_LINES


def test_duplicates_are_stored_once_in_their_normal_form() -> None:
    feed = parse("scam.top\nWWW.SCAM.top\nscam.top.\n", "domains")
    assert entries(feed) == [("domain", "scam.top", "phishing")]
    assert feed.duplicates == 2


def test_a_line_too_long_or_not_utf8_is_skipped() -> None:
    long_line = b"a" * (MAX_LINE_BYTES + 1) + b".top\n"
    feed = parse(long_line + b"\xff\xfe.top\nok.top\n", "domains")
    assert entries(feed) == [("domain", "ok.top", "phishing")]
    assert [(b.line, b.reason.split(" (")[0]) for b in feed.first_bad] == [
        (1, f"longer than {MAX_LINE_BYTES} bytes"),
        (2, "not UTF-8"),
    ]


def test_a_byte_order_mark_is_not_part_of_the_first_value() -> None:
    feed = parse("\ufeffscam.top\n", "domains")
    assert entries(feed) == [("domain", "scam.top", "phishing")]


def test_urls_are_stored_as_given_and_only_as_urls() -> None:
    feed = parse(
        "# urls\nhttps://paypa1.com/login?x=1#frag\nftp://files.example/x\nhttp://a b\n", "urls"
    )
    assert entries(feed) == [("url", "https://paypa1.com/login?x=1#frag", "phishing")]
    assert feed.bad == 2


URLHAUS = """\
################################################################
# abuse.ch URLhaus Database Dump (CSV - recent URLs only)      #
# Terms Of Use: https://urlhaus.abuse.ch/api/                  #
################################################################
#
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter
"3001","2024-05-01 10:00:00","http://1.2.3.4:8080/bins/mozi.m","online","","malware_download","32-bit,elf,Mozi","https://urlhaus.abuse.ch/url/3001/","r1"
"3002","2024-05-01 10:01:00","https://evil.example/pay","offline","","","32-bit,Phishing Kit","https://urlhaus.abuse.ch/url/3002/","r2"
"3003","2024-05-01 10:02:00","https://plain.example/","online","","","","https://urlhaus.abuse.ch/url/3003/","r3"
"3004","2024-05-01"
"3005","2024-05-01 10:03:00","not a url","online","","","","",""
"""


def test_urlhaus_csv_takes_the_url_column_by_its_header_and_the_threat_as_category() -> None:
    feed = parse(URLHAUS, "csv")
    assert entries(feed) == [
        ("url", "http://1.2.3.4:8080/bins/mozi.m", "malware_download"),
        ("url", "https://evil.example/pay", "phishing_kit"),  # the first tag that is a word
        ("url", "https://plain.example/", "phishing"),
    ]
    assert [b.line for b in feed.first_bad] == [10, 11]
    assert "no url column" in feed.first_bad[0].reason


def test_an_uncommented_header_in_another_order_is_followed() -> None:
    feed = parse("URL,id\nhttps://a.example/x,1\n", "csv")
    assert entries(feed) == [("url", "https://a.example/x", "phishing")]


def test_a_csv_without_header_takes_the_first_cell_holding_a_url() -> None:
    feed = parse('1,"https://a.example/x",x\nhttps://b.example/\n3,none\n', "csv")
    assert [value for _, value, _ in entries(feed)] == ["https://a.example/x", "https://b.example/"]
    assert feed.first_bad[0].line == 3


def test_json_strings_have_their_kind_guessed() -> None:
    values = ["https://evil.example/x", "scam.top", "Fraud@Scam.top", "+1 (800) 555-0199", 7]
    feed = parse(json.dumps(values), "json", category="tech_support")
    assert entries(feed) == [
        ("url", "https://evil.example/x", "tech_support"),
        ("domain", "scam.top", "tech_support"),
        ("email", "fraud@scam.top", "tech_support"),
        ("phone", "+18005550199", "tech_support"),
    ]
    assert feed.first_bad[0].line == 5


def test_json_objects_name_their_value_kind_and_category() -> None:
    items = [
        {"value": "scam.top", "category": "Toll Road"},
        {"url": "https://evil.example/x"},
        {"domain": "other.top", "category": 3},
        {"value": "+18005550199", "kind": "phone"},
        {"value": "x.top", "kind": "ip"},
        {"name": "nothing"},
    ]
    feed = parse(json.dumps(items), "json")
    assert entries(feed) == [
        ("domain", "scam.top", "toll_road"),
        ("url", "https://evil.example/x", "phishing"),
        ("domain", "other.top", "phishing"),
        ("phone", "+18005550199", "phishing"),
    ]
    assert [b.line for b in feed.first_bad] == [5, 6]
    assert "unknown kind" in feed.first_bad[0].reason


@pytest.mark.parametrize("text", ['{"value": "x.top"}', "[1, 2", "", '"scam.top"'])
def test_json_that_is_not_an_array_is_refused_whole(text: str) -> None:
    with pytest.raises(FeedError):
        parse(text, "json")


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(FeedError, match="unknown format 'txt'"):
        parse("scam.top\n", "txt")


def test_a_missing_file_is_a_feed_error(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="cannot read"):
        read_feed(tmp_path / "absent.txt", "domains", category="phishing")


def test_a_file_over_the_size_bound_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "feed.txt"
    path.write_text("scam.top\n" * 10)
    monkeypatch.setattr("infrastructure.feeds.MAX_FILE_BYTES", 50)
    with pytest.raises(FeedError, match="refused"):
        read_feed(path, "domains", category="phishing")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("Malware Download", "malware_download"), ("32-bit", "phishing"), (None, "phishing")],
)
def test_categories_are_written_as_the_api_writes_them(given: str | None, expected: str) -> None:
    assert category_of(given, "phishing") == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("http://x.top", "url"),
        ("a@b.top", "email"),
        ("+44 20 7946 0958", "phone"),
        ("x.top", "domain"),
        ("1.2.3.4", "domain"),
    ],
)
def test_guessed_kinds(value: str, kind: str) -> None:
    assert guess_kind(value) == kind
