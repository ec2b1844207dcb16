"""The `scam_database` tool: is this phone, domain, e-mail or URL a known scam indicator?"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError

from domain.tools import ToolError
from infrastructure.indicators import INDICATOR_KINDS, IndicatorRepository


class ScamDatabase:
    """Input: {"kind", "value", "tenant"}: the tenant whose task asks, whose own indicators are
    looked up with the global ones (without it, the global ones only). Output: {"matches":
    [{kind, value, category, report_count, first_seen, last_seen, source, scope, asserted}]}."""

    name = "scam_database"

    def __init__(self, indicators: IndicatorRepository) -> None:
        self._indicators = indicators

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        kind, value = call_input.get("kind"), call_input.get("value")
        tenant = call_input.get("tenant")
        if (
            kind not in INDICATOR_KINDS
            or not isinstance(value, str)
            or not (tenant is None or isinstance(tenant, str))
        ):
            raise ToolError(
                f"scam_database takes {{'kind': one of {', '.join(INDICATOR_KINDS)}, "
                f"'value': str, 'tenant': str}}, got {call_input!r}"
            )
        try:
            matches = await self._indicators.lookup(kind, value, tenant=tenant)
        except ValueError as error:
            raise ToolError(f"scam_database: {error}") from None
        except (DBAPIError, OSError) as error:
            raise ToolError(
                f"scam_database: the indicator database did not answer: {error}"
            ) from error
        return {"matches": matches}
