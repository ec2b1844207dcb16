"""Which migration the database's schema is at: what /readyz compares with the code's head."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE


class SchemaProbe:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def revision(self) -> str | None:
        """The alembic revision the schema is at; None when no migration ever ran (no
        `alembic_version` table, or an empty one). Raises whatever reaching PostgreSQL raises."""
        try:
            async with self._engine.connect() as conn:
                current = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        except ProgrammingError as error:
            if getattr(error.orig, "pgcode", None) == UNDEFINED_TABLE:
                return None
            raise
        return None if current is None else str(current)
