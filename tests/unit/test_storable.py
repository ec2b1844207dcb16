"""domain.storable: what the log's jsonb column would refuse is found before the append."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.storable import MAX_DEPTH, check_storable, clean_text, unstorable


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"text": "a \x00 b"}, "NUL"),
        ({"text": "a \ud83d b"}, "surrogates"),
        ({"a \udfff": 1}, "surrogates"),  # keys too
        ({"score": float("nan")}, "finite"),
        ([float("-inf")], "finite"),
        (nested(MAX_DEPTH + 1), "nested"),
        (nested(5000), "JSON"),
        ({"x": object()}, "JSON"),
    ],
    ids=[
        "nul", "surrogate", "surrogate-key", "nan", "infinity", "too-deep", "far-too-deep",
        "object",
    ],
)  # fmt: skip
def test_what_the_log_would_refuse_is_named(value: Any, problem: str) -> None:
    found = unstorable(value)
    assert found is not None and problem in found
    with pytest.raises(ValueError, match=problem):
        check_storable(value)


def test_what_the_log_stores_passes() -> None:
    value = {"t": "emoji \U0001f600 ok", "n": [1, 2.5, True, None], "when": datetime.now(UTC)}
    assert unstorable(value) is None
    assert unstorable(nested(MAX_DEPTH - 1)) is None
    assert check_storable(value) is value


def test_clean_text_replaces_only_what_cannot_be_stored() -> None:
    assert clean_text("a\x00b\ud83dc \U0001f600") == "a\ufffdb\ufffdc \U0001f600"
