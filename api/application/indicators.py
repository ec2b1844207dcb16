"""The indicator use cases: analysts assert and retract their tenant's own indicators, admins
the global ones every tenant sees, any caller looks one up among the global ones and its
tenant's; an operator imports a threat feed into the global set. Every write is an event in an
indicator stream (domain.indicators), rate-limited per tenant for callers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from api.application.caller import ROLES, Caller, Forbidden, Operator, check_roles
from api.application.refusals import InvalidRequest, NotFound
from api.limits import TenantRates
from domain.indicators import Scope, stream_of
from domain.log import EventMetadata, RecordedEvent
from domain.storable import check_storable
from infrastructure.feeds import ImportCounts, ParsedFeed
from infrastructure.indicator_log import IndicatorNotAsserted
from infrastructure.indicators import Indicator
from infrastructure.repositories import Repositories

WRITERS = ("analyst", "admin")


@dataclass(frozen=True)
class Assertion:
    kind: str
    value: str  # normalised (domain.indicators via infrastructure.indicators)
    category: str
    report_count: int = 1
    source: str = "analyst"
    scope: Scope = "tenant"


class Indicators:
    def __init__(self, repositories: Repositories, rates: TenantRates | None) -> None:
        """`rates`: None in an operator's process, whose writes no tenant's rate bounds."""
        self._log, self._lookup = repositories.indicator_log, repositories.indicators
        self._repositories, self._rates = repositories, rates

    async def assert_indicator(self, caller: Caller, assertion: Assertion) -> Indicator:
        """Record reports of an indicator in the caller's tenant's set (or, for an admin, the
        global one); the row as it now stands. Another scope's row is never changed."""
        stream_id = await self._writable(caller, assertion.scope)
        try:
            return await self._log.assert_indicator(
                stream_id,
                assertion.kind,
                assertion.value,
                assertion.category,
                metadata=_metadata(caller),
                report_count=assertion.report_count,
                source=assertion.source,
            )
        except ValueError as error:  # not a `kind`
            raise InvalidRequest(str(error)) from None

    async def retract(
        self, caller: Caller, scope: Scope, kind: str, value: str, reason: str = ""
    ) -> RecordedEvent:
        """Withdraw an assertion of the caller's scope: the retraction as the log recorded it.
        `NotFound` if the scope holds none, `InvalidRequest` if `value` is not a `kind`."""
        stream_id = await self._writable(caller, scope)
        try:
            return await self._log.retract(
                stream_id,
                kind,
                check_storable(value),
                metadata=_metadata(caller),
                reason=check_storable(reason),
            )
        except ValueError as error:  # not a `kind`, or text the log cannot hold
            raise InvalidRequest(str(error)) from None
        except IndicatorNotAsserted as missing:
            raise NotFound(f"no {kind} indicator {missing.value!r} in the {scope} set") from None

    async def lookup(self, caller: Caller, kind: str, value: str) -> list[dict[str, Any]]:
        """Known indicators matching `value` among the global ones and the caller's tenant's,
        most specific first, each naming who asserted it."""
        check_roles(caller, tuple(sorted(ROLES)))
        try:
            return await self._lookup.lookup(kind, value, tenant=caller.tenant)
        except ValueError as error:
            raise InvalidRequest(str(error)) from None

    async def import_feed(
        self, operator: Operator, feed: ParsedFeed, *, source: str, expire_after: timedelta | None
    ) -> ImportCounts:
        """A parsed threat feed into the global set as `source`'s (idempotent)."""
        return await self._repositories.import_feed(
            feed, source=source, expire_after=expire_after, actor=operator.actor
        )

    async def _writable(self, caller: Caller, scope: Scope) -> str:
        """The stream the caller writes in `scope`, once its roles allow it and its tenant's
        write rate has room."""
        check_roles(caller, WRITERS)
        needed = "admin" if scope == "global" else "analyst"
        if needed not in caller.roles:
            raise Forbidden(f"{scope} indicators are written by the {needed} role only")
        if self._rates is not None:
            await self._rates.indicator_write(caller.tenant)
        return stream_of(scope, caller.tenant)


def _metadata(caller: Caller) -> EventMetadata:
    return EventMetadata(tenant=caller.tenant, actor=caller.actor)
