"""The Exa provider against a real local HTTP server that answers like Exa's POST /search."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.storable import unstorable
from domain.tools import ToolError
from infrastructure.settings import Settings
from infrastructure.tools.web_search import (
    ExaSearch,
    LocalReportSearch,
    web_search_provider,
    web_search_tool,
)
from tests.scripted_http import ScriptedServer, scripted_server

pytestmark = pytest.mark.integration

API_KEY = "test-key-123"
EXA_REPLY = {
    "requestId": "abc",
    "results": [
        {
            "id": "https://news.example/toll-smishing",
            "title": "FBI warns of toll road smishing",
            "url": "https://news.example/toll-smishing",
            "publishedDate": "2025-04-14T00:00:00.000Z",
            "score": 0.42,
            "text": "Texts claim an unpaid toll balance and link to look-alike payment sites.",
        },
        {
            "id": "https://blog.example/ezpass",
            "title": None,
            "url": "https://blog.example/ezpass",
            "highlights": ["E-ZPass never texts a payment link.", "Delete the message."],
        },
    ],
}


@pytest.fixture(scope="module")
def exa_server() -> Iterator[ScriptedServer]:
    with scripted_server() as server:
        yield server


@pytest.fixture
async def exa(exa_server: ScriptedServer) -> AsyncIterator[ExaSearch]:
    exa_server.requests.clear()
    provider = ExaSearch(API_KEY, base_url=exa_server.base_url, timeout=0.5, max_characters=300)
    yield provider
    await provider.aclose()


async def test_results_are_mapped_to_the_contract_and_the_key_is_sent(
    exa_server: ScriptedServer, settings: Settings, engine: AsyncEngine
) -> None:
    exa_server.requests.clear()
    exa_server.answer(200, EXA_REPLY)
    configured = settings.model_copy(
        update={"exa_api_key": API_KEY, "exa_base_url": exa_server.base_url}
    )
    tool = web_search_tool(configured, engine)
    try:
        answer = await tool(
            {
                "query": "toll road unpaid balance",
                "entities": [{"kind": "domain", "value": "ezpass-toll.top"}],
            }
        )
    finally:
        await tool.provider.aclose()

    assert answer == {
        "provider": "exa",
        "results": [
            {
                "title": "FBI warns of toll road smishing",
                "url": "https://news.example/toll-smishing",
                "snippet": "Texts claim an unpaid toll balance and link to look-alike payment "
                "sites.",
                "score": 0.42,
                "published": "2025-04-14T00:00:00.000Z",
            },
            {
                "title": "https://blog.example/ezpass",
                "url": "https://blog.example/ezpass",
                "snippet": "E-ZPass never texts a payment link. … Delete the message.",
                "score": 0.0,
                "published": None,
            },
        ],
    }
    (request,) = exa_server.requests
    assert request["path"] == "/search"
    assert request["api_key"] == API_KEY
    assert request["json"] == {
        "query": "toll road unpaid balance",
        "numResults": configured.web_search_results,
        "contents": {"text": {"maxCharacters": 500}},
    }


async def test_without_a_key_the_local_reports_are_searched(
    settings: Settings, engine: AsyncEngine
) -> None:
    assert isinstance(web_search_provider(settings.model_copy(update={"exa_api_key": None}),
                                          engine), LocalReportSearch)  # fmt: skip


async def test_a_server_error_is_a_tool_error(exa: ExaSearch, exa_server: ScriptedServer) -> None:
    exa_server.answer(500, {"error": "internal"})
    with pytest.raises(ToolError, match="HTTP 500"):
        await exa.search("toll", 5)


async def test_a_rejected_key_says_so(exa: ExaSearch, exa_server: ScriptedServer) -> None:
    exa_server.answer(401, {"error": "invalid api key"})
    with pytest.raises(ToolError, match="API key"):
        await exa.search("toll", 5)


async def test_a_slow_answer_times_out_as_a_tool_error(
    exa: ExaSearch, exa_server: ScriptedServer
) -> None:
    exa_server.answer(200, EXA_REPLY, delay=2.0)
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"timed out after 0\.5 s"):
        await exa.search("toll", 5)
    assert time.monotonic() - started < 1.5


async def test_malformed_json_is_a_tool_error(exa: ExaSearch, exa_server: ScriptedServer) -> None:
    exa_server.answer(200, b'{"results": [ this is not json')
    with pytest.raises(ToolError, match="malformed JSON"):
        await exa.search("toll", 5)


async def test_a_reply_without_results_is_a_tool_error(
    exa: ExaSearch, exa_server: ScriptedServer
) -> None:
    exa_server.answer(200, {"results": [{"title": "no url"}]})
    with pytest.raises(ToolError, match="without a list of results"):
        await exa.search("toll", 5)


async def test_what_the_log_cannot_store_is_cleaned_out_of_the_results(
    exa: ExaSearch, exa_server: ScriptedServer
) -> None:
    # Python's json, like Exa's pages, accepts what PostgreSQL's jsonb refuses.
    huge = "1" + "0" * 400
    exa_server.answer(
        200,
        b'{"results": ['
        b'{"url": "https://r.example/1", "title": "Scam \\ud83d warning", '
        b'"text": "page \\u0000 text", "score": NaN},'
        b'{"url": "https://r.example/2", "title": 7, "text": "ok", "score": Infinity},'
        b'{"url": "https://r.example/3", "text": "ok", "score": ' + huge.encode() + b"}]}",
    )
    results = await exa.search("toll", 5)

    assert [(r["title"], r["snippet"], r["score"]) for r in results] == [
        ("Scam \ufffd warning", "page \ufffd text", 0.0),
        ("https://r.example/2", "ok", 0.0),
        ("https://r.example/3", "ok", 0.0),
    ]
    assert unstorable({"provider": "exa", "results": results}) is None
