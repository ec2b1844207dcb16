"""The event store's contract (`infrastructure.event_log.EventLog`), run against each store:
`InMemoryEventStore` and the PostgreSQL `EventStore` (tests/contract/conftest.py). What only
PostgreSQL has to guarantee (writers on many connections, late commits, transactions shared with
projections, lost connections) is tested in tests/integration/test_event_store.py and
test_global_order.py."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from domain import events as ev
from domain.errors import ConcurrencyConflict, DuplicateEventId, InvalidAppend
from domain.log import LOG_START, EventMetadata, LogCursor, NewEvent
from infrastructure.event_log import EventLog
from infrastructure.memory_store import UnstorableEvent
from tests.factories import new, progress, submitted
from tests.waiting import readable


def stream() -> str:
    return f"task-{uuid.uuid4()}"


async def test_append_and_read_back_in_version_order(store: EventLog) -> None:
    sid = stream()
    first = await store.append(sid, [submitted(), progress(20)], expected_version=0)
    second = await store.append(sid, [progress(40), progress(60)], expected_version=2)

    assert first.versions == (1, 2) and second.versions == (3, 4)
    assert first.stored and second.stored
    recorded = await store.read_stream(sid)
    assert [r.version for r in recorded] == [1, 2, 3, 4]
    assert isinstance(recorded[0].event, ev.TaskSubmitted)
    assert [r.event.percent for r in recorded[1:]] == [20, 40, 60]  # type: ignore[attr-defined]
    assert await store.stream_version(sid) == 4
    assert [r.version for r in await store.read_stream(sid, after_version=2)] == [3, 4]
    assert [r.version for r in await store.read_stream(sid, after_version=1, limit=2)] == [2, 3]


async def test_metadata_is_stored_with_every_event(store: EventLog) -> None:
    sid, correlation, causation = stream(), uuid.uuid4(), uuid.uuid4()
    metadata = EventMetadata(
        tenant="bank-7", actor="user:42", correlation_id=correlation, causation_id=causation
    )
    await store.append(sid, [NewEvent(ev.TaskCancelled(reason="x"), metadata)], 0)

    (recorded,) = await store.read_stream(sid)
    assert recorded.metadata == metadata
    assert recorded.recorded_at.tzinfo is not None


async def test_stale_expected_version_is_a_conflict(store: EventLog) -> None:
    sid = stream()
    await store.append(sid, [submitted()], 0)
    await store.append(sid, [progress()], 1)

    with pytest.raises(ConcurrencyConflict) as stale:
        await store.append(sid, [progress()], 1)
    assert stale.value.actual_version == 2
    with pytest.raises(ConcurrencyConflict):
        await store.append(sid, [submitted()], 0)  # the stream exists already
    # An expected version from the future would leave a hole; it is a conflict too.
    with pytest.raises(ConcurrencyConflict):
        await store.append(sid, [progress()], 5)
    with pytest.raises(ConcurrencyConflict) as missing:
        await store.append(stream(), [progress()], 3)
    assert missing.value.actual_version is None
    assert [r.version for r in await store.read_stream(sid)] == [1, 2]


async def test_appending_a_stored_event_id_again_stores_nothing(store: EventLog) -> None:
    sid = stream()
    batch = [submitted(), progress()]
    first = await store.append(sid, batch, 0)
    retry = await store.append(sid, batch, 0)  # e.g. the commit happened, the reply was lost

    assert retry.stored is False
    assert retry.versions == first.versions and retry.positions == first.positions
    assert len(await store.read_stream(sid)) == 2


async def test_a_retry_is_recognised_whatever_version_it_expects(store: EventLog) -> None:
    """A retry after the stream moved on (another writer appended meanwhile) is still a no-op,
    not a conflict: its event ids say it is stored."""
    sid = stream()
    batch = [progress()]
    await store.append(sid, [submitted()], 0)
    first = await store.append(sid, batch, 1)
    await store.append(sid, [progress()], 2)
    retry = await store.append(sid, batch, 1)
    assert (retry.stored, retry.versions, retry.positions) == (False, (2,), first.positions)


async def test_a_failing_batch_leaves_nothing_behind(store: EventLog) -> None:
    elsewhere, sid = stream(), stream()
    stolen = submitted()
    await store.append(elsewhere, [stolen], 0)

    # The second event's id is already stored in another stream: the whole batch fails.
    with pytest.raises(DuplicateEventId):
        await store.append(sid, [submitted(), stolen], 0)
    assert await store.read_stream(sid) == []
    assert await store.stream_version(sid) == 0


async def test_event_ids_stored_in_another_stream_are_not_a_retry(store: EventLog) -> None:
    batch = [submitted()]
    await store.append(stream(), batch, 0)
    with pytest.raises(DuplicateEventId):
        await store.append(stream(), batch, 0)


@pytest.mark.parametrize(
    ("events", "expected_version", "message"),
    [
        ([], 0, "empty batch"),
        ([progress()], -1, "expected_version must be >= 0"),
        ([progress()], "0", "must be an int"),
        ([progress()], True, "must be an int"),
        ([progress()] * 2, 0, "repeats an event id"),
        ([progress()] * 1001, 0, "at most 1000 events"),
    ],
)
async def test_bad_appends_are_rejected_clearly(
    store: EventLog, events: list[NewEvent], expected_version: int, message: str
) -> None:
    with pytest.raises(InvalidAppend, match=message):
        await store.append(stream(), events, expected_version)


@pytest.mark.parametrize("stream_id", ["", "x" * 201])
async def test_stream_ids_are_1_to_200_characters(store: EventLog, stream_id: str) -> None:
    with pytest.raises(InvalidAppend, match="stream_id must be 1 to 200 characters"):
        await store.append(stream_id, [submitted()], 0)


async def test_bad_reads_are_rejected(store: EventLog) -> None:
    with pytest.raises(ValueError, match="after_version"):
        await store.read_stream(stream(), after_version=-1)
    with pytest.raises(ValueError, match="limit"):
        await store.read_stream(stream(), limit=0)
    with pytest.raises(ValueError, match="limit"):
        await store.read_all(limit=0)


async def test_append_returns_the_events_as_recorded(store: EventLog) -> None:
    sid = stream()
    batch = [submitted(), progress(30)]
    result = await store.append(sid, batch, 0)
    assert [r.event for r in result.recorded] == [e.event for e in batch]
    assert list(result.recorded) == await store.read_stream(sid)
    assert (await store.append(sid, batch, 0)).recorded == ()


async def test_cursor_round_trips_through_its_string_form(store: EventLog) -> None:
    await readable(store, await store.append("s", [submitted(), progress()], 0))
    first, second = await store.read_all()
    cursor = LogCursor.parse(str(first.cursor))
    assert [r.event_id for r in await store.read_all(cursor)] == [second.event_id]


async def test_the_whole_log_is_read_in_append_order_page_by_page(store: EventLog) -> None:
    a, b = stream(), stream()
    await store.append(a, [submitted()], 0)
    await store.append(b, [submitted(), progress(10)], 0)
    await readable(store, await store.append(a, [progress(20)], 1))
    read, cursor = [], LOG_START
    while page := await store.read_all(cursor, limit=2):
        assert all(r.cursor > cursor for r in page) and len(page) <= 2
        read += [(r.stream_id, r.version) for r in page]
        cursor = page[-1].cursor
    assert read == [(a, 1), (b, 1), (b, 2), (a, 2)]
    positions = [r.position for r in await store.read_all()]
    assert positions == sorted(set(positions))


async def test_reading_on_from_the_log_end_returns_only_what_comes_after(
    store: EventLog,
) -> None:
    assert await store.log_end() == LOG_START
    assert await store.read_all(await store.log_end()) == []
    await readable(store, await store.append(stream(), [submitted(), progress()], 0))
    end = await store.log_end()
    assert end == (await store.read_all())[-1].cursor
    assert await store.read_all(end) == []
    later = await store.append(stream(), [submitted()], 0)
    await readable(store, later)
    assert [r.event_id for r in await store.read_all(end)] == [later.recorded[0].event_id]


async def test_several_streams_are_read_at_once(store: EventLog) -> None:
    a, b, none = stream(), stream(), stream()
    await store.append(a, [submitted(), progress()], 0)
    await store.append(b, [submitted()], 0)
    streams = await store.read_streams([a, b, none])
    assert {sid: [r.version for r in s] for sid, s in streams.items()} == {
        a: [1, 2],
        b: [1],
        none: [],
    }
    assert streams[a] == await store.read_stream(a)


async def test_events_of_one_append_share_their_recording_time(store: EventLog) -> None:
    result = await store.append(stream(), [submitted(), progress(), progress()], 0)
    assert len({r.recorded_at for r in result.recorded}) == 1


async def test_events_come_back_as_stored_not_as_the_objects_given(store: EventLog) -> None:
    """What a reader gets was decoded from the log: changing the given objects afterwards (a
    tool's output is a dict) changes nothing stored."""
    sid = stream()
    call = ev.ToolCallCompleted(call_id="c1", tool="scam_database", step="scam_db", output={})
    await store.append(sid, [submitted(), new(call)], 0)
    call.output["forged"] = True
    (_, read) = await store.read_stream(sid)
    assert read.event.output == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize("output", [{"text": "a\x00b"}, {"\x00": 1}, {"text": "\ud800"}])
async def test_text_the_log_cannot_hold_is_refused_with_its_batch(
    store: EventLog, output: dict[str, object]
) -> None:
    """NUL and lone surrogates, in a key or a value: PostgreSQL's jsonb refuses them (its
    driver's DataError), the in-memory store too (UnstorableEvent), and nothing is stored."""
    sid = stream()
    call = ev.ToolCallCompleted(call_id="c1", tool="scam_database", step="scam_db", output=output)
    with pytest.raises((UnstorableEvent, asyncpg.DataError)):
        await store.append(sid, [submitted(), new(call)], 0)
    assert await store.stream_version(sid) == 0
