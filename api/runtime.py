"""Process-wide state of a `scamtrail api` process, set once by its start (api/cli/processes.py)
and never by building an app, which tests and benchmarks do many times in one process."""

from __future__ import annotations

import gc

# gen0 collections every 50,000 net allocations instead of 700, full ones rarely: the
# objects of a socket live as long as the socket, so frequent collections find little garbage.
GC_THRESHOLDS = (50_000, 20, 100)


def settle_heap() -> None:
    """Once the app and its services are up: move everything loaded so far (phone metadata,
    the suffix list, the app, its services) out of the collector's sight, since it lives as long
    as the process; without this, full collections walking those objects added ~80 ms to the
    p99 of a 1,000-event timeline page (benchmarks/reads.py). Then collect rarely: thousands of
    sockets keep hundreds of thousands of live objects, which the default thresholds walk
    several times a second."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
