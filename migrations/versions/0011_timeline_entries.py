"""The timeline projection: each task event's timeline entry, rendered once (JSON text).

`format` is the version of the code's rendering (domain/timeline.py, TIMELINE_FORMAT): reads
take only entries of their own format. The reference to the event deletes an entry with its
event (a prune) and refuses an entry for an event that is not there
(infrastructure/timeline.py). Entries are written by the relay and by `scamtrail rebuild`; an
event without one is rendered from the log when read.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE timeline_entries (
            stream_id text     NOT NULL,
            version   integer  NOT NULL,
            format    smallint NOT NULL,
            entry     text     NOT NULL,
            PRIMARY KEY (stream_id, version),
            FOREIGN KEY (stream_id, version) REFERENCES events (stream_id, version)
                ON DELETE CASCADE
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE timeline_entries")
