"""The words each scam report names, stored in a generated column, `names`, indexed.

`IndicatorRepository.search_reports` looks for a searched entity among each report's words
(phone numbers, domains, e-mail addresses). 0008 indexed the expression that computes them, but
the planner cannot see what that expression costs (regular expressions over the whole report,
about 0.1 ms a row): on a table of a few hundred reports it computed it for every report
rather than read the index (28 ms for the seed's 240, against 0.5 ms), so the search had to
turn sequential scans off in a transaction of its own: four round trips per search. Stored,
the words cost a search nothing to compute, whichever path the planner takes; the search is one
statement. The column's GIN index replaces the expression index, under the same name.

Adding a stored generated column rewrites the table under an exclusive lock: reports cannot be
read or added while it runs. The index is built concurrently.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "scam_reports_names_idx"
BUILDING = "scam_reports_names_building_idx"
# A report's words as exact lexemes, each reversed: lower-cased, split on anything but letters,
# digits and `@.+_-`, a final dot (a sentence's end) dropped, so a domain, an address and an
# E.164 number are one word each; then once more with `@` a separator (an address's domain is a
# word) and a number's digits joined across spaces, brackets, dots and hyphens ("(833) 555-0164"
# is also "8335550164"). Reversed, every subdomain of a domain is one prefix ("pay.x.top" is
# "pot.x.yap", under "pot.x."). Runs of 254 characters or more (longer than any host) are left
# out, as a lexeme's size is bounded. The expression of 0008, whose index this replaces.
_TEXT = "lower(title || ' ' || url || ' ' || body)"
NAMES = (
    "array_to_tsvector(array_remove(regexp_split_to_array(reverse(regexp_replace("
    rf"regexp_replace({_TEXT}, '\.(?!\w)', ' ', 'g') || ' ' || regexp_replace("
    rf"regexp_replace({_TEXT}, '\.(?!\w)|@', ' ', 'g'), '(\d)[\s().-]+(?=\d)', '\1', 'g'),"
    " '[[:alnum:]@.+_-]{254,}', ' ', 'g')), '[^[:alnum:]@.+_-]+'), ''))"
)


def _replace_index(definition: str) -> None:
    """Build the new index beside the old one, then swap: searches keep an index throughout."""
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {BUILDING}")
        op.execute(f"CREATE INDEX CONCURRENTLY {BUILDING} ON scam_reports USING gin ({definition})")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
        op.execute(f"ALTER INDEX {BUILDING} RENAME TO {INDEX}")


def upgrade() -> None:
    op.execute(
        f"ALTER TABLE scam_reports ADD COLUMN names tsvector GENERATED ALWAYS AS ({NAMES}) STORED"
    )
    _replace_index("names")


def downgrade() -> None:
    _replace_index(f"({NAMES})")
    op.execute("ALTER TABLE scam_reports DROP COLUMN names")
