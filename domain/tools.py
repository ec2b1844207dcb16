"""The agent's tools: what each step calls, and the contract of each tool's input and output.

Tool adapters live in infrastructure/tools/; the worker runs them; the reasoner reads their
outputs from `ToolCallCompleted.output`. The output shapes below are that contract: change one
only together with `domain.reasoning`.

    scam_database  (step scam_db)
        input:  {"kind": "phone"|"domain"|"email"|"url", "value": str, "tenant": str}
                (the task's tenant: its own indicators are looked up with the global ones)
        output: {"matches": [{"kind", "value", "category", "report_count", "first_seen",
                 "last_seen", "source", "scope": "global"|"tenant",
                 "asserted": {"stream_id", "seq", "tenant", "actor", "at"}}]}
                                                                 # empty list: not known
    web_search     (step exa_search)
        input:  {"query": str, "entities": [{"kind", "value"}, ...]} (the entities the query
                names; a result counts as evidence only if it names one of them)
        output: {"provider": "local"|"exa", "results": [{"title", "url", "snippet",
                 "score": float, "published": str|None}]}
    domain_reputation (step domain_reputation)
        input:  {"domain": str, "url": str|None}
        output: {"domain", "registered_domain", "risk": float 0..1,
                 "signals": [{"code", "detail", "weight": float}]}
    phone_validator (step phone_validator)
        input:  {"value": str (E.164), "claimed_region": str|None}
        output: {"number", "valid": bool, "number_type": str, "region": str|None,
                 "carrier": str|None, "risk": float 0..1,
                 "signals": [{"code", "detail", "weight": float}]}
"""

from __future__ import annotations

from typing import Any, Protocol

from domain.events import Step

TOOL_STEPS: dict[str, Step] = {
    "scam_database": "scam_db",
    "web_search": "exa_search",
    "domain_reputation": "domain_reputation",
    "phone_validator": "phone_validator",
}


class ToolError(Exception):
    """A tool could not answer (unreachable, bad reply). The worker records it and may retry."""


class Tool(Protocol):
    name: str

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]: ...
