"""Reads of tasks for the use cases: one tenant's tasks, filtered, newest first,
keyset-paginated; one task; which streams a caller may follow; how many reviews a task holds.

Every query names the tenant in its WHERE clause, and the submitter when the caller may only see
its own tasks: scoping happens in the database, not after."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.task import TaskState
from infrastructure import raw_sql
from infrastructure.projections import state_from_row
from infrastructure.raw_sql import RawStatement


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class TaskFilter:
    status: str | None = None
    verdict: str | None = None  # the final verdict: the analyst's if reviewed, else the agent's
    reviewed: bool | None = None
    submitted_after: datetime | None = None
    submitted_before: datetime | None = None
    text: str | None = None


def encode_cursor(state: TaskState) -> str:
    raw = f"{state.submitted_at.isoformat()}|{state.task_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, task_id = raw.split("|", 1)
        if "\x00" in task_id:  # PostgreSQL text cannot hold NUL: refuse, don't fail
            raise ValueError("NUL in cursor")
        return _utc(datetime.fromisoformat(moment)), task_id
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise BadCursor("cursor is not one this api returned; start again without it") from None


_EARLIEST, _LATEST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    """`moment` in UTC, the zone the database compares in (a naive time is taken as UTC).
    OverflowError when that falls outside the years 1-9999, as 0001-01-01T00:00+01:00 does:
    the driver would fail on it ("date value out of range")."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _bound(moment: datetime) -> datetime:
    """A filter's time in UTC, held to the years 1-9999: a bound beyond them means 'from the
    beginning' or 'to the end', which is what the clamped value says."""
    try:
        return _utc(moment)
    except OverflowError:
        return _EARLIEST if moment.year == 1 else _LATEST


async def list_tasks(
    engine: AsyncEngine,
    tenant: str,
    where: TaskFilter,
    *,
    cursor: str | None,
    limit: int,
    submitted_by: str | None = None,
) -> tuple[list[TaskState], str | None]:
    """One page of the tenant's tasks (only `submitted_by`'s, when given) and the cursor of the
    next page (None at the end)."""
    clauses = ["tenant = :tenant"]
    params: dict[str, Any] = {"tenant": tenant, "limit": limit + 1}
    if submitted_by is not None:
        clauses.append("submitted_by = :submitted_by")
        params["submitted_by"] = submitted_by
    if where.status:
        clauses.append("status = :status")
        params["status"] = where.status
    if where.verdict:
        clauses.append("coalesce(reviewed_verdict, verdict) = :verdict")
        params["verdict"] = where.verdict
    if where.reviewed is not None:
        clauses.append(
            "reviewed_verdict IS NOT NULL" if where.reviewed else "reviewed_verdict IS NULL"
        )
    if where.submitted_after:
        clauses.append("submitted_at >= :after")
        params["after"] = _bound(where.submitted_after)
    if where.submitted_before:
        clauses.append("submitted_at < :before")
        params["before"] = _bound(where.submitted_before)
    if where.text:
        clauses.append("search @@ websearch_to_tsquery('simple', :text)")
        params["text"] = where.text
    if cursor:
        params["c_at"], params["c_id"] = decode_cursor(cursor)
        clauses.append("(submitted_at, task_id) < (:c_at, :c_id)")
    query = sa.text(
        "SELECT * FROM task_projection WHERE " + " AND ".join(clauses)
        + " ORDER BY submitted_at DESC, task_id DESC LIMIT :limit"
    )  # fmt: skip
    async with engine.connect() as conn:
        rows = (await conn.execute(query, params)).mappings().all()
    states = [state_from_row(row) for row in rows[:limit]]
    more = len(rows) > limit
    return states, encode_cursor(states[-1]) if more and states else None


# Every read of a task by id starts here (GET /tasks/{id}, its timeline, audit, a review, the
# status after a submission): one round trip on plain asyncpg, not a BEGIN, SELECT and ROLLBACK.
_TENANT_TASK = RawStatement(
    sa.text(
        "SELECT * FROM task_projection WHERE task_id = :task_id AND tenant = :tenant"
        " AND (CAST(:submitted_by AS text) IS NULL OR submitted_by = :submitted_by)"
    )
)


async def tenant_task(
    engine: AsyncEngine, tenant: str, task_id: str, *, submitted_by: str | None = None
) -> TaskState | None:
    """The task if it belongs to `tenant` (and was submitted by `submitted_by`, when given);
    None for a missing task and for anyone else's."""
    params = {"task_id": task_id, "tenant": tenant, "submitted_by": submitted_by}
    rows = await raw_sql.fetch(engine, _TENANT_TASK.sql, *_TENANT_TASK.args(params))
    return state_from_row(rows[0]) if rows else None


# Streams are followed straight from the log (a socket may open before any projection row
# exists), so the ownership check reads the stream's first event, with the scope in the query.
# Only a task's stream (it starts with TaskSubmitted) is followed: never an indicator stream.
_VISIBLE_STREAMS = sa.text(
    """
    SELECT stream_id FROM events
    WHERE stream_id = ANY(:ids) AND version = 1 AND type = 'TaskSubmitted'
      AND metadata->>'tenant' = :tenant
      AND (CAST(:submitted_by AS text) IS NULL OR metadata->>'actor' = :submitted_by)
    """
)


async def visible_streams(
    engine: AsyncEngine, tenant: str, task_ids: list[str], *, submitted_by: str | None = None
) -> set[str]:
    """Which of `task_ids` the caller may follow: its tenant's (and its own, when given)."""
    params = {"ids": task_ids, "tenant": tenant, "submitted_by": submitted_by}
    async with engine.connect() as conn:
        return set((await conn.scalars(_VISIBLE_STREAMS, params)).all())


_COUNT_REVIEWS = sa.text(
    "SELECT count(*) FROM events WHERE stream_id = :task_id AND type = 'VerdictReviewed'"
)


class TaskQueries:
    """The task reads above over one engine, for the use cases (api/application)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(
        self,
        tenant: str,
        where: TaskFilter,
        *,
        cursor: str | None,
        limit: int,
        submitted_by: str | None = None,
    ) -> tuple[list[TaskState], str | None]:
        """`list_tasks`: one page and the next page's cursor. `BadCursor` for a foreign one."""
        return await list_tasks(
            self._engine, tenant, where, cursor=cursor, limit=limit, submitted_by=submitted_by
        )

    async def task(
        self, tenant: str, task_id: str, *, submitted_by: str | None = None
    ) -> TaskState | None:
        """`tenant_task`: the task if the tenant (and the submitter, when given) may see it."""
        return await tenant_task(self._engine, tenant, task_id, submitted_by=submitted_by)

    async def followable(
        self, tenant: str, task_ids: list[str], *, submitted_by: str | None = None
    ) -> set[str]:
        """`visible_streams`: which of `task_ids` the caller may follow."""
        return await visible_streams(self._engine, tenant, task_ids, submitted_by=submitted_by)

    async def review_count(self, task_id: str) -> int:
        """How many VerdictReviewed events the task's stream holds."""
        async with self._engine.connect() as conn:
            return int((await conn.execute(_COUNT_REVIEWS, {"task_id": task_id})).scalar_one())
