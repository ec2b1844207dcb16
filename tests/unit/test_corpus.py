"""The whole offline pipeline over the labelled corpus: extraction → planning → tools → verdict.

The scam database and web search need services, so here they answer as they would for an
indicator nobody has reported yet: no matches, no results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.verdicts import calibration
from domain import events as ev
from domain.extraction import extract_entities
from domain.log import RecordedEvent
from domain.planning import PlannedCall, plan_tool_calls
from domain.reasoning import reason
from infrastructure.tools.domain_reputation import assess_domain
from infrastructure.tools.phone_validator import validate_phone
from tests.factories import recorded_stream

pytestmark = pytest.mark.unit

CORPUS = Path(__file__).parent.parent / "data" / "corpus.jsonl"


def offline_output(call: PlannedCall) -> dict[str, Any]:
    if call.tool == "domain_reputation":
        return assess_domain(call.input["domain"], call.input["url"])
    if call.tool == "phone_validator":
        return validate_phone(call.input["value"], call.input["claimed_region"])
    if call.tool == "web_search":
        return {"provider": "local", "results": []}
    return {"matches": []}


def analyse(content: str, kind: ev.Kind) -> tuple[list[RecordedEvent], ev.VerdictReached]:
    entities = extract_entities(content, kind)
    events: list[ev.DomainEvent] = [
        ev.TaskSubmitted(content=content, kind=kind),
        ev.EntitiesExtracted(entities=entities),
    ]
    for call in plan_tool_calls(entities, kind=kind, client_metadata={}):
        events.append(ev.ToolCallStarted(**vars(call)))
        events.append(
            ev.ToolCallCompleted(
                call_id=call.call_id, tool=call.tool, step=call.step, output=offline_output(call)
            )
        )
    stream = recorded_stream(*events, seconds_apart=0)
    return stream, reason(stream)


def test_the_offline_pipeline_separates_scams_from_legitimate_messages() -> None:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    assert len(rows) >= 220
    matrix = {(truth, said): 0 for truth in (True, False) for said in (True, False)}
    misses, labels, scores = [], [], []
    for row in rows:
        stream, verdict = analyse(row["content"], row["kind"])
        versions = {r.version for r in stream}
        for item in verdict.reasons:
            assert item.evidence, f"{row['id']}: reason {item.code} cites nothing"
            assert set(item.evidence) <= versions, f"{row['id']}: {item.code} cites unknown events"
        truth, said = row["label"] == "scam", verdict.verdict == "scam"
        labels.append(truth)
        scores.append(verdict.score)
        matrix[truth, said] += 1
        if truth != said:
            misses.append(f"{row['id']} {verdict.verdict} {verdict.score}: {row['content'][:70]!r}")
    tp, fp, fn, tn = (
        matrix[True, True],
        matrix[False, True],
        matrix[True, False],
        matrix[False, False],
    )
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    print(f"\ncorpus: {len(rows)} messages; precision {precision:.3f}, recall {recall:.3f}")
    print(f"confusion (scam class): TP={tp} FP={fp} FN={fn} TN={tn}")
    print("\n".join(misses))
    assert precision >= 0.95
    assert recall >= 0.9
    # The score is a calibrated probability: of the messages scored p, about p are scams.
    fit = calibration(labels, scores)
    print(f"Brier {fit['brier']}, expected calibration error {fit['ece']}")
    assert fit["brier"] <= 0.05 and fit["ece"] <= 0.1
