"""What a task's stream holds for the reasoner: the extracted entities, the tool outputs that
arrived, the tool calls that failed for good, and the reasons each tool output gives.

Outputs are read per the contract in domain.tools; a field that is missing or malformed is
skipped rather than trusted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from domain import events as ev
from domain.log import RecordedEvent
from domain.search_relevance import PROVIDER_NAMES, naming_results, searched_entities
from domain.task import Analysis, fold
from domain.tools import REMOTE_STEP

MAX_DETAILS = 3
# A remote tool's risk counts at most this much: below STRONG_WEIGHT (domain.reasoning), so a
# remote tool alone makes a message suspicious at most; with another finding it can make a scam.
REMOTE_MAX_WEIGHT = 0.5


@dataclass
class Evidence:
    entities: tuple[ev.Entity, ...] = ()
    extraction_version: int | None = None
    # call_id -> (version, event): the first completion of each call.
    completed: dict[str, tuple[int, ev.ToolCallCompleted]] = field(default_factory=dict)
    # call_id -> (version, event): calls given up (their last word is a failure, no retry).
    failed: dict[str, tuple[int, ev.ToolCallFailed]] = field(default_factory=dict)
    # call_id -> input: what each call was asked (a web search's searched entities).
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)


def collect(stream: Sequence[RecordedEvent]) -> Evidence:
    """The evidence in a task's stream, as its fold (domain.task) reads the events."""
    state = fold(stream)
    return Evidence() if state is None else of_analysis(state.analysis)


def of_analysis(analysis: Analysis) -> Evidence:
    calls = analysis.calls.values()
    completed = [(c.call_id, c.completion) for c in calls if c.completion is not None]
    failed = [(c.call_id, c.failures[-1]) for c in calls if c.outcome == "gave_up"]
    return Evidence(
        entities=analysis.entities or (),
        extraction_version=analysis.extraction_version,
        # In the order they were recorded: reasons of equal weight keep that order.
        completed=dict(sorted(completed, key=lambda item: item[1][0])),
        failed=dict(sorted(failed, key=lambda item: item[1][0])),
        inputs={c.call_id: c.input for c in calls},
    )


def tool_reasons(evidence: Evidence) -> list[ev.Reason]:
    # The same finding from two calls (a URL and its domain both matching one indicator) is one
    # reason citing both events: counting it twice would inflate the score.
    found_by: dict[tuple[str, str], tuple[float, list[int]]] = {}
    for call_id, (version, event) in evidence.completed.items():
        found = _read(event, evidence.inputs.get(call_id, {}))
        if found:
            code, text, weight = found
            found_by.setdefault((code, text), (weight, []))[1].append(version)
    reasons = [
        ev.Reason(code=code, text=text, weight=weight, evidence=tuple(versions))
        for (code, text), (weight, versions) in found_by.items()
    ]
    for version, failure in evidence.failed.values():
        what = "timed out" if failure.timed_out else f"failed ({failure.error})"
        reasons.append(
            ev.Reason(
                code="tool_failed",
                weight=0.0,
                evidence=(version,),
                text=f"{failure.tool} {what} after {failure.attempt} attempt(s) for "
                f"{failure.call_id}; its evidence is missing, so confidence is lower",
            )
        )
    return reasons


Found = tuple[str, str, float] | None


def _read(event: ev.ToolCallCompleted, call_input: dict[str, Any]) -> Found:
    """The finding in one tool output; a web search is read against what it searched for."""
    if event.tool == "web_search":
        return _web_search(event.output, call_input)
    if event.step == REMOTE_STEP:
        return _remote_tool(event.tool, event.output, call_input)
    reader = _READERS.get(event.tool)
    return reader(event.output) if reader else None


def _scam_database(output: dict[str, Any]) -> Found:
    matches = [m for m in output.get("matches") or [] if isinstance(m, dict)]
    if not matches:
        return None
    top = max(matches, key=lambda m: _number(m.get("report_count")))
    count = int(_number(top.get("report_count")))
    times = "once" if count == 1 else f"{count} times"
    # One report is already strong evidence; many reports make it near-certain.
    weight = min(0.95, 0.7 + 0.05 * math.log2(1 + count))
    more = f" (and {len(matches) - 1} more matches)" if len(matches) > 1 else ""
    text = (
        f"{top.get('value')} is reported {times} in the scam database as "
        f"'{top.get('category', 'scam')}'{more}{_asserted_by(top)}"
    )
    return "scam_database_match", text, round(weight, 3)


def _asserted_by(match: dict[str, Any]) -> str:
    """Who put the indicator there, as the match names it (domain.tools): the source, the
    tenant and actor of the event that asserted it, and where that event is in the log."""
    asserted = match.get("asserted")
    if not isinstance(asserted, dict):
        return ""  # a match recorded before matches named their assertion
    scope = "global" if match.get("scope") == "global" else "tenant's own"
    return (
        f"; a {scope} indicator from {match.get('source')}, asserted by"
        f" {asserted.get('actor')} of tenant {asserted.get('tenant')}"
        f" ({asserted.get('stream_id')} seq {asserted.get('seq')})"
    )


def _web_search(output: dict[str, Any], call_input: dict[str, Any]) -> Found:
    """Reports that name a searched entity as a scam; other results (pages that only share the
    query's words) are no evidence. One such report is real evidence; more make it stronger."""
    provider = str(output.get("provider", ""))
    results = [r for r in output.get("results") or [] if isinstance(r, dict)]
    naming = naming_results(
        results, searched_entities(call_input.get("entities")), provider=provider
    )
    if not naming:
        return None
    first, _ = naming[0]
    named = list(dict.fromkeys(s.value for _, found in naming for s in found))
    text = (
        f"{_found_by(provider, len(naming))} {' and '.join(named)} as a scam, e.g. "
        f"'{first.get('title', '')}' ({first.get('url', '')})"
    )
    return "web_reports", text, round(min(0.45, 0.3 + 0.075 * (len(naming) - 1)), 3)


def _found_by(provider: str, count: int) -> str:
    """Who answered and how often, as the reason's subject: "2 local reports name"."""
    if provider == "local":
        noun = "local report"
    else:
        noun = f"{PROVIDER_NAMES.get(provider, 'web search')} result"
    return f"{count} {noun} names" if count == 1 else f"{count} {noun}s name"


def _risk(output: dict[str, Any], subject: str, key: str) -> Found:
    risk = min(max(_number(output.get("risk")), 0.0), 1.0)
    if risk <= 0:
        return None
    signals = [s for s in output.get("signals") or [] if isinstance(s, dict)]
    details = "; ".join(str(s.get("detail", s.get("code", ""))) for s in signals[:MAX_DETAILS])
    return f"{subject}_risk", f"{output.get(key)} looks risky: {details} (risk {risk:.2f})", risk


def _domain_reputation(output: dict[str, Any]) -> Found:
    return _risk(output, "domain", "domain")


def _phone_validator(output: dict[str, Any]) -> Found:
    return _risk(output, "phone", "number")


def _remote_tool(tool: str, output: dict[str, Any], call_input: dict[str, Any]) -> Found:
    """A remote tool's risk for the entity it was asked about (domain.tools), bounded by
    REMOTE_MAX_WEIGHT. Each remote tool's reasons have a code of their own, so two tools that
    agree are two sources."""
    risk = min(max(_number(output.get("risk")), 0.0), 1.0)
    if risk <= 0:
        return None
    signals = [s for s in output.get("signals") or [] if isinstance(s, dict)]
    details = "; ".join(str(s.get("detail") or s.get("code", "")) for s in signals[:MAX_DETAILS])
    text = f"{tool} finds {call_input.get('value')} risky (risk {risk:.2f})"
    if details:
        text += f": {details}"
    return f"remote_{tool}_risk", text, round(min(risk, REMOTE_MAX_WEIGHT), 3)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


_READERS = {
    "scam_database": _scam_database,
    "domain_reputation": _domain_reputation,
    "phone_validator": _phone_validator,
}
