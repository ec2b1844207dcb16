"""Indicators become events: scam_indicators is the projection of the indicator streams.

Each row now belongs to a stream (`stream_id`): the global one (`indicators:global`, written by
admins, feed imports and the seed) or one tenant's (`indicators:tenant:<tenant>`). The unique
key becomes (kind, value, stream_id): a tenant's assertion of a value the global set holds is a
row of its own, and never changes the global one. Lookups read the key with the two streams a
tenant sees (domain.indicators).

Each row also names the event that last asserted it (`asserted_seq` in `stream_id`) and who
made it (`asserted_tenant`, `asserted_by`, `asserted_at`), so a verdict's match says who put
the indicator there.

The rows already there become global, keeping their source, and are written to the log as
`IndicatorsLoaded` events (500 rows each) in the global stream, so that rebuilding the
projection from the log (`scamtrail projections rebuild`) gives them back.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GLOBAL_STREAM = "indicators:global"  # domain.indicators.GLOBAL_STREAM
ACTOR = "migration:0009"
CHUNK = 500


def upgrade() -> None:
    op.execute(
        "ALTER TABLE scam_indicators"
        f" ADD COLUMN stream_id text NOT NULL DEFAULT '{GLOBAL_STREAM}',"
        " ADD COLUMN asserted_seq integer,"
        " ADD COLUMN asserted_tenant text,"
        " ADD COLUMN asserted_by text,"
        " ADD COLUMN asserted_at timestamptz"
    )
    op.execute("ALTER TABLE scam_indicators ALTER COLUMN stream_id DROP DEFAULT")
    op.execute(
        "ALTER TABLE scam_indicators DROP CONSTRAINT scam_indicators_kind_value_key,"
        " ADD CONSTRAINT scam_indicators_kind_value_stream_key UNIQUE (kind, value, stream_id)"
    )
    # The rows as events: one IndicatorsLoaded per CHUNK rows, versions 1, 2, ... of the global
    # stream (nothing wrote to it before this revision). The payload is domain.events'
    # KnownIndicator; timestamps in ISO 8601, as pydantic reads them.
    op.execute(
        f"""
        WITH numbered AS (
            SELECT i.*, (row_number() OVER (ORDER BY id) - 1) / {CHUNK} + 1 AS chunk
            FROM scam_indicators i
        ),
        chunks AS (
            SELECT chunk, jsonb_agg(jsonb_build_object(
                'kind', kind, 'value', value, 'category', category,
                'report_count', report_count, 'first_seen', first_seen,
                'last_seen', last_seen, 'source', source,
                'imported_at', imported_at, 'expires_at', expires_at) ORDER BY id) AS indicators
            FROM numbered GROUP BY chunk
        )
        INSERT INTO events (stream_id, version, event_id, type, data, metadata)
        SELECT '{GLOBAL_STREAM}', chunk, gen_random_uuid(), 'IndicatorsLoaded',
               jsonb_build_object('indicators', indicators),
               jsonb_build_object('tenant', 'system', 'actor', '{ACTOR}')
        FROM chunks ORDER BY chunk
        """
    )
    op.execute(
        f"""
        UPDATE scam_indicators i SET asserted_seq = n.chunk, asserted_tenant = 'system',
            asserted_by = '{ACTOR}', asserted_at = now()
        FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / {CHUNK} + 1 AS chunk
              FROM scam_indicators) n
        WHERE n.id = i.id
        """
    )


def downgrade() -> None:
    # Before this revision there was one set: the tenants' own rows and every indicator event
    # go (the earlier code cannot read them).
    op.execute("DELETE FROM scam_indicators WHERE stream_id <> 'indicators:global'")
    op.execute("DELETE FROM events WHERE stream_id LIKE 'indicators:%'")
    op.execute(
        "ALTER TABLE scam_indicators DROP CONSTRAINT scam_indicators_kind_value_stream_key,"
        " ADD CONSTRAINT scam_indicators_kind_value_key UNIQUE (kind, value)"
    )
    op.execute(
        "ALTER TABLE scam_indicators DROP COLUMN stream_id, DROP COLUMN asserted_seq,"
        " DROP COLUMN asserted_tenant, DROP COLUMN asserted_by, DROP COLUMN asserted_at"
    )
