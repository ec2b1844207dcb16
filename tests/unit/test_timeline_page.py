"""A timeline page from stored entries: when the projection's entries are the whole page, the
page's JSON around entries that are JSON already, and which events have entries to store."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from api.schemas import TimelinePage, timeline_page
from domain import events as ev
from domain.indicators import GLOBAL_STREAM
from domain.log import EventMetadata, LogCursor, RecordedEvent
from domain.timeline import TIMELINE_FORMAT
from infrastructure.timeline import PendingEntries, TimelineSlice, whole

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("after", "limit", "through", "count", "first", "last", "expected"),
    [
        (0, 100, 10, 10, 1, 10, True),  # every event of the stream
        (0, 4, 10, 4, 1, 4, True),  # a full page, more to come
        (4, 4, 10, 4, 5, 8, True),
        (8, 4, 10, 2, 9, 10, True),  # the last page, short
        (10, 4, 10, 0, None, None, True),  # past the end: nothing to show
        (12, 4, 10, 0, None, None, True),
        (0, 100, 10, 0, None, None, False),  # nothing stored yet
        (0, 100, 10, 7, 1, 7, False),  # the relay behind
        (0, 100, 10, 9, 1, 10, False),  # a hole
        (0, 100, 10, 9, 2, 10, False),  # the first one missing
        (4, 4, 10, 3, 5, 7, False),  # short of the limit and of the stream's end
    ],
)
def test_a_page_is_whole_only_without_a_hole_up_to_the_limit_or_the_end(
    after: int,
    limit: int,
    through: int,
    count: int,
    first: int | None,
    last: int | None,
    expected: bool,
) -> None:
    assert whole(after, limit, through, count, first, last) is expected


def test_the_page_is_a_documented_timeline_page_whatever_the_task_id() -> None:
    entries = TimelineSlice('{"seq":1},{"seq":2}', count=2, last=2)
    for task_id in ["a,b", 'say "hi"', "naïve\\"]:
        text = timeline_page(task_id, entries, limit=2)
        assert list(json.loads(text)) == list(TimelinePage.model_fields)
        assert json.loads(text)["task_id"] == task_id
        assert json.loads(text)["next_after"] == 2
    assert json.loads(timeline_page("t", entries, limit=3))["next_after"] is None
    empty = json.loads(timeline_page("t", TimelineSlice("", 0, None), limit=3, next=None))
    assert empty == {"task_id": "t", "events": [], "next_after": None, "next": None}


def test_only_readable_events_of_task_streams_have_entries_to_store() -> None:
    def recorded(stream_id: str, event: ev.DomainEvent) -> RecordedEvent:
        return RecordedEvent(
            stream_id=stream_id,
            version=1,
            position=1,
            cursor=LogCursor(1, 1),
            event_id=uuid.uuid4(),
            recorded_at=datetime.now(UTC),
            metadata=EventMetadata(tenant="public", actor="worker"),
            event=event,
        )

    pending = PendingEntries()
    submitted = recorded("task-1", ev.TaskSubmitted(content="x", kind="sms"))
    pending.add(submitted, "{}")
    pending.add(recorded("task-2", ev.UnreadableEvent(original_type="Future", error="?")), "{}")
    pending.add(recorded(GLOBAL_STREAM, ev.TaskSubmitted(content="x", kind="sms")), "{}")
    assert pending.args() == (["task-1"], [1], [submitted.event_id], ["{}"], TIMELINE_FORMAT)
