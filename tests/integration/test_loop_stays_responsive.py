"""One submitter's hostile message must not stall the event loop that the api, the relay and
the worker share in `scamtrail up`: the analysis reads it off the loop, so a ticker on the loop
keeps ticking while the worker analyses it."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, cast

import pytest

from domain import events as ev
from domain.extraction import MAX_CONTENT
from domain.log import EventMetadata, NewEvent
from domain.tools import Tool
from infrastructure.event_store import EventStore
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from workers.analysis import Agent, run_analysis

pytestmark = pytest.mark.integration

# Number groups the phone matcher rejects one by one: about a second of CPU to extract when
# nothing bounds it, ~0.1 s when bounded; either way too long to spend on the loop.
HOSTILES = [
    ("verify your paypal account " + "12 345 678 901 234 567 890 " * 2500)[:MAX_CONTENT],
    ("$" + "1,000" * 13000)[:MAX_CONTENT],  # once ~1 s in extraction and in the wording model
]
MAX_GAP_S = 0.2


async def answer(call_input: dict[str, Any]) -> dict[str, Any]:
    return {"matches": []}


@pytest.mark.parametrize("hostile", HOSTILES, ids=["spaced-digits", "dollar-thousands"])
async def test_the_loop_keeps_ticking_while_a_hostile_message_is_analysed(
    store: EventStore, settings: Settings, hostile: str
) -> None:
    task_id = f"loop-{uuid.uuid4()}"
    submitted = ev.TaskSubmitted(content=hostile, kind="email")
    metadata = EventMetadata(tenant="acme", actor="test")
    await TaskLog(store).append(task_id, [NewEvent(submitted, metadata)], 0)
    tools = {
        name: cast(Tool, answer) for name in ("scam_database", "web_search", "domain_reputation")
    }
    agent = Agent(TaskLog(store), tools, settings)

    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)  # the ticker is running before the analysis starts
    try:
        status = await run_analysis(agent, task_id)
    finally:
        done.set()
        await ticking

    assert status == "completed"
    stream = await store.read_stream(task_id)
    assert any(isinstance(r.event, ev.EntitiesExtracted) for r in stream)
    assert len(gaps) > 5
    assert max(gaps) < MAX_GAP_S, f"the loop stalled for {max(gaps) * 1000:.0f} ms"
