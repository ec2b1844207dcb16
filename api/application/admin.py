"""Admin use cases: recompute projections from the log, and delete old finished tasks. A caller
(an admin over HTTP) acts on its own tenant; an operator (the command line) on every tenant,
and its rebuild replays the indicator streams too."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from api.application.caller import Caller, Operator, check_roles
from api.application.refusals import InvalidRequest
from infrastructure.indicator_projection import IndicatorRebuild
from infrastructure.projection_rebuild import Projections, RebuildReport

_AGE = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_LONGEST = timedelta(days=100 * 365)


def age_from_text(text: str) -> timedelta:
    """'90d', '12h' or '30m'; InvalidRequest (a ValueError) for anything else or longer than
    a century."""
    match = _AGE.match(text.strip())
    if not match:
        raise InvalidRequest(f"{text!r} is not an age like 90d, 12h or 30m")
    try:
        age = timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:  # timedelta ends at 999999999 days
        age = _LONGEST + _LONGEST
    if age > _LONGEST:  # "now - age" must stay a date, for Python and for PostgreSQL
        raise InvalidRequest(f"{text!r} is longer than {_LONGEST.days}d")
    return age


class Admin:
    def __init__(self, projections: Projections) -> None:
        self._projections = projections

    async def rebuild_tenant(self, caller: Caller) -> RebuildReport:
        """The caller's tenant's task rows, recomputed from the log."""
        check_roles(caller, ("admin",))
        return await self._projections.rebuild_tasks(tenant=caller.tenant)

    async def rebuild_all(
        self, _: Operator, *, batch: int, progress: Callable[[int], None] | None = None
    ) -> tuple[RebuildReport, IndicatorRebuild]:
        """Every task row and every known indicator, recomputed from the log."""
        tasks = await self._projections.rebuild_tasks(batch=batch, progress=progress)
        return tasks, await self._projections.rebuild_indicators()

    async def prune(self, who: Caller | Operator, older_than: timedelta) -> int:
        """Delete the tasks that finished longer ago than `older_than`: the caller's tenant's,
        or every tenant's for an operator. How many were deleted."""
        if isinstance(who, Caller):
            check_roles(who, ("admin",))
            return await self._projections.prune(older_than, tenant=who.tenant)
        return await self._projections.prune(older_than)
