"""A tenant socket remembers a bounded number of tasks, oldest forgotten first, and never the
tasks its URL names (their catch-up reads what was sent to them)."""

from __future__ import annotations

import pytest

from api import streaming

pytestmark = pytest.mark.unit


def test_the_oldest_task_is_forgotten_but_never_a_named_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streaming, "TENANT_TASKS_REMEMBERED", 3)
    sent = {"named": 4}
    for task in ("a", "b", "c", "d"):
        streaming._remember(sent, task, 1, keep=["named"])
    assert list(sent) == ["named", "c", "d"]
