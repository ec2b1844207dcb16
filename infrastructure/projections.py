"""The task projection table: TaskState rows, read and written inside the caller's transaction.

The meaning of every event lives in `domain.task.evolve`; this module only stores its result.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.task import TaskState
from infrastructure.raw_sql import RawStatement

_UPSERT_SQL = """
    INSERT INTO task_projection (
        task_id, tenant, kind, status, current_step, percent, verdict, score, confidence,
        reviewed_verdict, error, content_preview, submitted_at, finished_at, version, calls,
        submitted_by, updated_at)
    VALUES (
        :task_id, :tenant, :kind, :status, :current_step, :percent, :verdict, :score,
        :confidence, :reviewed_verdict, :error, :content_preview, :submitted_at, :finished_at,
        :version, CAST(:calls AS jsonb), :submitted_by, now())
    ON CONFLICT (task_id) DO UPDATE SET
        status = EXCLUDED.status, current_step = EXCLUDED.current_step,
        percent = EXCLUDED.percent, verdict = EXCLUDED.verdict, score = EXCLUDED.score,
        confidence = EXCLUDED.confidence, reviewed_verdict = EXCLUDED.reviewed_verdict,
        error = EXCLUDED.error, finished_at = EXCLUDED.finished_at,
        version = EXCLUDED.version, calls = EXCLUDED.calls,
        submitted_by = EXCLUDED.submitted_by, updated_at = now()
"""
# The live path evolves the row it read, and tenant, kind, content_preview and submitted_at come
# from TaskSubmitted alone: after version 1 they never change, so it leaves them (and `search`,
# generated from content_preview) as they are.
_UPSERT = sa.text(_UPSERT_SQL)
# Writing a state folded from the stream, not from the row (a rebuild, a row found missing or
# behind) must repair every column the fold gives, including those.
_FROM_TASK_SUBMITTED = """,
        tenant = EXCLUDED.tenant, kind = EXCLUDED.kind,
        content_preview = EXCLUDED.content_preview, submitted_at = EXCLUDED.submitted_at
"""
_REPLACE = sa.text(_UPSERT_SQL + _FROM_TASK_SUBMITTED)
# A rebuild must never replace a row that a live append has moved past meanwhile.
_REPLACE_IF_NEWER = sa.text(
    _UPSERT_SQL + _FROM_TASK_SUBMITTED + " WHERE task_projection.version <= EXCLUDED.version"
)
_SELECT = sa.text("SELECT * FROM task_projection WHERE task_id = :task_id")
# Waits for a rebuild or a prune holding the row, then reads the row as they committed it (in
# READ COMMITTED, a locking read returns the latest committed version, not the snapshot's).
_SELECT_FOR_UPDATE = sa.text(_SELECT.text + " FOR UPDATE")


async def load_task(conn: AsyncConnection, task_id: str) -> TaskState | None:
    """The task's row."""
    row = (await conn.execute(_SELECT, {"task_id": task_id})).mappings().first()
    return None if row is None else state_from_row(row)


async def replace_task(
    conn: AsyncConnection, state: TaskState, *, only_if_newer: bool = False
) -> None:
    """Write a state folded from the stream: every column. With `only_if_newer`, leave a row
    that is already at a later version."""
    await conn.execute(_REPLACE_IF_NEWER if only_if_newer else _REPLACE, row_from_state(state))


_RAW_SELECT_FOR_UPDATE = RawStatement(_SELECT_FOR_UPDATE)
_RAW_UPSERT = RawStatement(_UPSERT)
_RAW_REPLACE = RawStatement(_REPLACE)


async def load_task_raw(conn: asyncpg.Connection, task_id: str) -> TaskState | None:
    """The task's row, locked until the end of the caller's transaction."""
    row = await conn.fetchrow(_RAW_SELECT_FOR_UPDATE.sql, task_id)
    return None if row is None else state_from_row(row)


async def save_task_raw(
    conn: asyncpg.Connection, state: TaskState, *, every_column: bool = False
) -> None:
    """Write a state evolved from the task's row: the columns events after the first change.
    With `every_column`, a state folded from the stream (`replace_task`'s columns)."""
    statement = _RAW_REPLACE if every_column else _RAW_UPSERT
    await conn.execute(statement.sql, *statement.args(row_from_state(state)))


# The one-statement append (infrastructure/task_log.py) writes the row beside the events it
# inserts, from a state folded before PostgreSQL has recorded them: their `recorded_at` is not
# known yet. The fold gives those events this time instead, and the statement writes the time it
# recorded them at wherever it appears (submitted_at of a new task, finished_at of a last event).
UNRECORDED = datetime.min.replace(tzinfo=UTC)

# Every column of the row, in row_from_state's names, with its type.
_COLUMN_TYPES = {
    "task_id": "text", "tenant": "text", "kind": "text", "status": "text",
    "current_step": "text", "percent": "integer", "verdict": "text",
    "score": "double precision", "confidence": "double precision", "reviewed_verdict": "text",
    "error": "text", "content_preview": "text", "submitted_at": "timestamptz",
    "finished_at": "timestamptz", "version": "integer", "calls": "jsonb", "submitted_by": "text",
}  # fmt: skip
# What events after TaskSubmitted change (the live upsert's SET list, above).
_LATER_COLUMNS = (
    "status", "current_step", "percent", "verdict", "score", "confidence", "reviewed_verdict",
    "error", "finished_at", "version", "calls", "submitted_by",
)  # fmt: skip
_TIMES = ("submitted_at", "finished_at")


def _written_beside(new_task: bool) -> tuple[str, ...]:
    return tuple(_COLUMN_TYPES) if new_task else ("task_id", *_LATER_COLUMNS)


def write_beside_sql(first: int, *, new_task: bool, appended: str) -> str:
    """The row's write as a sub-statement of the append's (a CTE), done only when the CTE
    named `appended` inserted events; its parameters are `beside_args`', from `$first` on.

    A new task's row is inserted whole (replacing a stray row of the same id, as
    `replace_task` would); an existing task's row, which the caller holds locked at the
    version its state was folded at, gets the columns later events change."""
    columns = _written_beside(new_task)
    times = [name for name in _TIMES if name in columns]
    param = {name: f"${first + i}::{_COLUMN_TYPES[name]}" for i, name in enumerate(columns)}
    recorded = f"(SELECT recorded_at FROM {appended} LIMIT 1)"
    for i, name in enumerate(times, first + len(columns)):
        param[name] = f"CASE WHEN ${i}::boolean THEN {recorded} ELSE {param[name]} END"
    param["updated_at"] = "now()"
    if not new_task:
        sets = ", ".join(f"{name} = {param[name]}" for name in (*_LATER_COLUMNS, "updated_at"))
        return (
            f"UPDATE task_projection SET {sets}"
            f" WHERE task_id = {param['task_id']} AND EXISTS (SELECT 1 FROM {appended})"
        )
    names = [*columns, "updated_at"]
    replaced = ", ".join(f"{name} = EXCLUDED.{name}" for name in names if name != "task_id")
    return (
        f"INSERT INTO task_projection ({', '.join(names)})"
        f" SELECT {', '.join(param[name] for name in names)}"
        f" WHERE EXISTS (SELECT 1 FROM {appended})"
        f" ON CONFLICT (task_id) DO UPDATE SET {replaced}"
    )


def beside_args(state: TaskState, *, new_task: bool) -> list[Any]:
    """`write_beside_sql`'s parameters for the row of `state`, whose UNRECORDED times are the
    append's own."""
    row = row_from_state(state)
    columns = _written_beside(new_task)
    times = [name for name in _TIMES if name in columns]
    now = [row[name] == UNRECORDED for name in times]
    for name, is_now in zip(times, now, strict=True):
        if is_now:
            row[name] = None
    return [*(row[name] for name in columns), *now]


def row_from_state(state: TaskState) -> dict[str, Any]:
    return {
        "task_id": state.task_id,
        "tenant": state.tenant,
        "kind": state.kind,
        "status": state.status,
        "current_step": state.current_step,
        "percent": state.percent,
        "verdict": state.verdict,
        "score": state.score,
        "confidence": state.confidence,
        "reviewed_verdict": state.reviewed_verdict,
        "error": state.error,
        "content_preview": state.content_preview,
        "submitted_at": state.submitted_at,
        "submitted_by": state.submitted_by,
        "finished_at": state.finished_at,
        "version": state.version,
        "calls": json.dumps(
            {
                "completed": state.completed_calls,
                "started": sorted(state.started_calls),
                "failed_attempts": state.failed_attempts,
            },
            sort_keys=True,
        ),
    }


def state_from_row(row: Any) -> TaskState:
    calls = row["calls"]
    if isinstance(calls, str):  # jsonb as text: a plain asyncpg connection does not parse it
        calls = json.loads(calls)
    return TaskState(
        task_id=row["task_id"],
        tenant=row["tenant"],
        version=row["version"],
        status=row["status"],
        kind=row["kind"],
        submitted_at=row["submitted_at"],
        content_preview=row["content_preview"],
        submitted_by=row["submitted_by"] or "",
        current_step=row["current_step"],
        percent=row["percent"],
        verdict=row["verdict"],
        score=row["score"],
        confidence=row["confidence"],
        reviewed_verdict=row["reviewed_verdict"],
        finished_at=row["finished_at"],
        error=row["error"],
        completed_calls=dict(calls["completed"]),
        failed_attempts=int(calls["failed_attempts"]),
        started_calls=frozenset(calls["started"]),
    )
