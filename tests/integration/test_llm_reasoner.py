"""The optional LLM reasoner against a local server that answers like an OpenAI-compatible
chat-completions endpoint: a valid answer is used; anything else falls back to the rules."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from domain import events as ev
from infrastructure.llm_reasoner import LlmReasoner
from tests.factories import recorded_stream
from tests.scripted_http import ScriptedServer, scripted_server

pytestmark = pytest.mark.integration

STREAM = recorded_stream(
    ev.TaskSubmitted(content="Pay the toll now at ezpass-toll.top", kind="sms"),
    ev.EntitiesExtracted(entities=(ev.Entity(kind="domain", value="ezpass-toll.top"),)),
)


def completion(answer: dict[str, Any] | str) -> dict[str, Any]:
    content = answer if isinstance(answer, str) else json.dumps(answer)
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


GOOD: dict[str, Any] = {
    "verdict": "scam",
    "score": 0.92,
    "confidence": 0.8,
    "reasons": [
        {"code": "toll_lookalike", "text": "ezpass-toll.top is not E-ZPass", "weight": 0.9,
         "evidence": [2]},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def llm_server() -> Iterator[ScriptedServer]:
    with scripted_server() as server:
        yield server


@pytest.fixture
async def llm(llm_server: ScriptedServer) -> AsyncIterator[LlmReasoner]:
    llm_server.requests.clear()
    reasoner = LlmReasoner(llm_server.base_url, "tiny-model", api_key="sk-test", timeout_s=0.5)
    yield reasoner
    await reasoner.aclose()


async def test_a_valid_answer_is_the_verdict(llm: LlmReasoner, llm_server: ScriptedServer) -> None:
    llm_server.answer(200, completion(GOOD))
    verdict = await llm(STREAM)

    assert (verdict.verdict, verdict.score, verdict.reasoner) == ("scam", 0.92, "llm:tiny-model")
    assert verdict.reasons[0].evidence == (2,)
    (request,) = llm_server.requests
    assert request["path"] == "/chat/completions"
    assert request["authorization"] == "Bearer sk-test"
    assert request["json"]["model"] == "tiny-model"
    assert '"seq": 2' in request["json"]["messages"][1]["content"]


@pytest.mark.parametrize(
    ("status", "body", "delay"),
    [
        (500, {"error": "overloaded"}, 0.0),
        (200, completion("this is not json"), 0.0),
        (200, completion({**GOOD, "verdict": "probably"}), 0.0),
        (200, completion({**GOOD, "reasons": [{**GOOD["reasons"][0], "evidence": [99]}]}), 0.0),
        (200, completion({**GOOD, "reasons": []}), 0.0),
        (200, {"unexpected": "shape"}, 0.0),
        (200, completion(GOOD), 2.0),
    ],
    ids=["5xx", "not-json", "bad-verdict", "cites-missing-event", "no-reason", "bad-shape", "slow"],
)
async def test_any_failure_falls_back_to_the_rules(
    llm: LlmReasoner,
    llm_server: ScriptedServer,
    status: int,
    body: dict[str, Any],
    delay: float,
) -> None:
    llm_server.answer(status, body, delay)
    verdict = await llm(STREAM)
    assert verdict.reasoner == "rules"
    assert verdict.reasons and all(set(r.evidence) <= {1, 2} for r in verdict.reasons)
