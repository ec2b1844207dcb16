"""Read APIs over the projection and the log: list, timeline, audit, reviews; and the rebuild."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from api.schemas import TimelineEntry, TimelinePage
from domain import events as ev
from domain.log import EventMetadata, NewEvent
from infrastructure.event_store import EventStore
from infrastructure.projection_rebuild import rebuild_projections
from infrastructure.task_log import TaskLog

pytestmark = pytest.mark.integration

PUBLIC = EventMetadata(tenant="public", actor="worker")


def new(*events: ev.DomainEvent) -> list[NewEvent]:
    return [NewEvent(e, PUBLIC) for e in events]


def finished_run(verdict: ev.Verdict = "scam") -> list[ev.DomainEvent]:
    """A plausible completed analysis, with a reason citing the tool output at seq 4."""
    entity = ev.Entity(kind="domain", value="usps-redelivery.top")
    return [
        ev.EntitiesExtracted(entities=(entity,)),
        ev.ToolCallStarted(
            call_id="db:usps", tool="scam_database", step="scam_db", input={"value": "x"}
        ),
        ev.ToolCallCompleted(
            call_id="db:usps",
            tool="scam_database",
            step="scam_db",
            output={"matches": []},
            duration_ms=12.5,
        ),
        ev.ToolCallFailed(
            call_id="web",
            tool="web_search",
            step="exa_search",
            error="timeout",
            timed_out=True,
        ),
        ev.VerdictReached(
            verdict=verdict,
            score=0.9,
            confidence=0.7,
            reasons=(
                ev.Reason(code="lookalike", text="looks like usps", weight=0.6, evidence=(4,)),
            ),
        ),
        ev.TaskCompleted(verdict=verdict),
    ]


async def make_task(
    log: TaskLog, task_id: str, *events: ev.DomainEvent, content: str = "x"
) -> None:
    submitted = ev.TaskSubmitted(content=content, kind="sms")
    await log.append(task_id, new(submitted, *events), 0)


@pytest.fixture
def task_log(store: EventStore) -> TaskLog:
    return TaskLog(store)


async def test_list_filters_and_pages_newest_first(
    api: httpx.AsyncClient, task_log: TaskLog
) -> None:
    for i in range(7):
        events = finished_run("scam" if i % 2 else "safe") if i < 5 else []
        await make_task(task_log, f"t{i}", *events, content=f"parcel message number{i}")
    await make_task(task_log, "other-tenant", content="parcel")  # tenant public, see below
    async with task_log.store.transaction() as conn:
        await conn.execute(
            sa.text("UPDATE task_projection SET tenant = 'acme' WHERE task_id = 'other-tenant'")
        )

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/tasks", params=params)).json()
        seen += [t["task_id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"t{i}" for i in reversed(range(7))], "newest first, each once, no other tenant"

    scams = (await api.get("/tasks", params={"verdict": "scam"})).json()["tasks"]
    assert sorted(t["task_id"] for t in scams) == ["t1", "t3"]
    running = (await api.get("/tasks", params={"status": "submitted"})).json()["tasks"]
    assert sorted(t["task_id"] for t in running) == ["t5", "t6"]
    found = (await api.get("/tasks", params={"q": "number4"})).json()["tasks"]
    assert [t["task_id"] for t in found] == ["t4"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"status": "exploded"}, "status"),
        ({"verdict": "maybe"}, "verdict"),
        ({"limit": 0}, "limit"),
        ({"submitted_after": "yesterday"}, "submitted_after"),
        ({"reviewed": "perhaps"}, "reviewed"),
    ],
)
async def test_bad_filters_are_422_naming_the_field(
    api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await api.get("/tasks", params=params)
    assert response.status_code == 422
    assert [e["loc"][-1] for e in response.json()["detail"]] == [field]


async def test_timeline_of_a_50000_event_task_pages_every_event_once_in_order(
    api: httpx.AsyncClient, task_log: TaskLog
) -> None:
    await make_task(task_log, "long")
    for start in range(1, 50_000, 1000):
        progress = [ev.ProgressReported(message=f"m{i}", percent=50) for i in range(1000)]
        await task_log.store.append("long", new(*progress[: 50_000 - start]), start)

    seqs: list[int] = []
    after: int | None = 0
    while after is not None:
        page = (
            await api.get("/tasks/long/timeline", params={"after": after, "limit": 1000})
        ).json()
        seqs += [e["seq"] for e in page["events"]]
        after = page["next_after"]
    assert seqs == list(range(1, 50_001))


async def test_audit_cites_the_events_of_the_timeline(
    api: httpx.AsyncClient, task_log: TaskLog
) -> None:
    await make_task(task_log, "a1", *finished_run())
    audit = (await api.get("/tasks/a1/audit")).json()
    timeline = {e["seq"]: e for e in (await api.get("/tasks/a1/timeline")).json()["events"]}

    assert audit["verdict"]["agent"] == audit["verdict"]["final"] == "scam"
    (reason,) = audit["reasons"]
    (cited,) = reason["evidence"]
    assert cited["data"] == timeline[cited["seq"]]["data"]
    assert cited["data"]["output"] == {"matches": []}
    assert audit["entities"] == [{"kind": "domain", "value": "usps-redelivery.top", "details": {}}]
    (failure,) = audit["tool_failures"]
    assert (failure["tool"], failure["timed_out"], failure["seqs"]) == ("web_search", True, [5])


async def test_review_confirm_override_and_409_before_the_verdict(
    api: httpx.AsyncClient, task_log: TaskLog
) -> None:
    await make_task(task_log, "open")
    early = await api.post("/tasks/open/reviews", json={"decision": "confirm"})
    assert early.status_code == 409

    await make_task(task_log, "done", *finished_run("scam"))
    confirmed = await api.post("/tasks/done/reviews", json={"decision": "confirm", "note": "ok"})
    assert confirmed.status_code == 201
    same = await api.post("/tasks/done/reviews", json={"decision": "override", "verdict": "scam"})
    assert same.status_code == 422
    overridden = await api.post(
        "/tasks/done/reviews",
        json={"decision": "override", "verdict": "safe", "note": "the sender is our own bank"},
    )
    task = overridden.json()
    assert (task["verdict"], task["reviewed_verdict"], task["final_verdict"]) == (
        "scam", "safe", "safe",
    )  # fmt: skip
    reviews = (await api.get("/tasks/done/audit")).json()["reviews"]
    assert [(r["decision"], r["verdict"]) for r in reviews] == [
        ("confirm", "scam"), ("override", "safe"),
    ]  # fmt: skip
    reviewed = (await api.get("/tasks", params={"reviewed": "true"})).json()["tasks"]
    assert [t["task_id"] for t in reviewed] == ["done"]


async def test_rebuild_gives_exactly_the_live_rows(task_log: TaskLog) -> None:
    engine = task_log.store.engine
    await make_task(task_log, "completed", *finished_run("scam"))
    await make_task(task_log, "failed", ev.EntitiesExtracted(), ev.TaskFailed(error="no tools"))
    await make_task(task_log, "cancelled", ev.EntitiesExtracted(), ev.TaskCancelled(reason="oops"))
    await make_task(task_log, "running", ev.EntitiesExtracted())
    await make_task(
        task_log, "reviewed", *finished_run("suspicious"),
        ev.VerdictReviewed(decision="override", verdict="scam", note="known campaign"),
    )  # fmt: skip

    async def snapshot() -> list[Any]:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.text("SELECT * FROM task_projection ORDER BY task_id"))
            return [{k: v for k, v in r._mapping.items() if k != "updated_at"} for r in rows]

    live = await snapshot()
    assert (await rebuild_projections(engine)).changed == 0
    assert await snapshot() == live

    async with engine.begin() as conn:  # damage the projection: one row wrong, one missing
        await conn.execute(
            sa.text("UPDATE task_projection SET status = 'running' WHERE task_id = 'failed'")
        )
        await conn.execute(sa.text("DELETE FROM task_projection WHERE task_id = 'reviewed'"))
    elsewhere = await rebuild_projections(engine, tenant="another-tenant")
    assert (elsewhere.tasks, elsewhere.changed, elsewhere.removed) == (0, 0, 0)
    report = await rebuild_projections(engine, tenant="public", batch=2)
    assert (report.tasks, report.changed) == (5, 2)
    assert await snapshot() == live


async def test_a_timeline_page_is_the_documented_timeline_page(
    api: httpx.AsyncClient, task_log: TaskLog
) -> None:
    """The page is built as plain data and serialized in one pass: it must still be exactly
    what the OpenAPI schema (TimelinePage) says, every field of every entry, in its order, with
    a tool call's duration."""
    await make_task(task_log, "documented")
    await task_log.store.append("documented", new(*finished_run()), 1)
    response = await api.get("/tasks/documented/timeline")
    assert response.status_code == 200
    page = TimelinePage.model_validate_json(response.content)
    assert page.model_dump(mode="json") == response.json()
    assert list(response.json()["events"][0]) == list(TimelineEntry.model_fields)
    timed = [e for e in page.events if e.event_type == "ToolCallCompleted"]
    assert [e.duration_ms for e in timed] == [12.5]
