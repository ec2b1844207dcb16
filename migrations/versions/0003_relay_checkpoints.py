"""The relay's checkpoint.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One row per relay name. `log_cursor` is LogCursor's string form "<xid8>-<position>": the
    # relay has published every event up to it (at least once). `published_total` lets any api
    # process report the relay's throughput at /metrics without talking to the relay process.
    op.execute(
        """
        CREATE TABLE relay_checkpoints (
            name            text        PRIMARY KEY,
            log_cursor      text        NOT NULL,
            published_total bigint      NOT NULL DEFAULT 0,
            updated_at      timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # No NOTIFY trigger on `events`: NOTIFY takes a cluster-wide lock at commit, and one per
    # append halved the store's rate at 8 writers (benchmarks/append.py, 0.47x). The relay polls
    # instead; see infrastructure/relay.py.


def downgrade() -> None:
    op.execute("DROP TABLE relay_checkpoints")
