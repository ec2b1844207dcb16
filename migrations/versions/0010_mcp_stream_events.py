"""The messages of MCP streamable HTTP streams, for resuming with `Last-Event-ID`.

A row is one message the api sent (or would have sent) on an MCP stream: `position` is its SSE
event id, `session_id` the MCP session, `stream_id` the stream within it (a request's id, or
the session's GET stream), `owner` the tenant and actor who opened the session, and `message`
the JSON-RPC message (NULL for a priming event, which only marks a place to resume from). Any
api replica can replay a stream from here. Rows older than a day are pruned
(infrastructure/mcp_streams.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE mcp_stream_events (
            position    bigserial   PRIMARY KEY,
            session_id  text        NOT NULL,
            stream_id   text        NOT NULL,
            owner       text        NOT NULL,
            message     jsonb,
            recorded_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # A replay reads one stream of one session after a position.
    op.execute(
        "CREATE INDEX mcp_stream_events_stream ON mcp_stream_events"
        " (session_id, stream_id, position)"
    )
    op.execute("CREATE INDEX mcp_stream_events_age ON mcp_stream_events (recorded_at)")


def downgrade() -> None:
    op.execute("DROP TABLE mcp_stream_events")
