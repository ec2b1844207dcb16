"""The worker's writer, against an in-memory log that conflicts on every append."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from domain import events as ev
from domain.errors import ConcurrencyConflict
from tests.factories import recorded_stream
from workers.task_writer import TaskGone, TaskWriter

pytestmark = pytest.mark.unit


class ConflictingLog:
    """Every append conflicts; reading shows nothing new; the stream is at `version`."""

    def __init__(self, version: int) -> None:
        self.version, self.appends = version, 0
        self.store = self

    async def append(self, task_id: str, events: Any, expected_version: int, **_: Any) -> Any:
        self.appends += 1
        await asyncio.sleep(0)  # as a real append would: else a writer that loops never yields
        raise ConcurrencyConflict(task_id, expected_version, self.version or None)

    async def read_stream(self, task_id: str, *, after_version: int = 0) -> list[Any]:
        return []

    async def stream_version(self, task_id: str) -> int:
        return self.version


PROGRESS = ev.ProgressReported(message="m", percent=1)


def writer_on(log: ConflictingLog) -> TaskWriter:
    stream = recorded_stream(ev.TaskSubmitted(content="x", kind="sms"), stream_id=str(uuid.uuid4()))
    return TaskWriter(log, stream)  # type: ignore[arg-type]


async def test_a_stream_gone_under_the_writer_stops_it_after_one_append() -> None:
    log = ConflictingLog(version=0)
    with pytest.raises(TaskGone):
        await asyncio.wait_for(writer_on(log).append(PROGRESS), 5)
    assert log.appends == 1


async def test_conflicts_that_reading_cannot_explain_are_retried_a_few_times_only() -> None:
    log = ConflictingLog(version=1)
    with pytest.raises(ConcurrencyConflict):
        await asyncio.wait_for(writer_on(log).append(PROGRESS), 5)
    assert log.appends == 5
