"""The real agent over the labelled corpus: every message goes through `run_analysis` with the
worker's real toolbox (scam database and report search on PostgreSQL, with the seed loaded),
and the verdicts are scored against the labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain import events as ev
from domain.log import EventMetadata, NewEvent
from infrastructure.event_store import EventStore
from infrastructure.seed import load_seed
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from workers.analysis import Agent, run_analysis
from workers.toolbox import build_toolbox

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parent.parent / "data" / "corpus.jsonl"


async def test_the_agent_reaches_the_precision_and_recall_targets(
    store: EventStore, settings: Settings
) -> None:
    await load_seed(store.engine)
    toolbox = build_toolbox(settings, store.engine)
    agent = Agent(TaskLog(store), toolbox.tools, settings)
    metadata = EventMetadata(tenant="corpus", actor="test")
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    misses = []
    try:
        for line in CORPUS.read_text().splitlines():
            sample = json.loads(line)
            submitted = ev.TaskSubmitted(content=sample["content"], kind=sample["kind"])
            await agent.log.append(sample["id"], [NewEvent(submitted, metadata)], 0)
            assert await run_analysis(agent, sample["id"]) == "completed"
            state = await agent.log.task(sample["id"])
            assert state is not None
            said_scam, is_scam = state.verdict == "scam", sample["label"] == "scam"
            counts[("t" if said_scam == is_scam else "f") + ("p" if said_scam else "n")] += 1
            if said_scam != is_scam:
                misses.append(f"{sample['id']}: {state.verdict} (score {state.score:.2f})")
    finally:
        await toolbox.aclose()

    precision = counts["tp"] / max(1, counts["tp"] + counts["fp"])
    recall = counts["tp"] / max(1, counts["tp"] + counts["fn"])
    print(f"\nagent on {sum(counts.values())} messages: {counts}")
    print(f"precision {precision:.3f}, recall {recall:.3f}; misses: {misses}")
    assert precision >= 0.9
    assert recall >= 0.85
