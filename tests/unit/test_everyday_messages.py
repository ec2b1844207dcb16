"""Everyday legitimate messages that carry entities (a bank's real domain, a company's phone
number, a newsletter's links) come out `safe` through extraction, the offline tools and the
reasoner, as the worker would run them."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.datasets import Item
from benchmarks.verdicts import analyse
from domain.tools import Tool
from infrastructure.tools.domain_reputation import DomainReputation
from infrastructure.tools.phone_validator import PhoneValidator

pytestmark = pytest.mark.unit

EVERYDAY = [
    ("sms", "Chase: your May statement is ready. View it at https://www.chase.com/statements"),
    ("sms", "Delta: your flight DL 405 is on time. Questions? Call us at (800) 221-1212."),
    (
        "email",
        "From: Python Weekly <news@pythonweekly.com>\nSubject: Issue 640\n\nThis week: what's"
        " new in Python 3.13 https://docs.python.org/3/whatsnew/3.13.html and a talk on"
        " asyncio https://www.youtube.com/watch?v=abc123. Unsubscribe at any time.",
    ),
    ("sms", "Your Amazon order has shipped and arrives Thursday: https://www.amazon.com/orders"),
    ("url", "https://github.com/python/cpython"),
]


@pytest.mark.parametrize(("kind", "content"), EVERYDAY)
def test_an_everyday_message_with_entities_is_safe(kind: str, content: str) -> None:
    tools: dict[str, Tool] = {
        "domain_reputation": DomainReputation(),
        "phone_validator": PhoneValidator(),
    }
    verdict = asyncio.run(analyse(Item("everyday", kind, content, False, "test"), tools))
    assert verdict.verdict == "safe", verdict.reasons
    assert verdict.confidence >= 0.7
