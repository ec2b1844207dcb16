"""The log split into partitions for relays: a stream belongs to partition
`hash(stream_id) mod count`, so each task's events stay in one partition, in order.

Each partition has its own advisory lock and its own checkpoint; whoever holds a partition's
lock publishes that partition, from its checkpoint on. With one partition (the default) the lock
key and the checkpoint's name are those of the unpartitioned relay, so nothing changes for a
deployment that never sets `SCAMTRAIL_RELAY_PARTITIONS`.

Every relay of a deployment must use the same count. Relays with different counts contend for
different locks, so while both run (a rolling change of the count) they publish the same events
twice: duplicates, which clients drop by `seq`, never a loss. A partition checkpointed for the
first time starts from the oldest checkpoint the relay has under any count, for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.log import LOG_START, LogCursor

# Any fixed 64-bit number works as long as every relay uses the same one; advisory locks are
# per database, so relays of different databases never contend.
RELAY_LOCK_KEY = 0x5CA7_7A11_0000_0001
MAX_PARTITIONS = 64

# The partition of a row's stream, in SQL: hashtext is PostgreSQL's stable string hash (a signed
# 32-bit int; shifted, not abs(), which fails on its minimum). $4 is the count, $5 the index.
PARTITION_OF_ROW = "mod(hashtext(stream_id)::bigint + 2147483648, $4) = $5"


@dataclass(frozen=True, order=True)
class Partition:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not (1 <= self.count <= MAX_PARTITIONS and 0 <= self.index < self.count):
            raise ValueError(f"no partition {self.index} of {self.count}")

    @property
    def whole_log(self) -> bool:
        return self.count == 1

    @property
    def lock_key(self) -> int:
        """The advisory lock whose holder publishes this partition."""
        if self.whole_log:
            return RELAY_LOCK_KEY
        return RELAY_LOCK_KEY + (self.count << 16) + self.index + 1

    def checkpoint_name(self, relay_name: str) -> str:
        return relay_name if self.whole_log else f"{relay_name}#{self.index}/{self.count}"

    def __str__(self) -> str:
        return "the whole log" if self.whole_log else f"partition {self.index}/{self.count}"


WHOLE_LOG = Partition(0, 1)


def partitions(count: int) -> list[Partition]:
    return [Partition(index, count) for index in range(count)]


def checkpoint_names(relay_name: str, count: int) -> list[str]:
    """The checkpoint rows of every partition of the relay under `count` partitions."""
    return [p.checkpoint_name(relay_name) for p in partitions(count)]


def published_through(cursors: dict[str, str], relay_name: str, count: int) -> LogCursor:
    """Every event up to the returned cursor was published, given the checkpoint rows
    (name -> cursor text): the least of the partitions' checkpoints; the log's start while one
    partition has none yet."""
    names = checkpoint_names(relay_name, count)
    if any(not cursors.get(name) for name in names):
        return LOG_START
    return min(LogCursor.parse(cursors[name]) for name in names)


def starting_point(cursors: dict[str, str], relay_name: str, partition: Partition) -> LogCursor:
    """Where a partition publishes from: its checkpoint; else the furthest point up to which
    the whole log is known to be published under some partition count (every partition of
    that count checkpointed; the unpartitioned relay's checkpoint is the count 1). Not a
    sibling's checkpoint alone: that says its own events went out, not this partition's. What
    this partition republishes from there was published already: duplicates, never a loss."""
    own = cursors.get(partition.checkpoint_name(relay_name))
    if own:
        return LogCursor.parse(own)
    counts = {1} | {_count_of(name) for name in cursors if name.startswith(f"{relay_name}#")}
    known = [published_through(cursors, relay_name, count) for count in counts if count]
    return max(known, default=LOG_START)


def _count_of(name: str) -> int:
    """The partition count in a checkpoint's name (`relay#2/4` -> 4); 0 if it has none."""
    _, _, count = name.rpartition("/")
    return int(count) if count.isdecimal() and 0 < int(count) <= MAX_PARTITIONS else 0
