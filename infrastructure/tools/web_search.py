"""The `web_search` tool: what has been written about this scam, behind a provider interface.

`LocalReportSearch` (our scam_reports that name the searched phone numbers, domains and e-mail
addresses) needs nothing outside PostgreSQL and is the default; `ExaSearch` asks Exa's search
API the call's query and is used when SCAMTRAIL_EXA_API_KEY is set. Both answer in the
contract's shape (domain.tools): title, url, snippet, score, published. Whichever answered, the
reasoner counts only the results that name a searched entity (domain.search_relevance).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import httpx
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.search_relevance import Searched, searched_entities
from domain.storable import clean_text
from domain.tools import ToolError
from infrastructure.indicators import IndicatorRepository
from infrastructure.settings import Settings

SearchResult = dict[str, Any]  # {"title", "url", "snippet", "score": float, "published": str|None}


class SearchProvider(Protocol):
    name: Literal["local", "exa"]

    async def search(
        self, query: str, limit: int, *, names: Sequence[Searched] = ()
    ) -> list[SearchResult]: ...

    async def aclose(self) -> None: ...


class WebSearch:
    """Input: {"query": str, "entities": [{"kind": "phone"|"domain"|"email", "value": str}]}
    (the entities searched for; optional). Output: {"provider": "local"|"exa", "results":
    [{title, url, snippet, score, published}]}."""

    name = "web_search"

    def __init__(self, provider: SearchProvider, *, max_results: int = 5) -> None:
        self.provider = provider
        self._max_results = max_results

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
        query = call_input.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError(f"web_search takes {{'query': non-empty str}}, got {call_input!r}")
        names = searched_entities(call_input.get("entities"))
        results = await self.provider.search(query.strip(), self._max_results, names=names)
        return {"provider": self.provider.name, "results": results}


class LocalReportSearch:
    """Our scam reports that name one of `names`; without names (a call that lists none), the
    reports holding every word of the query. Never reports sharing only a word or two: every
    one of them says "scam"."""

    name: Literal["local", "exa"] = "local"

    def __init__(self, reports: IndicatorRepository) -> None:
        self._reports = reports

    async def search(
        self, query: str, limit: int, *, names: Sequence[Searched] = ()
    ) -> list[SearchResult]:
        try:
            hits = await self._reports.search_reports(query, limit, names=names)
        except (DBAPIError, OSError) as error:
            raise ToolError(f"local report search: the database did not answer: {error}") from error
        return [
            {
                "title": hit.title,
                "url": hit.url,
                "snippet": hit.snippet,
                "score": hit.score,
                "published": hit.published.isoformat() if hit.published else None,
            }
            for hit in hits
        ]

    async def aclose(self) -> None:
        return None


class ExaSearch:
    name: Literal["local", "exa"] = "exa"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.exa.ai",
        timeout: float = 10.0,
        max_characters: int = 500,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._api_key = api_key
        self._url = base_url.rstrip("/") + "/search"
        self._timeout = timeout
        self._max_characters = max_characters
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)

    async def search(
        self, query: str, limit: int, *, names: Sequence[Searched] = ()
    ) -> list[SearchResult]:
        """Exa's answer to the query; `names` are left to the reasoner's relevance check."""
        body = {
            "query": query,
            "numResults": limit,
            "contents": {"text": {"maxCharacters": self._max_characters}},
        }
        try:
            response = await self._client.post(
                self._url, json=body, headers={"x-api-key": self._api_key}, timeout=self._timeout
            )
        except httpx.TimeoutException as error:
            raise ToolError(f"Exa search timed out after {self._timeout:g} s") from error
        except httpx.HTTPError as error:
            raise ToolError(f"Exa search is unreachable at {self._url}: {error!r}") from error
        if response.status_code in (401, 403):
            raise ToolError(f"Exa refused the API key (HTTP {response.status_code})")
        if response.status_code >= 400:
            raise ToolError(
                f"Exa search failed: HTTP {response.status_code}: {response.text[:200]}"
            )
        try:
            reply = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ToolError(f"Exa search answered with malformed JSON: {error}") from error
        return [self._result(item) for item in _items(reply)]

    def _result(self, item: dict[str, Any]) -> SearchResult:
        """One result in the contract's shape. Exa relays pages' text as it found it: what the
        log cannot store (NUL, lone surrogates) is replaced, and a score that is not a finite
        number counts as 0, so one odd page cannot fail the whole web_search call."""
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            highlights = item.get("highlights") or []
            text = " … ".join(h for h in highlights if isinstance(h, str))
        title = item.get("title")
        score = item.get("score")
        published = item.get("publishedDate")
        return {
            "title": clean_text(title if isinstance(title, str) and title else item["url"]),
            "url": clean_text(item["url"]),
            "snippet": clean_text(text.strip()[: self._max_characters]),
            "score": _finite(score),
            "published": clean_text(published) if isinstance(published, str) else None,
        }

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _items(reply: Any) -> list[dict[str, Any]]:
    results = reply.get("results") if isinstance(reply, dict) else None
    if not isinstance(results, list) or not all(
        isinstance(item, dict) and isinstance(item.get("url"), str) for item in results
    ):
        raise ToolError(f"Exa search answered without a list of results: {str(reply)[:200]}")
    return results


def _finite(score: Any) -> float:
    if isinstance(score, bool) or not isinstance(score, int | float):
        return 0.0
    try:
        number = float(score)
    except OverflowError:  # an int beyond any float
        return 0.0
    return number if math.isfinite(number) else 0.0


def web_search_provider(settings: Settings, engine: AsyncEngine) -> SearchProvider:
    """Exa when an API key is configured, else the local scam reports."""
    if settings.exa_api_key:
        return ExaSearch(
            settings.exa_api_key,
            base_url=settings.exa_base_url,
            timeout=settings.exa_timeout_seconds,
        )
    return LocalReportSearch(IndicatorRepository(engine))


def web_search_tool(settings: Settings, engine: AsyncEngine) -> WebSearch:
    """The `web_search` tool on the configured provider; close it with `tool.provider.aclose()`."""
    return WebSearch(web_search_provider(settings, engine), max_results=settings.web_search_results)
