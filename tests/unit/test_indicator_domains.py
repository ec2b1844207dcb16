"""Which parents a domain lookup compares, and where the indicator streams live."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tldextract

from domain import events as ev
from domain.indicators import GLOBAL_STREAM, is_task_stream, stream_of, tenant_stream
from domain.log import EventMetadata, LogCursor, RecordedEvent
from domain.progress import progress_message
from infrastructure.hosting import SEED_DATA
from infrastructure.indicators import domain_candidates
from infrastructure.seed_data.reference import private_suffixes

pytestmark = pytest.mark.unit

# The public suffix list with its PRIVATE section, from tldextract's bundled snapshot only.
PRIVATE_PSL = tldextract.TLDExtract(
    suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True
)


def test_the_hosting_rules_are_the_private_section_of_the_bundled_suffix_list() -> None:
    shipped = (Path(SEED_DATA) / "hosting_suffixes.txt").read_text(encoding="utf-8").split()
    assert shipped == private_suffixes()


@pytest.mark.parametrize(
    ("host", "candidates"),
    [
        ("a.b.evil.co.uk", ["a.b.evil.co.uk", "b.evil.co.uk", "evil.co.uk"]),
        ("someone.github.io", ["someone.github.io"]),
        ("a.evil.github.io", ["a.evil.github.io", "evil.github.io"]),
        ("diary.blogspot.com", ["diary.blogspot.com"]),
        ("x.y.pages.dev", ["x.y.pages.dev", "y.pages.dev"]),
        ("shop.weebly.com", ["shop.weebly.com"]),  # a builder the list lacks (the supplement)
        ("sites.google.com", ["sites.google.com"]),  # owner in the path: never google.com
        ("github.io", ["github.io"]),
        ("login.paypal.com", ["login.paypal.com", "paypal.com"]),
    ],
)
def test_parents_stop_at_the_registered_domain_or_the_user_s_site(
    host: str, candidates: list[str]
) -> None:
    assert domain_candidates(host) == candidates


@pytest.mark.parametrize(
    "host", ["a.someone.github.io", "x.blogspot.com", "me.netlify.app", "a.b.evil.co.uk"]
)
def test_the_last_parent_is_the_registered_domain_of_the_private_suffix_list(host: str) -> None:
    assert domain_candidates(host)[-1] == PRIVATE_PSL(host).top_domain_under_public_suffix


def test_indicator_streams_are_never_tasks() -> None:
    assert stream_of("global", "acme") == GLOBAL_STREAM
    assert stream_of("tenant", "acme") == tenant_stream("acme") == "indicators:tenant:acme"
    assert len(tenant_stream("t" * 200)) <= 200
    assert tenant_stream("t" * 200) != tenant_stream("t" * 199 + "u")
    assert not is_task_stream(GLOBAL_STREAM) and not is_task_stream(tenant_stream("acme"))
    assert is_task_stream(str(uuid.uuid4()))


def test_an_indicator_event_still_makes_a_progress_message() -> None:
    now = datetime.now(UTC)
    recorded = RecordedEvent(
        stream_id=tenant_stream("acme"),
        version=1,
        position=1,
        cursor=LogCursor(1, 1),
        event_id=uuid.uuid4(),
        recorded_at=now,
        metadata=EventMetadata(tenant="acme", actor="user:a"),
        event=ev.IndicatorAsserted(kind="domain", value="evil.top", category="phishing"),
    )
    message = progress_message(recorded)
    assert (message["step"], message["message"]) == (
        "indicators",
        "Indicator asserted: domain evil.top (phishing)",
    )
