"""Indicator writes for tests: assertions through the indicator log, as the api makes them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from domain.indicators import GLOBAL_STREAM, tenant_stream
from domain.log import EventMetadata
from infrastructure.event_store import EventStore
from infrastructure.indicator_log import IndicatorLog
from infrastructure.indicators import Indicator


async def assert_indicator(
    engine: AsyncEngine,
    kind: str,
    value: str,
    category: str,
    *,
    tenant: str | None = None,
    actor: str = "user:tester",
    report_count: int = 1,
    source: str = "analyst",
    seen_at: datetime | None = None,
) -> Indicator:
    """An assertion in `tenant`'s own set, or (None) a global one made by an admin of `admin`."""
    stream = GLOBAL_STREAM if tenant is None else tenant_stream(tenant)
    metadata = EventMetadata(tenant=tenant or "admin", actor=actor)
    return await IndicatorLog(EventStore(engine)).assert_indicator(
        stream,
        kind,
        value,
        category,
        metadata=metadata,
        report_count=report_count,
        source=source,
        seen_at=seen_at,
    )
