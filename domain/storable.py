"""What the log can store: an event's data goes into a PostgreSQL jsonb column, which refuses
some values Python's json module accepts. A value from outside (a tool's output, a model's
answer) is checked before it becomes an event, so a bad value is a failure of that one step
instead of an append that fails for the whole analysis.

Refused: U+0000 and lone surrogates (U+D800-U+DFFF), which PostgreSQL text and jsonb reject and
UTF-8 cannot encode; NaN and infinite numbers, which JSON has no spelling for; nesting deeper
than `MAX_DEPTH`; anything that is not JSON once serialized. Keys are checked as well as values.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic_core import to_jsonable_python

MAX_DEPTH = 32  # of nested lists and objects; tool outputs and verdicts use four or five
# In a Python str, a surrogate is always a lone one: json decodes a valid pair to one character.
_UNSTORABLE_CHARS = re.compile("[\x00\ud800-\udfff]")


def unstorable(value: Any) -> str | None:
    """Why `value` cannot be stored in the log, or None when it can."""
    try:
        # Serialized as the event store will (datetimes become strings, and so on).
        jsonable = to_jsonable_python(value)
    except (ValueError, TypeError, RecursionError) as error:  # too deep, or not JSON at all
        return f"not storable as JSON: {error}"
    return _problem(jsonable, 0)


def check_storable(value: Any) -> Any:
    """`value` itself if the log can store it; else ValueError saying why (a pydantic
    validator can use it as is)."""
    problem = unstorable(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def clean_text(text: str) -> str:
    """`text` with the characters the log cannot store replaced by U+FFFD."""
    return _UNSTORABLE_CHARS.sub("\ufffd", text)


def _problem(value: Any, depth: int) -> str | None:
    if isinstance(value, str):
        if "\x00" in value:
            return "text must not contain the NUL character"
        if _UNSTORABLE_CHARS.search(value):
            return "text must not contain lone surrogates (U+D800-U+DFFF)"
    elif isinstance(value, float):
        if not math.isfinite(value):
            return "numbers must be finite (no NaN or Infinity)"
    elif isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            return f"values must not be nested more than {MAX_DEPTH} deep"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            problem = _problem(key, depth + 1) or _problem(item, depth + 1)
            if problem:
                return problem
    elif value is not None and not isinstance(value, bool | int):
        return f"not a JSON value: {type(value).__name__}"
    return None
