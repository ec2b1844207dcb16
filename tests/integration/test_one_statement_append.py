"""The one-statement append (infrastructure/task_log.py): a task's events and its projection row
written by one statement when the caller holds the task's state, or starts the task. The row it
writes must be the row the transaction would write, the times PostgreSQL recorded included; and
whatever it does not write (a conflict, a retry, a row behind the log) must end as the
transaction ends it. The races with rebuild and prune are in test_projection_races.py."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from domain import events as ev
from domain.errors import ConcurrencyConflict
from domain.log import EventMetadata, NewEvent
from domain.task import TaskState, fold
from domain.tools import Tool
from infrastructure.event_store import EventStore
from infrastructure.projections import row_from_state
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from infrastructure.tools.domain_reputation import DomainReputation
from infrastructure.tools.phone_validator import PhoneValidator
from workers.analysis import Agent, run_analysis

pytestmark = pytest.mark.integration

ACME = EventMetadata(tenant="acme", actor="user:submitter")
CONTENT = "URGENT: verify your account at http://paypa1-login.top/verify or call +1 900 555 0199"


def new(*events: ev.DomainEvent) -> list[NewEvent]:
    return [NewEvent(e, ACME, uuid.uuid4()) for e in events]


class Counted(TaskLog):
    """Counts the appends that took the transaction's way."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(store)
        self.transactions = 0

    async def _append(self, *args: Any, **kwargs: Any) -> Any:
        self.transactions += 1
        return await super()._append(*args, **kwargs)


async def state_of(store: EventStore, task_id: str) -> TaskState:
    state = fold(await store.read_stream(task_id))
    assert state is not None
    return state


async def assert_row_is_the_fold(log: TaskLog, store: EventStore, task_id: str) -> None:
    row, truth = await log.task(task_id), await state_of(store, task_id)
    assert row is not None
    assert row_from_state(row) == row_from_state(truth)


async def test_the_row_written_beside_the_events_is_the_fold_of_the_stream(
    store: EventStore,
) -> None:
    log = Counted(store)
    submitted = ev.TaskSubmitted(content=CONTENT, kind="sms")
    await log.append("t1", new(submitted), 0)
    await assert_row_is_the_fold(log, store, "t1")
    steps: list[list[ev.DomainEvent]] = [
        [ev.AnalysisStarted(run=1, max_runs=3)],
        [ev.EntitiesExtracted()],
        [ev.ToolCallStarted(call_id="c1", tool="web_search", step="exa_search", input={})],
        [ev.ToolCallCompleted(call_id="c1", tool="web_search", step="exa_search", output={})],
        [
            ev.VerdictReached(verdict="scam", score=0.9, confidence=0.8),
            ev.TaskCompleted(verdict="scam"),
        ],
    ]
    for events in steps:
        state = await state_of(store, "t1")
        await log.append("t1", new(*events), state.version, state=state)
        await assert_row_is_the_fold(log, store, "t1")
    assert log.transactions == 0, "every append was one statement"

    stream = await store.read_stream("t1")
    row = await log.task("t1")
    assert row is not None and row.status == "completed"
    assert row.submitted_at == stream[0].recorded_at
    assert row.finished_at == stream[-1].recorded_at, "the time PostgreSQL recorded, not a guess"


async def test_a_conflict_writes_nothing_and_is_reported_as_one(store: EventStore) -> None:
    log = Counted(store)
    await log.append("t1", new(ev.TaskSubmitted(content=CONTENT, kind="sms")), 0)
    stale = await state_of(store, "t1")
    await log.append("t1", new(ev.TaskCancelled(reason="by the user", percent=0)), 1)
    before = await log.task("t1")

    with pytest.raises(ConcurrencyConflict):
        await log.append("t1", new(ev.AnalysisStarted(run=1, max_runs=3)), 1, state=stale)
    assert [r.type for r in await store.read_stream("t1")] == ["TaskSubmitted", "TaskCancelled"]
    assert await log.task("t1") == before


async def test_a_retry_of_stored_events_is_a_no_op(store: EventStore) -> None:
    log = Counted(store)
    await log.append("t1", new(ev.TaskSubmitted(content=CONTENT, kind="sms")), 0)
    state = await state_of(store, "t1")
    started = new(ev.AnalysisStarted(run=1, max_runs=3))
    first = await log.append("t1", started, 1, state=state)
    again = await log.append("t1", started, 1, state=state)  # its acknowledgement was lost
    assert (first.stored, again.stored) == (True, False)
    assert again.versions == first.versions
    assert len(await store.read_stream("t1")) == 2


async def test_a_row_behind_the_log_is_repaired_by_the_transaction(store: EventStore) -> None:
    log = Counted(store)
    await log.append("t1", new(ev.TaskSubmitted(content=CONTENT, kind="sms")), 0)
    state = await state_of(store, "t1")
    async with store.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE task_projection SET version = 0, kind = 'url'"))

    await log.append("t1", new(ev.AnalysisStarted(run=1, max_runs=3)), 1, state=state)
    assert log.transactions == 1
    await assert_row_is_the_fold(log, store, "t1")
    assert len(await store.read_stream("t1")) == 2


async def test_a_state_at_another_version_is_not_used(store: EventStore) -> None:
    log = Counted(store)
    await log.append("t1", new(ev.TaskSubmitted(content=CONTENT, kind="sms")), 0)
    at_one = await state_of(store, "t1")
    await log.append("t1", new(ev.AnalysisStarted(run=1, max_runs=3)), 1, state=at_one)
    await log.append("t1", new(ev.EntitiesExtracted()), 2, state=at_one)  # a version behind
    assert log.transactions == 1
    await assert_row_is_the_fold(log, store, "t1")


async def test_a_whole_analysis_appends_in_one_statement_each(
    store: EventStore, settings: Settings
) -> None:
    """The worker's writer hands its state to every append: no append of a whole analysis, tool
    calls written together included, takes the transaction's way."""
    log = Counted(store)
    await log.append("t1", new(ev.TaskSubmitted(content=CONTENT, kind="sms")), 0)
    tools: list[Tool] = [DomainReputation(), PhoneValidator()]
    agent = Agent(log, {t.name: t for t in tools}, settings)

    assert await run_analysis(agent, "t1") == "completed"
    assert log.transactions == 0
    await assert_row_is_the_fold(log, store, "t1")
