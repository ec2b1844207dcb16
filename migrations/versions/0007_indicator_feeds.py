"""Indicators imported from threat feeds: when each was imported, and when it stops counting.

`scamtrail indicators import` (infrastructure/feeds.py) stores a feed's entries with the time
of the import (`imported_at`) and, when asked, an expiry (`expires_at`, the import time plus
`--expire-after`); importing the feed again refreshes both. A lookup ignores a row whose expiry
has passed, so a feed that stops listing a value stops flagging it once its expiry runs out.
Rows added by hand or by the seed have neither: they never expire.

No new index: a lookup still reads its rows through the unique key (kind, value) and drops the
expired ones among them (a handful), and an import updates rows by the same key. Both columns
are nullable without a default, so adding them rewrites no row and holds the table's lock for
an instant only.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE scam_indicators"
        " ADD COLUMN imported_at timestamptz,"
        " ADD COLUMN expires_at timestamptz"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE scam_indicators DROP COLUMN expires_at, DROP COLUMN imported_at")
