"""An index of the scam reports by the words they name: phone numbers, domains, e-mail addresses.

`IndicatorRepository.search_reports` looks for a searched entity among each report's words as
`_NAMES` in infrastructure/indicators.py computes them; this is a GIN index on that very
expression (columns unqualified), so the search is one index lookup instead of computing it for
every report. The two must stay identical, or the planner cannot use the index.

Built CONCURRENTLY, outside the migration's transaction, so reports can be added while it builds;
a failed build leaves an invalid index, so it is dropped first if it exists.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "scam_reports_names_idx"
_TEXT = "lower(title || ' ' || url || ' ' || body)"
NAMES = (
    "array_to_tsvector(array_remove(regexp_split_to_array(reverse(regexp_replace("
    rf"regexp_replace({_TEXT}, '\.(?!\w)', ' ', 'g') || ' ' || regexp_replace("
    rf"regexp_replace({_TEXT}, '\.(?!\w)|@', ' ', 'g'), '(\d)[\s().-]+(?=\d)', '\1', 'g'),"
    " '[[:alnum:]@.+_-]{254,}', ' ', 'g')), '[^[:alnum:]@.+_-]+'), ''))"
)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
        op.execute(f"CREATE INDEX CONCURRENTLY {INDEX} ON scam_reports USING gin (({NAMES}))")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
