"""Indexes for the filtered task list and for one tenant's projection rebuild.

`GET /tasks?status=` and `?verdict=` read the tenant's tasks newest first through
`task_projection_tenant_idx` and dropped the ones that did not match, or sorted a sequential
scan of the whole table (the verdict is `coalesce(reviewed_verdict, verdict)`, which had no
statistics); both grow with the tenant. Each filter gets an index in `list_tasks`' order,
`(tenant, <filter>, submitted_at DESC, task_id DESC)`, so a page and its keyset cursor are one
index range with no filter and no sort; the verdict index also gives the expression statistics.

A submitter's list (`submitted_by`) gets no index per filter: the planner reads
`task_projection_submitter_idx` (0005) or one of these and drops the other rows, which costs at
most that submitter's tasks or the tenant's tasks of that status or verdict (0.03-0.3 ms for a
submitter owning half of a 10,000-task tenant). Every index here is written on every append:
each append updates its task's row, and no update is HOT since `updated_at` is indexed (the two
list indexes add about 10 us to a row update of 80-90 us). Two more are not worth it until one
submitter owns most of a large tenant.

`POST /admin/projections/rebuild` (the admin's tenant) pages through the first events of that
tenant's streams; the batch query read the whole log for each batch. The partial index holds
one entry per stream. PostgreSQL keeps no statistics of a partial index's expression, so the
tenant also gets extended statistics: without them the planner takes any tenant for 0.5% of
the log and may read and sort all of a big tenant's streams for every batch.

Built with CONCURRENTLY, outside the migration's transaction: appends write both tables, and a
plain CREATE INDEX would block them for as long as the build over the whole log takes (a
concurrent build only waits for the transactions already running). A build that fails leaves
an invalid index behind, so each is dropped first if it exists: running the migration again
repairs it. The closing ANALYZE gives the planner the new statistics now rather than after the
next autovacuum (once 10% of the rows changed); it reads a bounded sample and blocks no reads
or writes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "task_projection_status_idx": "task_projection"
    " (tenant, status, submitted_at DESC, task_id DESC)",
    "task_projection_verdict_idx": "task_projection"
    " (tenant, (coalesce(reviewed_verdict, verdict)), submitted_at DESC, task_id DESC)",
    # The tenant of a stream is the tenant of its first event (projection_rebuild).
    "events_first_by_tenant_idx": "events ((metadata->>'tenant'), stream_id) WHERE version = 1",
}


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, definition in INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {definition}")
        op.execute("DROP STATISTICS IF EXISTS events_tenant_stats")
        op.execute("CREATE STATISTICS events_tenant_stats ON (metadata->>'tenant') FROM events")
        op.execute("ANALYZE task_projection, events")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP STATISTICS IF EXISTS events_tenant_stats")
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
