"""The task projection: one row per task, updated in the same transaction as each append.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # `calls` keeps what the fold needs beyond the columns (completed and started call ids), so
    # the next append can evolve the row without reading the stream.
    op.execute(
        """
        CREATE TABLE task_projection (
            task_id          text        PRIMARY KEY,
            tenant           text        NOT NULL,
            kind             text        NOT NULL,
            status           text        NOT NULL,
            current_step     text,
            percent          integer     NOT NULL,
            verdict          text,
            score            double precision,
            confidence       double precision,
            reviewed_verdict text,
            error            text,
            content_preview  text        NOT NULL,
            submitted_at     timestamptz NOT NULL,
            finished_at      timestamptz,
            version          integer     NOT NULL,
            calls            jsonb       NOT NULL,
            updated_at       timestamptz NOT NULL DEFAULT now(),
            search           tsvector    GENERATED ALWAYS AS
                                 (to_tsvector('simple', content_preview)) STORED
        )
        """
    )
    op.execute(
        "CREATE INDEX task_projection_tenant_idx"
        " ON task_projection (tenant, submitted_at DESC, task_id DESC)"
    )
    op.execute("CREATE INDEX task_projection_search_idx ON task_projection USING gin (search)")
    # The sweep looks for unfinished tasks that went quiet.
    op.execute(
        "CREATE INDEX task_projection_unfinished_idx ON task_projection (updated_at)"
        " WHERE status IN ('submitted', 'running')"
    )


def downgrade() -> None:
    op.execute("DROP TABLE task_projection")
