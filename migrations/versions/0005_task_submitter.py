"""Who submitted each task, so a submitter's reads can be scoped to its own tasks in the query.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE task_projection ADD COLUMN submitted_by text")
    # Rows written before this revision: the actor of the stream's first event (TaskSubmitted).
    op.execute(
        """
        UPDATE task_projection p SET submitted_by = e.metadata->>'actor'
        FROM events e WHERE e.stream_id = p.task_id AND e.version = 1
        """
    )
    # A submitter's task list: its tenant, itself, newest first.
    op.execute(
        "CREATE INDEX task_projection_submitter_idx"
        " ON task_projection (tenant, submitted_by, submitted_at DESC, task_id DESC)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX task_projection_submitter_idx")
    op.execute("ALTER TABLE task_projection DROP COLUMN submitted_by")
