"""An optional reasoner that asks an LLM (any OpenAI-compatible chat-completions endpoint).

Its answer must have exactly the structure of `VerdictReached`, and every reason must cite
events of the stream; anything else — a timeout, an HTTP error, malformed JSON, a citation of an
event that does not exist — falls back to the rule-based reasoner, so a task never fails or
carries an unverifiable reason because of the model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import httpx

from domain import events as ev
from domain.log import RecordedEvent
from domain.reasoning import reason as rule_based

log = logging.getLogger(__name__)

_INSTRUCTIONS = (
    "You are a fraud analyst. Given the events of a scam-analysis task (each with its seq), "
    'answer with one JSON object: {"verdict": "scam"|"suspicious"|"safe", "score": '
    '0..1, "confidence": 0..1, "reasons": [{"code": str, "text": str, "weight": 0..1, '
    '"evidence": [seq, ...]}]}. Every reason must cite the seq of the events it rests on.'
)
# Tool outputs can be long; the model needs their gist, not megabytes.
_MAX_EVENT_CHARS = 2000


class LlmReasoner:
    def __init__(self, base_url: str, model: str, *, api_key: str | None, timeout_s: float) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s
        )
        self._model = model

    async def __call__(self, stream: Sequence[RecordedEvent]) -> ev.VerdictReached:
        try:
            return await self._ask(stream)
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as error:
            # ValidationError and JSONDecodeError are ValueErrors.
            log.warning("LLM reasoner failed (%s); using the rule-based reasoner", error)
            return rule_based(stream)

    async def _ask(self, stream: Sequence[RecordedEvent]) -> ev.VerdictReached:
        body = {
            "model": self._model,
            "response_format": {"type": "json_object"},
            "temperature": 0,
            "messages": [
                {"role": "system", "content": _INSTRUCTIONS},
                {"role": "user", "content": json.dumps([_summary(r) for r in stream])},
            ],
        }
        response = await self._client.post("/chat/completions", json=body)
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        answer: dict[str, Any] = json.loads(content)
        verdict = ev.VerdictReached.model_validate({**answer, "reasoner": f"llm:{self._model}"})
        seqs = {r.version for r in stream}
        for item in verdict.reasons:
            if not item.evidence or not set(item.evidence) <= seqs:
                raise ValueError(f"reason {item.code!r} cites events not in the stream")
        if not verdict.reasons:
            raise ValueError("the answer gives no reason")
        return verdict

    async def aclose(self) -> None:
        await self._client.aclose()


def _summary(recorded: RecordedEvent) -> dict[str, Any]:
    data = json.dumps(recorded.event.model_dump(mode="json"))[:_MAX_EVENT_CHARS]
    return {"seq": recorded.version, "type": recorded.type, "data": data}
