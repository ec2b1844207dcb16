"""The partitions' names, locks and the published mark (infrastructure/relay_partitions.py)."""

from __future__ import annotations

import pytest

from domain.log import LOG_START, LogCursor
from infrastructure.relay_partitions import (
    RELAY_LOCK_KEY,
    WHOLE_LOG,
    Partition,
    checkpoint_names,
    partitions,
    published_through,
    starting_point,
)


def test_the_whole_log_keeps_the_unpartitioned_relays_lock_and_checkpoint() -> None:
    assert WHOLE_LOG.lock_key == RELAY_LOCK_KEY
    assert WHOLE_LOG.checkpoint_name("relay") == "relay"
    assert checkpoint_names("relay", 1) == ["relay"]


def test_every_partition_of_every_count_has_a_lock_of_its_own() -> None:
    keys = [p.lock_key for count in range(1, 65) for p in partitions(count)]
    assert len(keys) == len(set(keys))
    assert all(0 < key < 2**63 for key in keys)  # a PostgreSQL bigint


def test_checkpoint_names_say_the_partition_and_the_count() -> None:
    assert checkpoint_names("relay", 3) == ["relay#0/3", "relay#1/3", "relay#2/3"]
    assert Partition(1, 3).checkpoint_name("relay-eu") == "relay-eu#1/3"


@pytest.mark.parametrize(("index", "count"), [(0, 0), (1, 1), (-1, 4), (4, 4), (0, 65)])
def test_no_such_partition(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="no partition"):
        Partition(index, count)


def test_published_through_is_the_least_checkpoint_once_every_partition_has_one() -> None:
    rows = {"relay#0/2": "9-1", "relay#1/2": "7-3", "relay": "1-1", "other#0/2": "0-0"}
    assert published_through(rows, "relay", 2) == LogCursor(7, 3)
    assert published_through(rows, "relay", 1) == LogCursor(1, 1)
    assert published_through({"relay#0/2": "9-1"}, "relay", 2) == LOG_START
    assert published_through({}, "relay", 1) == LOG_START


def test_a_partition_starts_from_its_checkpoint() -> None:
    rows = {"relay#1/4": "5-5", "relay": "9-9"}
    assert starting_point(rows, "relay", Partition(1, 4)) == LogCursor(5, 5)


def test_a_new_partition_starts_where_the_whole_log_is_known_published() -> None:
    """The unpartitioned relay's checkpoint, or the least of a count whose every partition has
    one, whichever is further; never a sibling's alone (its own events went out, not these)."""
    four = {f"relay#{i}/4": f"{10 + i}-0" for i in range(4)}
    assert starting_point({**four, "relay": "3-0"}, "relay", Partition(0, 8)) == LogCursor(10, 0)
    assert starting_point({"relay": "3-0"}, "relay", Partition(0, 8)) == LogCursor(3, 0)
    siblings = {"relay#0/4": "10-0", "relay#1/4": "11-0", "relay#2/4": "12-0"}
    assert starting_point(siblings, "relay", Partition(3, 4)) == LOG_START
    assert starting_point(siblings, "relay", WHOLE_LOG) == LOG_START
    assert starting_point({"relay#x/y": "1-1", "other": "9-9"}, "relay", WHOLE_LOG) == LOG_START
