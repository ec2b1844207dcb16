"""Every use case of an api process, built once over its repositories (api/services.py)."""

from __future__ import annotations

from api.application.admin import Admin
from api.application.caller import Caller, check_roles
from api.application.indicators import Indicators
from api.application.tasks import Enqueue, TaskLimits, Tasks
from api.limits import TenantRates
from infrastructure.dashboard_queries import Dashboard
from infrastructure.repositories import Repositories
from infrastructure.settings import Settings


class Application:
    """Every use case of an api process, over its repositories, queue and rate counters."""

    def __init__(
        self, repositories: Repositories, settings: Settings, enqueue: Enqueue, rates: TenantRates
    ) -> None:
        self._repositories = repositories
        limits = TaskLimits(
            max_content_bytes=settings.max_content_bytes,
            max_metadata_bytes=settings.max_metadata_bytes,
            max_reviews_per_task=settings.max_reviews_per_task,
        )
        self.tasks = Tasks(
            repositories.tasks, repositories.task_queries, repositories.timeline, enqueue, rates,
            limits,
        )  # fmt: skip
        self.indicators = Indicators(repositories, rates)
        self.admin = Admin(repositories.projections)

    async def dashboard(self, caller: Caller, days: int) -> Dashboard:
        """The caller's tenant's figures for the last `days` days (analysts)."""
        check_roles(caller, ("analyst",))
        return await self._repositories.dashboard(caller.tenant, days)
