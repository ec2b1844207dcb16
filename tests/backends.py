"""Backends a test left connected to the test database.

Every fixture that starts a relay, hub, worker or api must stop it and close its connections. One
left running holds locks (the relay's advisory lock, AccessShareLock on `events` while it probes)
and the next test's TRUNCATE waits behind it until it times out, in some other test, far from the
cause. `clean_database` calls `assert_no_stray_backends` first, so the test after the leaky one
fails and names what was left behind; `migrated_database` calls it again at the end of the
session, for what the last tests left.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

HARNESS = "scamtrail-test-harness"  # application_name of the harness's own pooled connections

# Backends of this database other than the harness's own; a disconnect is asynchronous on the
# server (the backend exits after the client closed), hence the short grace period.
_STRAYS = sa.text(
    "SELECT pid, application_name, state, left(query, 120) AS query,"
    "       clock_timestamp() - backend_start AS age,"
    "       clock_timestamp() - query_start AS running,"
    "       coalesce(wait_event_type || ':' || wait_event, 'no wait') AS waiting,"
    "       pg_blocking_pids(pid) AS blockers"
    " FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    "   AND backend_type = 'client backend'"
    # The harness's own pooled connections may stay, but idle: one left in a transaction (a
    # test's cancelled query, an unclosed transaction) holds locks just the same.
    "   AND (application_name <> :harness OR state <> 'idle')"
)


class StrayBackends(AssertionError):
    pass


async def stray_backends(conn: AsyncConnection) -> list[str]:
    rows = (await conn.execute(_STRAYS, {"harness": HARNESS})).all()
    return [
        f"pid {r.pid} ({r.application_name or 'no application_name'}, {r.state},"
        f" connected {r.age}, query running {r.running}, {r.waiting},"
        f" blocked by {r.blockers or 'none'}): {r.query!r}"
        for r in rows
    ]


async def assert_no_stray_backends(conn: AsyncConnection, grace_s: float = 3.0) -> None:
    """Raise StrayBackends if a backend other than the harness's stays connected past `grace_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while found := await stray_backends(conn):
        if loop.time() >= deadline:
            raise StrayBackends(
                "an earlier test left backends connected to the test database (a relay, hub,"
                " worker, api or engine not stopped in its teardown), or a harness connection"
                " busy or in a transaction:\n  " + "\n  ".join(found)
            )
        await asyncio.sleep(0.05)
