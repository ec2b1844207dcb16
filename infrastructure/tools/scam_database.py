"""The `scam_database` tool: is this phone, domain, e-mail or URL a known scam indicator?"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError

from domain.tools import ToolError
from infrastructure.indicators import INDICATOR_KINDS, IndicatorRepository


class ScamDatabase:
    """Output: {"matches": [{kind, value, category, report_count, first_seen, last_seen}]}."""

    name = "scam_database"

    def __init__(self, indicators: IndicatorRepository) -> None:
        self._indicators = indicators

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        kind, value = call_input.get("kind"), call_input.get("value")
        if kind not in INDICATOR_KINDS or not isinstance(value, str):
            raise ToolError(
                f"scam_database takes {{'kind': one of {', '.join(INDICATOR_KINDS)}, "
                f"'value': str}}, got {call_input!r}"
            )
        try:
            matches = await self._indicators.lookup(kind, value)
        except ValueError as error:
            raise ToolError(f"scam_database: {error}") from None
        except (DBAPIError, OSError) as error:
            raise ToolError(
                f"scam_database: the indicator database did not answer: {error}"
            ) from error
        return {"matches": matches}
