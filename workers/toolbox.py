"""The tools a worker runs, by name, built once at worker startup and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from domain.tools import Tool
from infrastructure.indicators import IndicatorRepository
from infrastructure.llm_reasoner import LlmReasoner
from infrastructure.settings import Settings
from infrastructure.tools.domain_reputation import DomainReputation
from infrastructure.tools.phone_validator import PhoneValidator
from infrastructure.tools.scam_database import ScamDatabase
from infrastructure.tools.web_search import WebSearch, web_search_tool


@dataclass
class Toolbox:
    tools: dict[str, Tool]
    web_search: WebSearch
    reasoner: LlmReasoner | None

    async def aclose(self) -> None:
        await self.web_search.provider.aclose()  # an HTTP client when Exa is configured
        if self.reasoner:
            await self.reasoner.aclose()


def build_toolbox(settings: Settings, engine: AsyncEngine) -> Toolbox:
    web = web_search_tool(settings, engine)
    tools: list[Tool] = [
        ScamDatabase(IndicatorRepository(engine)),
        web,
        DomainReputation(),
        PhoneValidator(),
    ]
    reasoner = None
    if settings.llm_base_url:
        reasoner = LlmReasoner(
            settings.llm_base_url,
            settings.llm_model,
            api_key=settings.llm_api_key,
            timeout_s=settings.llm_timeout_s,
        )
    return Toolbox({tool.name: tool for tool in tools}, web, reasoner)
