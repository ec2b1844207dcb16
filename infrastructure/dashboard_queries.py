"""The analyst's dashboard: one tenant's last days, counted from the task projection and the log.

Bounded work whatever the tenant's size: the window is a range of `task_projection_tenant_idx`,
the log is read only for the window's most recent `MAX_TASKS` tasks (through the stream's own
key, `events_stream_version_key`), and every top-N list has a LIMIT. `sampled` says when the
log-based figures cover fewer tasks than the window holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MAX_DAYS = 90
MAX_TASKS = 5_000  # tasks whose events are read for the tool, indicator and brand figures
TOP = 10

# The outcome a task counts under: its final verdict (an analyst's, else the agent's), or
# `none` while it has none (still running, failed, cancelled).
OUTCOMES = ("scam", "suspicious", "safe", "none")

_BY_DAY = sa.text(
    """
    SELECT (submitted_at AT TIME ZONE 'UTC')::date AS day,
           coalesce(reviewed_verdict, verdict, 'none') AS outcome,
           count(*) AS tasks,
           count(*) FILTER (WHERE reviewed_verdict IS NOT NULL) AS reviewed,
           count(*) FILTER (WHERE reviewed_verdict IS DISTINCT FROM verdict
                              AND reviewed_verdict IS NOT NULL) AS overridden
    FROM task_projection
    WHERE tenant = :tenant AND submitted_at >= :since
    GROUP BY 1, 2
    """
)

# The window's most recent tasks, whose streams the figures below read.
_RECENT = """
    WITH recent AS (
        SELECT task_id FROM task_projection
        WHERE tenant = :tenant AND submitted_at >= :since
        ORDER BY submitted_at DESC, task_id DESC
        LIMIT :max_tasks
    )
"""

_TOOLS = sa.text(
    _RECENT
    + """
    SELECT e.data->>'tool' AS tool,
           count(*) FILTER (WHERE e.type = 'ToolCallCompleted') AS completed,
           count(*) FILTER (WHERE e.type = 'ToolCallFailed') AS failed,
           count(*) FILTER (WHERE e.type = 'ToolCallFailed'
                              AND e.data->>'timed_out' = 'true') AS timed_out,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY (e.data->>'duration_ms')::float)
               FILTER (WHERE e.type = 'ToolCallCompleted') AS p50_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY (e.data->>'duration_ms')::float)
               FILTER (WHERE e.type = 'ToolCallCompleted') AS p95_ms
    FROM recent JOIN events e ON e.stream_id = recent.task_id
    WHERE e.type IN ('ToolCallCompleted', 'ToolCallFailed')
    GROUP BY 1
    ORDER BY 1
    LIMIT :top
    """
)

# A tool output is read per its contract (domain.tools); anything else is skipped, not trusted.
_INDICATORS = sa.text(
    _RECENT
    + """
    SELECT m->>'kind' AS kind, m->>'value' AS value, count(DISTINCT e.stream_id) AS tasks
    FROM recent JOIN events e ON e.stream_id = recent.task_id
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(e.data->'output'->'matches') = 'array'
             THEN e.data->'output'->'matches' ELSE '[]'::jsonb END) AS m
    WHERE e.type = 'ToolCallCompleted' AND e.data->>'tool' = 'scam_database'
      AND jsonb_typeof(m) = 'object' AND m->>'value' IS NOT NULL
    GROUP BY 1, 2
    ORDER BY tasks DESC, value
    LIMIT :top
    """
)

# The brand a message claims to come from (domain.signals: the `impersonated_brand` signal).
_BRANDS = sa.text(
    _RECENT
    + """
    SELECT x->'details'->>'brand' AS brand, count(DISTINCT e.stream_id) AS tasks
    FROM recent JOIN events e ON e.stream_id = recent.task_id
    CROSS JOIN LATERAL jsonb_array_elements(e.data->'entities') AS x
    WHERE e.type = 'EntitiesExtracted' AND x->>'kind' = 'signal'
      AND x->>'value' = 'impersonated_brand' AND x->'details'->>'brand' IS NOT NULL
    GROUP BY 1
    ORDER BY tasks DESC, brand
    LIMIT :top
    """
)

# What verdicts rested on: the codes of their reasons.
_REASONS = sa.text(
    _RECENT
    + """
    SELECT r->>'code' AS code, count(DISTINCT e.stream_id) AS tasks
    FROM recent JOIN events e ON e.stream_id = recent.task_id
    CROSS JOIN LATERAL jsonb_array_elements(e.data->'reasons') AS r
    WHERE e.type = 'VerdictReached' AND (r->>'weight')::float > 0
    GROUP BY 1
    ORDER BY tasks DESC, code
    LIMIT :top
    """
)


@dataclass
class DayCount:
    day: date
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))


@dataclass
class ToolFigures:
    tool: str
    completed: int
    failed: int
    timed_out: int
    p50_ms: float | None
    p95_ms: float | None


@dataclass
class Dashboard:
    days: int
    since: datetime
    tasks: int
    reviewed: int
    overridden: int
    outcomes: dict[str, int]
    by_day: list[DayCount]
    tools: list[ToolFigures]
    indicators: list[tuple[str, str, int]]  # (kind, value, tasks)
    brands: list[tuple[str, int]]
    reasons: list[tuple[str, int]]
    sampled: bool  # the log-based figures cover only the window's MAX_TASKS newest tasks


async def dashboard(
    engine: AsyncEngine, tenant: str, days: int, *, now: datetime | None = None
) -> Dashboard:
    """`tenant`'s figures for the `days` days up to `now` (today counts as one, in UTC)."""
    days = max(1, min(days, MAX_DAYS))
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    params = {"tenant": tenant, "since": since, "max_tasks": MAX_TASKS, "top": TOP}
    async with engine.connect() as conn:
        # One snapshot for every figure, and nothing here may write.
        await conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        by_day = await _by_day(conn, params, first, days)
        tools = (await conn.execute(_TOOLS, params)).mappings().all()
        indicators = (await conn.execute(_INDICATORS, params)).all()
        brands = (await conn.execute(_BRANDS, params)).all()
        reasons = (await conn.execute(_REASONS, params)).all()
    outcomes = {o: sum(d.outcomes[o] for d in by_day[0]) for o in OUTCOMES}
    total = sum(outcomes.values())
    return Dashboard(
        days=days,
        since=since,
        tasks=total,
        reviewed=by_day[1],
        overridden=by_day[2],
        outcomes=outcomes,
        by_day=by_day[0],
        tools=[_tool(row) for row in tools],
        indicators=[(str(k), str(v), int(n)) for k, v, n in indicators],
        brands=[(str(b), int(n)) for b, n in brands],
        reasons=[(str(c), int(n)) for c, n in reasons],
        sampled=total > MAX_TASKS,
    )


async def _by_day(
    conn: AsyncConnection, params: dict[str, Any], first: date, days: int
) -> tuple[list[DayCount], int, int]:
    """Every day of the window (empty ones too), the reviewed count and the overridden count."""
    series = [DayCount(first + timedelta(days=i)) for i in range(days)]
    index = {d.day: d for d in series}
    reviewed = overridden = 0
    for row in (await conn.execute(_BY_DAY, params)).mappings():
        day = index.get(row["day"])
        outcome = row["outcome"] if row["outcome"] in OUTCOMES else "none"
        if day is not None:  # a task submitted "in the future" by a skewed clock is left out
            day.outcomes[outcome] += int(row["tasks"])
            reviewed += int(row["reviewed"])
            overridden += int(row["overridden"])
    return series, reviewed, overridden


def _tool(row: Any) -> ToolFigures:
    return ToolFigures(
        tool=str(row["tool"]),
        completed=int(row["completed"]),
        failed=int(row["failed"]),
        timed_out=int(row["timed_out"]),
        p50_ms=None if row["p50_ms"] is None else round(float(row["p50_ms"]), 1),
        p95_ms=None if row["p95_ms"] is None else round(float(row["p95_ms"]), 1),
    )
