"""The worker's writer puts appends that arrive while one is being written (tool calls starting
or ending together) in one transaction, against the in-memory log: each caller gets its own
events back, one refused event fails only its caller, and a cancelled caller's events are never
written."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from domain import events as ev
from domain.log import EventMetadata, NewEvent, RecordedEvent
from domain.task import TaskState
from infrastructure.event_store import AppendResult
from infrastructure.memory_store import InMemoryEventStore, InMemoryTaskLog
from workers.task_writer import TaskWriter

pytestmark = pytest.mark.unit


class CountingLog(InMemoryTaskLog):
    """Counts appends; each takes a moment (as a round trip would); refuses events whose
    message is in `refused`."""

    def __init__(self) -> None:
        super().__init__(InMemoryEventStore())
        self.appends: list[int] = []  # events per append
        self.refused: set[str] = set()

    async def append(
        self,
        task_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
        *,
        state: TaskState | None = None,
    ) -> AppendResult:
        await asyncio.sleep(0.01)
        messages = {getattr(e.event, "message", None) for e in events}
        if messages & self.refused:
            raise OSError("the database refused the event")
        self.appends.append(len(events))
        return await super().append(task_id, events, expected_version, state=state)


def message(recorded: RecordedEvent) -> str:
    assert isinstance(recorded.event, ev.ProgressReported)
    return recorded.event.message


def progress(name: str) -> ev.ProgressReported:
    return ev.ProgressReported(message=name, percent=10)


async def writer_on(log: CountingLog) -> TaskWriter:
    task_id = f"batch-{uuid.uuid4()}"
    metadata = EventMetadata(tenant="t", actor="t")
    submitted = NewEvent(ev.TaskSubmitted(content="x", kind="sms"), metadata)
    await log.append(task_id, [submitted], 0)
    log.appends.clear()
    return TaskWriter(log, await log.store.read_stream(task_id))


async def test_appends_made_together_go_to_the_log_in_one_transaction() -> None:
    log = CountingLog()
    writer = await writer_on(log)
    results = await asyncio.gather(*(writer.append(progress(f"call {i}")) for i in range(4)))
    assert log.appends == [4], "one append of four events"
    assert [[message(r) for r in rs] for rs in results] == [[f"call {i}"] for i in range(4)]
    assert [rs[0].version for rs in results] == [2, 3, 4, 5]
    assert writer.version == 5
    assert [r.version for r in await log.store.read_stream(writer.task_id)] == [1, 2, 3, 4, 5]


async def test_appends_arriving_during_a_write_go_together_after_it() -> None:
    log = CountingLog()
    writer = await writer_on(log)
    first = asyncio.create_task(writer.append(progress("first")))
    await asyncio.sleep(0.005)  # the first is being written
    later = [writer.append(progress(f"later {i}")) for i in range(3)]
    await asyncio.gather(first, *later)
    assert log.appends == [1, 3]


async def test_appends_one_after_another_are_one_each() -> None:
    log = CountingLog()
    writer = await writer_on(log)
    for i in range(3):
        await writer.append(progress(f"step {i}"))
    assert log.appends == [1, 1, 1]


async def test_an_event_the_log_refuses_fails_only_its_caller() -> None:
    log = CountingLog()
    log.refused = {"bad"}
    writer = await writer_on(log)
    results = await asyncio.gather(
        writer.append(progress("good 1")),
        writer.append(progress("bad")),
        writer.append(progress("good 2")),
        return_exceptions=True,
    )
    assert isinstance(results[1], OSError)
    stream = await log.store.read_stream(writer.task_id)
    assert [message(r) for r in stream[1:]] == ["good 1", "good 2"]
    assert writer.version == 3


async def test_a_caller_cancelled_while_waiting_is_never_written() -> None:
    log = CountingLog()
    writer = await writer_on(log)
    first = asyncio.create_task(writer.append(progress("first")))
    await asyncio.sleep(0.005)
    doomed = asyncio.create_task(writer.append(progress("cancelled")))
    kept = asyncio.create_task(writer.append(progress("kept")))
    await asyncio.sleep(0)
    doomed.cancel()
    await asyncio.gather(first, kept, doomed, return_exceptions=True)
    assert doomed.cancelled()
    stream = await log.store.read_stream(writer.task_id)
    assert [message(r) for r in stream[1:]] == ["first", "kept"]
