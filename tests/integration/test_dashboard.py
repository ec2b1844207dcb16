"""GET /dashboard: one tenant's figures, counted from a known set of tasks; analysts only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from domain import events as ev
from domain.log import EventMetadata, NewEvent
from infrastructure.event_store import EventStore
from infrastructure.task_log import TaskLog
from tests.auth import bearer

pytestmark = pytest.mark.integration


def _lookup(call_id: str, value: str | None, ms: float) -> list[ev.DomainEvent]:
    matches = [{"kind": "domain", "value": value, "category": "phishing"}] if value else []
    return [
        ev.ToolCallStarted(call_id=call_id, tool="scam_database", step="scam_db", input={}),
        ev.ToolCallCompleted(
            call_id=call_id,
            tool="scam_database",
            step="scam_db",
            output={"matches": matches},
            duration_ms=ms,
        ),
    ]


def _run(
    verdict: ev.Verdict, *, brand: str | None, match: str | None, ms: float, web_fails: int
) -> list[ev.DomainEvent]:
    signal = ev.Entity(kind="signal", value="impersonated_brand", details={"brand": brand})
    events: list[ev.DomainEvent] = [ev.EntitiesExtracted(entities=(signal,) if brand else ())]
    events += _lookup("db:1", match, ms)
    events += [
        ev.ToolCallFailed(
            call_id="web",
            tool="web_search",
            step="exa_search",
            error="timeout",
            timed_out=True,
            attempt=n,
            will_retry=n < web_fails,
        )
        for n in range(1, web_fails + 1)
    ]
    reasons = [ev.Reason(code="scam_database_match", text="known", weight=0.8)] if match else []
    reasons.append(ev.Reason(code="tool_failed", text="web failed", weight=0.0))
    return [
        *events,
        ev.VerdictReached(verdict=verdict, score=0.5, confidence=0.5, reasons=tuple(reasons)),
        ev.TaskCompleted(verdict=verdict),
    ]


async def _task(log: TaskLog, task_id: str, tenant: str, *events: ev.DomainEvent) -> None:
    meta = EventMetadata(tenant=tenant, actor="worker")
    submitted = ev.TaskSubmitted(content=f"message {task_id}", kind="sms")
    await log.append(task_id, [NewEvent(e, meta) for e in (submitted, *events)], 0)


@pytest.fixture
async def known_tasks(store: EventStore) -> TaskLog:
    """Tenant `public`: 3 scams (2 USPS, 1 DHL; two match usps-pay.top, one dhl-fee.top), one
    suspicious overridden to safe, one safe, one still running, and one scam from 10 days ago.
    Tenant `acme` holds a scam of its own that `public` must never count."""
    log = TaskLog(store)
    scams = [("USPS", "usps-pay.top", 10.0), ("USPS", "usps-pay.top", 20.0),
             ("DHL", "dhl-fee.top", 30.0)]  # fmt: skip
    for n, (brand, match, ms) in enumerate(scams):
        events = _run("scam", brand=brand, match=match, ms=ms, web_fails=2)
        await _task(log, f"scam{n}", "public", *events)
    suspicious = _run("suspicious", brand=None, match=None, ms=40.0, web_fails=1)
    await _task(log, "sus", "public", *suspicious)
    review = ev.VerdictReviewed(decision="override", verdict="safe", note="known sender")
    analyst = EventMetadata(tenant="public", actor="ana")
    await log.append("sus", [NewEvent(review, analyst)], 1 + len(suspicious))
    await _task(log, "safe", "public", *_run("safe", brand=None, match=None, ms=50.0, web_fails=1))
    await _task(log, "running", "public")
    old = _run("scam", brand="FedEx", match="fedex.top", ms=1.0, web_fails=1)
    await _task(log, "old", "public", *old)
    acme = _run("scam", brand="Amazon", match="amzn.top", ms=999.0, web_fails=3)
    await _task(log, "elsewhere", "acme", *acme)
    async with store.transaction() as conn:
        await conn.execute(
            sa.text("UPDATE task_projection SET submitted_at = :at WHERE task_id = 'old'"),
            {"at": datetime.now(UTC) - timedelta(days=10)},
        )
    return log


async def test_the_figures_count_the_tenants_known_tasks(
    api: httpx.AsyncClient, known_tasks: TaskLog
) -> None:
    response = await api.get("/dashboard", params={"days": 7})
    assert response.status_code == 200, response.text
    board: dict[str, Any] = response.json()

    assert board["days"] == 7 and len(board["by_day"]) == 7
    assert board["tasks"] == 6, "the 10-day-old task and the other tenant's are left out"
    assert board["outcomes"] == {"scam": 3, "suspicious": 0, "safe": 2, "none": 1}
    assert (board["reviewed"], board["overridden"]) == (1, 1)
    today = board["by_day"][-1]
    assert today["day"] == datetime.now(UTC).date().isoformat()
    assert (today["scam"], today["safe"], today["none"]) == (3, 2, 1)
    assert sum(d["scam"] + d["safe"] + d["none"] for d in board["by_day"][:-1]) == 0

    assert board["top_indicators"] == [
        {"kind": "domain", "value": "usps-pay.top", "tasks": 2},
        {"kind": "domain", "value": "dhl-fee.top", "tasks": 1},
    ]
    assert board["top_brands"] == [{"name": "USPS", "tasks": 2}, {"name": "DHL", "tasks": 1}]
    assert board["top_reasons"] == [{"name": "scam_database_match", "tasks": 3}]
    tools = {t["tool"]: t for t in board["tools"]}
    assert tools["scam_database"]["completed"] == 5 and tools["scam_database"]["failed"] == 0
    assert tools["scam_database"]["p50_ms"] == 30.0
    assert tools["web_search"] == {
        "tool": "web_search", "completed": 0, "failed": 8, "timed_out": 8,
        "p50_ms": None, "p95_ms": None,
    }  # fmt: skip
    assert board["sampled"] is False

    month = (await api.get("/dashboard", params={"days": 30})).json()
    assert month["tasks"] == 7 and month["outcomes"]["scam"] == 4
    assert {"name": "FedEx", "tasks": 1} in month["top_brands"]


async def test_another_tenant_sees_only_its_own(
    api: httpx.AsyncClient, known_tasks: TaskLog
) -> None:
    acme = (await api.get("/dashboard", headers=bearer(tenant="acme", roles=["analyst"]))).json()
    assert acme["tasks"] == 1 and acme["outcomes"]["scam"] == 1
    assert acme["top_indicators"] == [{"kind": "domain", "value": "amzn.top", "tasks": 1}]
    assert acme["top_brands"] == [{"name": "Amazon", "tasks": 1}]
    nobody = (await api.get("/dashboard", headers=bearer(tenant="empty", roles=["analyst"]))).json()
    assert nobody["tasks"] == 0 and nobody["tools"] == [] and nobody["top_indicators"] == []
    assert all(d["scam"] == 0 for d in nobody["by_day"])


@pytest.mark.parametrize(
    ("roles", "status"), [(["submitter"], 403), (["admin"], 403), (["analyst"], 200)]
)
async def test_only_analysts_read_it(api: httpx.AsyncClient, roles: list[str], status: int) -> None:
    response = await api.get("/dashboard", headers=bearer(roles=roles))
    assert response.status_code == status


@pytest.mark.parametrize("days", [0, 91, "week"])
async def test_the_window_is_bounded(api: httpx.AsyncClient, days: int | str) -> None:
    response = await api.get("/dashboard", params={"days": days})
    assert response.status_code == 422
    assert [e["loc"][-1] for e in response.json()["detail"]] == ["days"]
