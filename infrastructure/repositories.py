"""Every store the use cases read and write, over one PostgreSQL engine that this module opens
and disposes: callers outside `infrastructure/` hold repositories, never the engine.

Modules that query the `events` table itself: `event_store` (appends and reads),
`relay` (its probe), `relay_status` (the lag /metrics reports), `task_queries` (which streams a
caller may follow, review counts), `projection_rebuild` and `indicator_projection` (rebuilds),
`indicator_log` (an indicator stream's version) and `dashboard_queries` (tool and verdict
figures).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.dashboard_queries import Dashboard, dashboard
from infrastructure.database import create_engine
from infrastructure.doorbell import Doorbell
from infrastructure.event_store import EventStore
from infrastructure.feeds import ImportCounts, ParsedFeed, import_feed
from infrastructure.indicator_log import IndicatorLog
from infrastructure.indicators import IndicatorRepository
from infrastructure.mcp_streams import McpStreams
from infrastructure.projection_rebuild import Projections
from infrastructure.relay_status import RelayStatusReader
from infrastructure.schema_probe import SchemaProbe
from infrastructure.seed import SeedCounts, load_seed
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from infrastructure.task_queries import TaskQueries
from infrastructure.timeline import TimelineEntries


class Repositories:
    def __init__(self, engine: AsyncEngine, doorbell: Doorbell | None = None) -> None:
        self._engine = engine
        self.store = EventStore(engine)
        self.tasks = TaskLog(self.store, doorbell)  # rung after each append to a task
        self.task_queries = TaskQueries(engine)
        self.timeline = TimelineEntries(engine)  # the timeline projection's reads
        self.indicator_log = IndicatorLog(self.store)
        self.indicators = IndicatorRepository(engine)
        self.projections = Projections(engine)
        self.relay_status = RelayStatusReader(engine)
        self.schema = SchemaProbe(engine)
        self.mcp_streams = McpStreams(engine)  # resumable MCP streams (api/mcp)

    async def dashboard(self, tenant: str, days: int) -> Dashboard:
        """The tenant's dashboard figures (infrastructure/dashboard_queries.py)."""
        return await dashboard(self._engine, tenant, days)

    async def import_feed(
        self, feed: ParsedFeed, *, source: str, expire_after: timedelta | None, actor: str
    ) -> ImportCounts:
        """A parsed threat feed into the global indicator stream (infrastructure/feeds.py)."""
        return await import_feed(
            self._engine, feed, source=source, expire_after=expire_after, actor=actor
        )

    async def load_seed(self) -> SeedCounts:
        """The seed indicators and reports, added where missing (infrastructure/seed.py)."""
        return await load_seed(self._engine)


@asynccontextmanager
async def open_repositories(
    settings: Settings,
    *,
    application_name: str = "scamtrail",
    pool_size: int | None = None,
    doorbell: Doorbell | None = None,
) -> AsyncIterator[Repositories]:
    """Repositories over a new engine, disposed on leaving. Processes that append to tasks
    while the system runs (the api) pass the log's doorbell; a one-off command need not."""
    engine = create_engine(settings, pool_size=pool_size, application_name=application_name)
    try:
        yield Repositories(engine, doorbell)
    finally:
        await engine.dispose()
