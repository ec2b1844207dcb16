"""Which tool calls the agent makes for a task, decided from the extracted entities alone.

Planning is deterministic: the same entities always give the same calls with the same ids, so a
worker that resumes a task after a crash recognises the calls that already completed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.events import Entity, Kind, Step
from domain.tools import REMOTE_STEP, TOOL_STEPS, RemoteTool

MAX_CALLS = 24
# Calls of one remote tool (one per entity of its kinds), planned after the built-in calls and
# outside MAX_CALLS, so that configuring one leaves the built-in plan as it was.
MAX_REMOTE_CALLS = 8
# Per-tool caps keep one noisy message (fifty links) from starving the other tools; together
# they stay within MAX_CALLS.
TOOL_CAPS = {"scam_database": 10, "web_search": 1, "domain_reputation": 7, "phone_validator": 6}
LOOKED_UP = ("phone", "domain", "email", "url")
# Lures worth naming in a search query, most telling first.
SEARCHABLE_LURES = ("prize_or_lottery", "investment_lure", "job_offer_lure")
MAX_QUERY_TERMS = 4


@dataclass(frozen=True)
class PlannedCall:
    call_id: str
    tool: str
    step: Step
    input: dict[str, Any]


def plan_tool_calls(
    entities: Sequence[Entity],
    *,
    kind: Kind,
    client_metadata: Mapping[str, Any],
    tenant: str | None = None,
    remote_tools: Sequence[RemoteTool] = (),
) -> list[PlannedCall]:
    """The calls to make, in step order: scam database, web search, domain reputation, phones,
    then each remote tool in the order configured. `tenant` is the task's: the scam database
    looks up that tenant's own indicators besides the global ones (domain.indicators), and the
    call's input records it; a remote tool is never told the tenant."""
    calls = [
        *_scam_database(entities, tenant),
        *_web_search(entities),
        *_domain_reputation(entities),
        *_phone_validator(entities, client_metadata),
    ]
    remote = [call for tool in remote_tools for call in _remote(tool, entities)]
    return calls[:MAX_CALLS] + remote


def call_id(tool: str, call_input: Mapping[str, Any]) -> str:
    """A call's id, from its tool and input alone: the same question always has the same id
    (what lets a resumed worker recognise a call, and a test count the real invocations).
    Any tool but the built-in ones is a remote tool: `remote_tool:<name>:<kind>:<value>`."""
    if tool not in TOOL_STEPS:
        return f"{REMOTE_STEP}:{tool}:{call_input['kind']}:{call_input['value']}"
    match tool:
        case "scam_database":
            key = f"{call_input['kind']}:{call_input['value']}"
        case "web_search":
            key = hashlib.sha256(str(call_input["query"]).encode()).hexdigest()[:16]
        case "domain_reputation":
            key = str(call_input["domain"])
        case _:
            key = str(call_input["value"])
    return f"{TOOL_STEPS[tool]}:{key}"


def _call(tool: str, call_input: dict[str, Any]) -> PlannedCall:
    return PlannedCall(call_id(tool, call_input), tool, TOOL_STEPS[tool], call_input)


def _remote(tool: RemoteTool, entities: Sequence[Entity]) -> list[PlannedCall]:
    """One call per distinct entity of the tool's kinds, in the order they were found."""
    wanted = [(e.kind, e.value) for e in entities if e.kind in tool.entities]
    return [
        PlannedCall(
            call_id(tool.name, {"kind": kind, "value": value}),
            tool.name,
            REMOTE_STEP,
            {"kind": kind, "value": value},
        )
        for kind, value in list(dict.fromkeys(wanted))[:MAX_REMOTE_CALLS]
    ]


def _scam_database(entities: Sequence[Entity], tenant: str | None) -> list[PlannedCall]:
    # Indicators are looked up most-specific first: a number or an address identifies a
    # campaign better than a URL whose path changes with every message.
    ranked = sorted(
        (e for e in entities if e.kind in LOOKED_UP), key=lambda e: LOOKED_UP.index(e.kind)
    )
    scope = {} if tenant is None else {"tenant": tenant}
    calls = [_call("scam_database", {"kind": e.kind, "value": e.value, **scope}) for e in ranked]
    return calls[: TOOL_CAPS["scam_database"]]


def _web_search(entities: Sequence[Entity]) -> list[PlannedCall]:
    """One search for the sender; the input lists the entities searched for, since a result is
    evidence only if it names one of them (domain.search_relevance)."""
    query = search_query(entities)
    if not query:
        return []
    searched = [{"kind": e.kind, "value": e.value} for e in _searched(entities)]
    return [_call("web_search", {"query": query, "entities": searched})]


def search_query(entities: Sequence[Entity]) -> str:
    """A query built from what identifies the sender best: its numbers and domains, then the
    brand it claims to be and the kind of lure. Empty when there is nothing worth searching."""
    searched = _searched(entities)
    if not searched:
        return ""
    return " ".join([*(e.value for e in searched), *_query_words(entities), "scam"])


def _searched(entities: Sequence[Entity]) -> list[Entity]:
    """The phones, domains and e-mail addresses the search names, as many as leave room in the
    query for the words of `_query_words`."""
    found: list[Entity] = []
    for wanted in ("phone", "domain", "email"):
        found += [
            e for e in entities if e.kind == wanted and e.value not in {f.value for f in found}
        ]
    return found[: MAX_QUERY_TERMS - len(_query_words(entities))]


def _query_words(entities: Sequence[Entity]) -> list[str]:
    """The brand the message claims to be and its most telling lure."""
    signals = {e.value: e for e in entities if e.kind == "signal"}
    brand = signals.get("impersonated_brand")
    words = [str(brand.details["brand"])] if brand and "brand" in brand.details else []
    return words + [code.replace("_", " ") for code in SEARCHABLE_LURES if code in signals][:1]


def _domain_reputation(entities: Sequence[Entity]) -> list[PlannedCall]:
    urls = [e for e in entities if e.kind == "url"]
    calls = []
    for entity in entities:
        if entity.kind != "domain":
            continue
        url = next((u.value for u in urls if _host_of(u) == entity.value), None)
        calls.append(_call("domain_reputation", {"domain": entity.value, "url": url}))
    return calls[: TOOL_CAPS["domain_reputation"]]


def _host_of(url: Entity) -> str:
    return str(url.details.get("host", "")).lower().removeprefix("www.")


def _phone_validator(
    entities: Sequence[Entity], client_metadata: Mapping[str, Any]
) -> list[PlannedCall]:
    region = client_metadata.get("sender_region")
    claimed = region.upper() if isinstance(region, str) and region.strip() else None
    calls = [
        _call("phone_validator", {"value": e.value, "claimed_region": claimed})
        for e in entities
        if e.kind == "phone"
    ]
    return calls[: TOOL_CAPS["phone_validator"]]
