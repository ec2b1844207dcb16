"""Indicators per tenant, as events: one tenant's assertions never change another's verdicts,
re-posting never changes the global set, retractions and attribution are in the log, writes
are rate-limited, and a shared hosting platform is never a parent domain."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from domain import events as ev
from domain.indicators import GLOBAL_STREAM, tenant_stream
from domain.log import EventMetadata, NewEvent
from infrastructure.event_store import EventStore
from infrastructure.feeds import import_feed, parse_feed
from infrastructure.indicator_projection import rebuild_indicators
from infrastructure.indicators import IndicatorRepository
from infrastructure.projection_rebuild import rebuild_projections
from infrastructure.relay import Relay
from infrastructure.seed import load_seed
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from infrastructure.task_queries import visible_streams
from infrastructure.timeline import PendingEntries
from tests.auth import bearer
from tests.indicator_writes import assert_indicator
from tests.waiting import readable
from workers.analysis import Agent, run_analysis
from workers.toolbox import Toolbox, build_toolbox

pytestmark = pytest.mark.integration

BENIGN = {
    "bank": "Your monthly statement from Bank of America is ready at https://www.bankofamerica.com/statements",
    "gmail": "Lunch tomorrow at noon? Write to me at sam.jones@gmail.com if it suits you",
    "pages": "My new portfolio is up at https://someone.github.io/projects, have a look",
    "phone": "Hi, it's Dana from the dentist. Call us at (212) 555-0142 to move your appointment",
}  # fmt: skip


def tenant_name(label: str) -> str:
    """A tenant of this run only: rate-limit windows in Redis outlive a test."""
    return f"{label}-{uuid.uuid4().hex[:8]}"


def analyst(tenant: str, sub: str = "alice") -> dict[str, str]:
    return bearer(tenant=tenant, roles=["submitter", "analyst"], sub=sub)


def admin(tenant: str = "ops") -> dict[str, str]:
    return bearer(tenant=tenant, roles=["analyst", "admin"], sub="root")


@pytest.fixture
async def toolbox(app_settings: Settings, clean_database: AsyncEngine) -> AsyncIterator[Toolbox]:
    await load_seed(clean_database)
    box = build_toolbox(app_settings, clean_database)
    yield box
    await box.aclose()


@pytest.fixture
def agent(toolbox: Toolbox, app_settings: Settings, clean_database: AsyncEngine) -> Agent:
    return Agent(TaskLog(EventStore(clean_database)), toolbox.tools, app_settings)


async def analysed(
    api: httpx.AsyncClient, agent: Agent, headers: dict[str, str], content: str
) -> dict[str, Any]:
    """Submit `content` as the caller, run the real agent on it, return the task as read."""
    submitted = await api.post("/tasks", json={"content": content, "kind": "sms"}, headers=headers)
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json()["task_id"]
    assert await run_analysis(agent, task_id) == "completed"
    task = (await api.get(f"/tasks/{task_id}", headers=headers)).json()
    task["matches"] = await scam_db_matches(agent, task_id)
    return dict(task)


async def scam_db_matches(agent: Agent, task_id: str) -> list[dict[str, Any]]:
    return [
        match
        for recorded in await agent.log.store.read_stream(task_id)
        if isinstance(recorded.event, ev.ToolCallCompleted)
        and recorded.event.tool == "scam_database"
        for match in recorded.event.output["matches"]
    ]  # fmt: skip


async def post(
    api: httpx.AsyncClient, headers: dict[str, str], kind: str, value: str, **body: Any
) -> httpx.Response:
    json = {"kind": kind, "value": value, "category": body.pop("category", "phishing"), **body}
    return await api.post("/indicators", json=json, headers=headers)


async def test_one_tenant_s_assertions_never_change_another_tenant_s_verdicts(
    api: httpx.AsyncClient, agent: Agent
) -> None:
    a, b = tenant_name("a"), tenant_name("b")
    before = {name: await analysed(api, agent, analyst(b), text) for name, text in BENIGN.items()}

    for kind, value in (
        ("domain", "bankofamerica.com"),
        ("domain", "gmail.com"),
        ("domain", "github.io"),
        ("phone", "+1 212 555 0142"),
    ):
        added = await post(api, analyst(a), kind, value, report_count=1_000_000)
        assert added.status_code == 201, added.text
        assert added.json()["scope"] == "tenant"

    for name, text in BENIGN.items():
        after = await analysed(api, agent, analyst(b), text)
        assert after["matches"] == [], name
        assert (after["verdict"], after["score"]) == (
            before[name]["verdict"],
            before[name]["score"],
        ), name
        assert after["verdict"] != "scam", name
    # A's own analyses do see A's additions (but never a user site by its platform's name).
    own = {name: await analysed(api, agent, analyst(a), text) for name, text in BENIGN.items()}
    for name in ("bank", "gmail", "phone"):
        assert own[name]["verdict"] == "scam", name
        assert {m["scope"] for m in own[name]["matches"]} == {"tenant"}
    assert own["pages"]["matches"] == []
    # and a lookup by B over HTTP finds none of them
    for kind, value in (("domain", "bankofamerica.com"), ("phone", "+12125550142")):
        found = await api.get("/indicators", params={"kind": kind, "value": value},
                              headers=analyst(b))  # fmt: skip
        assert found.json() == {"matches": []}


async def test_re_posting_a_global_value_adds_a_tenant_assertion_and_leaves_the_global_one(
    api: httpx.AsyncClient,
) -> None:
    a, b = tenant_name("a"), tenant_name("b")
    made = await post(api, admin(), "domain", "evil-pay.top", scope="global", report_count=5)
    assert made.status_code == 201, made.text
    assert made.json()["scope"] == "global"

    again = await post(api, analyst(a), "domain", "evil-pay.top", category="harmless_test")
    assert again.status_code == 201
    assert again.json()["id"] != made.json()["id"]

    seen_by_b = await api.get("/indicators", params={"kind": "domain", "value": "evil-pay.top"},
                              headers=analyst(b))  # fmt: skip
    (only,) = seen_by_b.json()["matches"]
    assert (only["scope"], only["category"], only["report_count"]) == ("global", "phishing", 5)
    seen_by_a = await api.get("/indicators", params={"kind": "domain", "value": "evil-pay.top"},
                              headers=analyst(a))  # fmt: skip
    assert [(m["scope"], m["category"]) for m in seen_by_a.json()["matches"]] == [
        ("global", "phishing"),
        ("tenant", "harmless_test"),
    ]
    # An analyst cannot write the global set at all.
    refused = await post(api, analyst(a), "domain", "evil-pay.top", scope="global")
    assert refused.status_code == 403


async def test_a_retraction_is_an_event_and_refusals_are_4xx(
    api: httpx.AsyncClient, store: EventStore
) -> None:
    a, b = tenant_name("a"), tenant_name("b")
    assert (await post(api, analyst(a), "url", "https://pay-toll.top/a?b=1")).status_code == 201
    assert (await post(api, admin(), "phone", "+1 800 555 0199", scope="global")).status_code == 201
    url = "/indicators/url/" + "https%3A%2F%2Fpay-toll.top%2Fa%3Fb%3D1"

    assert (await api.delete(url, headers=analyst(b))).status_code == 404  # not in B's set
    assert (await api.delete(url, headers=bearer(tenant=a, roles=["submitter"]))).status_code == 403
    retracted = await api.delete(url, params={"reason": "false positive"}, headers=analyst(a))
    assert retracted.status_code == 200, retracted.text
    body = retracted.json()
    assert (body["value"], body["scope"], body["actor"]) == (
        "https://pay-toll.top/a?b=1",
        "tenant",
        "user:alice",
    )
    assert (await api.delete(url, headers=analyst(a))).status_code == 404  # gone already
    lookup = await api.get("/indicators", params={"kind": "url", "value": "https://pay-toll.top/a?b=1"},
                           headers=analyst(a))  # fmt: skip
    assert lookup.json() == {"matches": []}
    stream = await store.read_stream(tenant_stream(a))
    assert [r.type for r in stream] == ["IndicatorAsserted", "IndicatorRetracted"]
    assert stream[1].version == body["seq"]
    assert stream[1].event == ev.IndicatorRetracted(
        kind="url", value="https://pay-toll.top/a?b=1", reason="false positive"
    )
    assert (stream[1].metadata.tenant, stream[1].metadata.actor) == (a, "user:alice")

    phone = "/indicators/phone/+18005550199"
    assert (
        await api.delete(phone, params={"scope": "global"}, headers=analyst(a))
    ).status_code == 403
    assert (await api.delete(phone, headers=admin())).status_code == 404  # not the admin's tenant's
    by_admin = await api.delete(phone, params={"scope": "global"}, headers=admin())
    assert by_admin.status_code == 200 and by_admin.json()["scope"] == "global"
    assert (await api.delete("/indicators/phone/garbage", headers=analyst(a))).status_code == 422
    assert (await api.delete("/indicators/fax/123", headers=analyst(a))).status_code == 422
    assert (
        await api.delete(phone, params={"scope": "everyone"}, headers=admin())
    ).status_code == 422


async def test_the_audit_names_who_asserted_each_match(
    api: httpx.AsyncClient, agent: Agent, store: EventStore
) -> None:
    a = tenant_name("a")
    assert (
        await post(api, analyst(a, "bob"), "domain", "parcel-fee.top", source="abuse-desk")
    ).status_code == 201
    toll = parse_feed([b"toll-due.top\n"], "domains", category="toll_road")
    await import_feed(store.engine, toll, source="urlhaus", actor="cli:ops")

    task = await analysed(
        api, agent, analyst(a), "Pay at https://parcel-fee.top and https://toll-due.top now"
    )
    audit = (await api.get(f"/tasks/{task['task_id']}/audit", headers=analyst(a))).json()

    # Each is found twice: by the URL's host and by the domain.
    own = next(m for m in task["matches"] if m["value"] == "parcel-fee.top")
    fed = next(m for m in task["matches"] if m["value"] == "toll-due.top")
    assert own["scope"] == "tenant" and own["source"] == "abuse-desk"
    assert own["asserted"]["stream_id"] == tenant_stream(a)
    assert (own["asserted"]["tenant"], own["asserted"]["actor"]) == (a, "user:bob")
    assert fed["scope"] == "global" and fed["source"] == "urlhaus"
    assert (fed["asserted"]["stream_id"], fed["asserted"]["actor"]) == (GLOBAL_STREAM, "cli:ops")
    for match in (own, fed):  # the seq is the event that asserted it
        (recorded,) = await store.read_stream(match["asserted"]["stream_id"],
                                              match["asserted"]["seq"] - 1, limit=1)  # fmt: skip
        assert recorded.type in ("IndicatorAsserted", "IndicatorsImported")
        assert recorded.metadata.actor == match["asserted"]["actor"]
    texts = [r["text"] for r in audit["reasons"] if r["code"] == "scam_database_match"]
    assert any("asserted by user:bob of tenant " + a in text for text in texts), texts
    assert any("from urlhaus, asserted by cli:ops" in text for text in texts), texts
    cited = [
        match
        for reason in audit["reasons"]
        for event in reason["evidence"]
        if event["event_type"] == "ToolCallCompleted"
        for match in event["data"]["output"].get("matches", [])
    ]
    assert {m["asserted"]["actor"] for m in cited} >= {"user:bob", "cli:ops"}


@pytest.fixture
async def limited_api(app_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(app_settings.model_copy(update={"indicator_writes_per_minute": 3}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scamtrail") as client:
            yield client


async def test_indicator_writes_are_rate_limited_per_tenant(
    limited_api: httpx.AsyncClient, redis_url: str
) -> None:
    a, b = tenant_name("a"), tenant_name("b")
    redis = Redis.from_url(redis_url)
    try:
        await redis.delete(
            *[k async for k in redis.scan_iter(f"scamtrail:rate:indicators:{a}:*")] or ["none"]
        )
    finally:
        await redis.aclose()
    statuses = [
        (await post(limited_api, analyst(a), "domain", f"flood-{i}.top")).status_code
        for i in range(5)
    ]
    assert statuses == [201, 201, 201, 429, 429]
    refused = await post(limited_api, analyst(a), "domain", "flood-9.top")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # retractions count too; another tenant has its own budget
    assert (
        await limited_api.delete("/indicators/domain/flood-0.top", headers=analyst(a))
    ).status_code == 429
    assert (await post(limited_api, analyst(b), "domain", "flood-0.top")).status_code == 201


async def test_a_hosting_platform_is_never_a_parent_domain(clean_database: AsyncEngine) -> None:
    repo = IndicatorRepository(clean_database)
    for value in ("github.io", "blogspot.com", "evil.github.io", "co.uk"):
        await assert_indicator(clean_database, "domain", value, "phishing")

    def found(matches: list[dict[str, Any]]) -> list[str]:
        return [m["value"] for m in matches]

    assert found(await repo.lookup("domain", "someone.github.io", tenant=None)) == []
    assert found(await repo.lookup("domain", "a.b.someone.github.io", tenant=None)) == []
    assert found(await repo.lookup("url", "https://someone.github.io/x", tenant=None)) == []
    assert found(await repo.lookup("domain", "diary.blogspot.com", tenant=None)) == []
    assert found(await repo.lookup("domain", "shop.co.uk", tenant=None)) == []
    assert found(await repo.lookup("domain", "evil.github.io", tenant=None)) == ["evil.github.io"]
    assert found(await repo.lookup("domain", "login.evil.github.io", tenant=None)) == [
        "evil.github.io"
    ]
    assert found(await repo.lookup("domain", "github.io", tenant=None)) == ["github.io"]


async def test_indicator_events_stay_off_progress_channels_and_task_rebuilds(
    store: EventStore, app_settings: Settings, redis_url: str
) -> None:
    tenant = tenant_name("a")
    await assert_indicator(store.engine, "domain", "evil.top", "phishing", tenant=tenant)
    task_id = str(uuid.uuid4())
    submitted = ev.TaskSubmitted(content="hello", kind="sms")
    appended = await TaskLog(store).append(
        task_id, [NewEvent(submitted, EventMetadata(tenant=tenant, actor="t"))], 0
    )
    await readable(store, appended)  # the indicator's event was committed before it
    batch = [r for r in await store.read_all(limit=100) if r.metadata.tenant == tenant]
    assert {r.stream_id for r in batch} == {tenant_stream(tenant), task_id}

    redis = Redis.from_url(redis_url)
    published: list[tuple[str, str]] = []
    original = redis.pipeline

    def recording_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = original(*args, **kwargs)
        publish = pipe.publish

        def record(channel: str, message: Any) -> Any:
            published.append((channel, message if isinstance(message, str) else message.decode()))
            return publish(channel, message)

        pipe.publish = record
        return pipe

    redis.pipeline = recording_pipeline
    try:
        import asyncio

        entries = PendingEntries()
        await Relay(app_settings, store, redis)._publish(batch, asyncio.Event(), entries)
    finally:
        await redis.aclose()
    assert len(published) == 2  # the task's event, on its task and tenant channels only
    assert len(entries) == 1  # and the task's event only has a timeline entry
    assert all(task_id in message for _, message in published)
    assert not any(
        "indicators:" in channel or "Indicator" in message for channel, message in published
    )

    # No socket may follow an indicator stream as if it were a task.
    assert await visible_streams(store.engine, tenant, [tenant_stream(tenant), task_id]) == {
        task_id
    }
    # Rebuilding task rows skips indicator streams; rebuilding indicators gives the rows back.
    report = await rebuild_projections(store.engine)
    assert report.tasks == 1
    rebuilt = await rebuild_indicators(store.engine)
    assert (rebuilt.streams, rebuilt.rows) == (1, 1)


async def test_the_indicator_projection_rebuilds_from_the_log(store: EventStore) -> None:
    engine = store.engine
    await load_seed(engine)
    feed = parse_feed([f"host-{i}.scam.top\n".encode() for i in range(12_000)], "domains",
                      category="phishing")  # fmt: skip
    first = await import_feed(engine, feed, source="big")
    again = await import_feed(engine, feed, source="big")  # refreshes only
    assert (first.added, again.refreshed) == (12_000, 12_000)
    tenant = tenant_name("a")
    await assert_indicator(
        engine, "domain", "host-1.scam.top", "mine", tenant=tenant, report_count=3
    )
    await assert_indicator(engine, "domain", "gone.top", "mine", tenant=tenant)
    from infrastructure.indicator_log import IndicatorLog

    await IndicatorLog(store).retract(tenant_stream(tenant), "domain", "gone.top",
                                      metadata=EventMetadata(tenant=tenant, actor="t"))  # fmt: skip

    columns = (
        "kind, value, category, report_count, first_seen, last_seen, source, imported_at,"
        " expires_at, stream_id, asserted_seq, asserted_tenant, asserted_by, asserted_at"
    )

    async def rows() -> set[tuple[Any, ...]]:
        async with engine.connect() as conn:
            return {
                tuple(r)
                for r in await conn.execute(sa.text(f"SELECT {columns} FROM scam_indicators"))
            }

    live = await rows()
    report = await rebuild_indicators(engine)
    assert await rows() == live
    assert report.rows == len(live)
    imports = [r for r in await store.read_stream(GLOBAL_STREAM) if r.type == "IndicatorsImported"]
    assert len(imports) == 6  # two imports of 12,000 entries, 5,000 an event
