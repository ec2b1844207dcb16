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

A remote tool (step remote_tool): a tool of a configured MCP server, under the agent tool name
its configuration gives (SCAMTRAIL_MCP_TOOLS; infrastructure/tools/mcp_remote.py calls it). It is
called once for each entity of the kinds it is configured for, as the built-in tools are.
        input:  {"kind": "phone"|"domain"|"email"|"url", "value": str}: the MCP tool's arguments
        output: {"risk": float 0..1, "signals": [{"code": str, "detail": str,
                 "weight": float 0..1}], ...}: the call's structured content, or else the JSON
                 object of its text content; other fields are kept as given (at most
                 MAX_REMOTE_OUTPUT_BYTES in all)
    An answer without that shape fails the call, and is not retried (the same question gets the
    same answer), as a built-in output the log cannot store does. A result with isError, a
    JSON-RPC error, a transport failure or a timeout fails the attempt, and is retried: the
    server did not answer this time. The reasoner weighs a remote tool's risk at most
    REMOTE_MAX_WEIGHT (domain.evidence): alone it never makes a message a scam.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.events import Step

TOOL_STEPS: dict[str, Step] = {
    "scam_database": "scam_db",
    "web_search": "exa_search",
    "domain_reputation": "domain_reputation",
    "phone_validator": "phone_validator",
}
REMOTE_STEP: Step = "remote_tool"
RemoteKind = Literal["phone", "domain", "email", "url"]
REMOTE_KINDS: tuple[RemoteKind, ...] = ("phone", "domain", "email", "url")
MAX_REMOTE_OUTPUT_BYTES = 64 * 1024
MAX_REMOTE_SIGNALS = 20


class ToolError(Exception):
    """A tool could not answer (unreachable, bad reply). The worker records it and may retry."""


class UnusableAnswer(ToolError):
    """A tool answered, but not as its contract says: that call fails, and is not retried (the
    same question would get the same answer)."""


class RemoteTool(BaseModel):
    """What planning knows of a remote tool: its agent tool name and the entity kinds it is
    called for (infrastructure.settings adds where and how to reach it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")
    entities: tuple[RemoteKind, ...] = Field(min_length=1)


class RemoteSignal(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    detail: str = Field(max_length=500)
    weight: float = Field(ge=0, le=1, allow_inf_nan=False)


class RemoteOutput(BaseModel):
    """The contract of a remote tool's output (above); other fields are kept as they are."""

    model_config = ConfigDict(extra="allow")

    risk: float = Field(ge=0, le=1, allow_inf_nan=False)
    signals: list[RemoteSignal] = Field(max_length=MAX_REMOTE_SIGNALS)


def remote_output(answer: Any) -> dict[str, Any]:
    """A remote tool's answer as the log records it, if it meets the contract; else
    UnusableAnswer saying what is wrong."""
    if not isinstance(answer, dict):
        raise UnusableAnswer(f"the answer is not a JSON object but {type(answer).__name__}")
    try:
        text = json.dumps(answer, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise UnusableAnswer(f"the answer is not plain JSON: {error}") from None
    if (size := len(text.encode())) > MAX_REMOTE_OUTPUT_BYTES:
        raise UnusableAnswer(f"the answer is {size} bytes, over {MAX_REMOTE_OUTPUT_BYTES}")
    try:  # strictly, as JSON: "0.5" is not a number, nor true a weight
        RemoteOutput.model_validate_json(text, strict=True)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
            for e in error.errors()[:3]
        )
        raise UnusableAnswer(f"the answer does not meet the contract: {problems}") from None
    return answer


class Tool(Protocol):
    name: str

    async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]: ...
