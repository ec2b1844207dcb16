"""A task pruned while its worker is inside a tool call (cancelled, then `projections prune`):
the worker stops at its next append, once, instead of retrying it as fast as it can until arq's
timeout (1,711 appends in 2 s before)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest

from domain import events as ev
from domain.log import EventMetadata, NewEvent
from infrastructure.event_store import EventStore
from infrastructure.projection_rebuild import prune_finished_tasks
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from workers.analysis import Agent, run_analysis
from workers.task_writer import TaskGone, TaskWriter

pytestmark = pytest.mark.integration

METADATA = EventMetadata(tenant="acme", actor="user:someone")


class CountingLog(TaskLog):
    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self.appends = 0

    async def append(self, *args: Any, **kwargs: Any) -> Any:
        self.appends += 1
        return await super().append(*args, **kwargs)


async def submit(task_log: TaskLog, content: str = "pay now") -> str:
    task_id = f"gone-{uuid.uuid4()}"
    await task_log.append(
        task_id, [NewEvent(ev.TaskSubmitted(content=content, kind="sms"), METADATA)], 0
    )
    return task_id


async def cancel_and_prune(store: EventStore, task_id: str) -> None:
    version = await store.stream_version(task_id)
    await TaskLog(store).append(task_id, [NewEvent(ev.TaskCancelled(), METADATA)], version)
    assert await prune_finished_tasks(store.engine, timedelta(0)) == 1


async def test_an_append_to_a_pruned_task_stops_the_writer_at_once(store: EventStore) -> None:
    task_log = CountingLog(store)
    task_id = await submit(task_log)
    writer = TaskWriter(task_log, await store.read_stream(task_id))
    await cancel_and_prune(store, task_id)
    task_log.appends = 0

    with pytest.raises(TaskGone, match="gone"):
        await asyncio.wait_for(writer.append(ev.ProgressReported(message="m", percent=1)), 5)
    assert task_log.appends == 1


async def test_a_run_whose_task_is_pruned_mid_call_stops_with_one_warning(
    store: EventStore, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    task_log = CountingLog(store)
    content = "URGENT: verify at http://paypa1-login.top/verify or call +1 900 555 0199"
    task_id = await submit(task_log, content)

    class PrunedMeanwhile:
        name, calls = "scam_database", 0

        async def __call__(self, call_input: dict[str, Any]) -> dict[str, Any]:
            self.calls += 1
            if self.calls == 1:
                await cancel_and_prune(store, task_id)
            return {"matches": []}

    tool = PrunedMeanwhile()
    settings = settings.model_copy(update={"tool_concurrency": 1})
    agent = Agent(task_log, {tool.name: tool}, settings)

    with caplog.at_level(logging.WARNING, logger="workers.analysis"):
        assert await asyncio.wait_for(run_analysis(agent, task_id), 10) == "gone"
    assert tool.calls == 1, "no call after the task was gone"
    gone = [r for r in caplog.records if "gone" in r.getMessage()]
    assert len(gone) == 1, [r.getMessage() for r in caplog.records]
    assert await store.read_stream(task_id) == []
