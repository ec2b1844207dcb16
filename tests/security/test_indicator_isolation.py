"""Poisoning the scam indicators, against real processes (`scamtrail api` under uvicorn,
`scamtrail worker`, `scamtrail relay`, real PostgreSQL and Redis). An analyst of one tenant
posts bankofamerica.com (1,000,000 reports), gmail.com, github.io and a benign phone number:
another tenant's benign messages keep their verdict, because a tenant's assertions are its own
(one indicator stream per tenant). Re-posting a globally known value does not change its global
category, indicator writes are rate-limited per tenant, and every match names who asserted it."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.seed import load_seed
from tests.auth import token
from tests.e2e.progress_stack import (
    Process,
    child_env,
    free_port,
    processes,
    start_api,
    start_relay,
)
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

BENIGN = {
    "bank": "Your monthly statement from Bank of America is ready at https://www.bankofamerica.com/statements",
    "gmail": "Lunch tomorrow at noon? Write to me at sam.jones@gmail.com if it suits you",
    "pages": "My new portfolio is up at https://someone.github.io/projects, have a look",
    "phone": "Hi, it's Dana from the dentist. Call us at (212) 555-0142 to move your appointment",
}  # fmt: skip
ASSERTED = [
    ("domain", "bankofamerica.com"),
    ("domain", "gmail.com"),
    ("domain", "github.io"),
    ("phone", "+1 212 555 0142"),
]


@dataclass
class Stack:
    http: str
    ws: str


@pytest.fixture(scope="module")
def stack(
    migrated_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    port, logs = free_port(), tmp_path_factory.mktemp("indicator-isolation")
    env = child_env(
        database_url=migrated_database,
        redis_url=redis_url,
        queue=f"scamtrail:test:{uuid.uuid4().hex[:12]}",
        relay_lock_retry_s=0.2,
    )
    with processes() as started:
        started.append(start_relay(env, logs / "relay.log"))
        worker = [sys.executable, "-m", "api.cli", "worker"]
        started.append(Process(worker, env, logs / "worker.log"))
        started.append(start_api(env, port, logs / "api.log"))
        yield Stack(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}")


@pytest.fixture(scope="module")
async def seeded(engine: AsyncEngine) -> None:
    await load_seed(engine)  # the seed data's known indicators, as `scamtrail up` loads them


def headers(tenant: str, *roles: str, sub: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(tenant, list(roles), sub)}"}


def tenant_name(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def http(stack: Stack, seeded: None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.http, timeout=10) as client:
        yield client


async def verdict(http: httpx.AsyncClient, tenant: str, content: str) -> dict[str, Any]:
    """Submit as an analyst of `tenant` and wait for the worker's verdict."""
    caller = headers(tenant, "submitter", "analyst")
    answer = await http.post("/tasks", json={"content": content, "kind": "sms"}, headers=caller)
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["task_id"]

    async def view() -> dict[str, Any]:
        return dict((await http.get(f"/tasks/{task_id}", headers=caller)).json())

    return await eventually(
        view,
        until=lambda v: v["status"] in ("completed", "failed", "cancelled"),
        within=60,
        what=f"task {task_id} finished",
        interval=0.1,
    )


async def test_another_tenant_s_indicators_never_turn_my_benign_messages_into_scams(
    http: httpx.AsyncClient,
) -> None:
    a, b = tenant_name("attacker"), tenant_name("victim")
    before = {name: await verdict(http, b, text) for name, text in BENIGN.items()}

    for kind, value in ASSERTED:
        body = {"kind": kind, "value": value, "category": "phishing", "report_count": 1_000_000}
        posted = await http.post("/indicators", json=body, headers=headers(a, "analyst"))
        assert posted.status_code == 201, posted.text

    for name, text in BENIGN.items():
        after = await verdict(http, b, text)
        assert after["verdict"] != "scam", (name, after)
        assert (after["verdict"], after["score"]) == (
            before[name]["verdict"],
            before[name]["score"],
        ), name
    # A's own tasks see A's indicators: the scoping is per tenant, not a switch-off.
    assert (await verdict(http, a, BENIGN["bank"]))["verdict"] == "scam"
    # and B's lookups do not list A's additions
    for kind, value in ASSERTED:
        found = await http.get("/indicators", params={"kind": kind, "value": value},
                               headers=headers(b, "analyst"))  # fmt: skip
        assert found.json() == {"matches": []}, value


async def test_re_posting_never_changes_the_global_category(http: httpx.AsyncClient) -> None:
    a, b = tenant_name("attacker"), tenant_name("victim")
    value = f"known-{uuid.uuid4().hex[:8]}.top"
    made = await http.post(
        "/indicators",
        json={"kind": "domain", "value": value, "category": "phishing", "scope": "global"},
        headers=headers("ops", "admin", sub="root"),
    )
    assert made.status_code == 201, made.text
    overwrite = {"kind": "domain", "value": value, "category": "benign"}
    assert (await http.post("/indicators", json=overwrite,
                            headers=headers(a, "analyst"))).status_code == 201  # fmt: skip
    refused = await http.post("/indicators", json={**overwrite, "scope": "global"},
                              headers=headers(a, "analyst"))  # fmt: skip
    assert refused.status_code == 403

    seen = await http.get("/indicators", params={"kind": "domain", "value": value},
                          headers=headers(b, "analyst"))  # fmt: skip
    (match,) = seen.json()["matches"]
    assert (match["scope"], match["category"]) == ("global", "phishing")
    assert (match["asserted"]["tenant"], match["asserted"]["actor"]) == ("ops", "user:root")


async def test_indicator_posts_are_rate_limited(http: httpx.AsyncClient) -> None:
    """A tenant's 61st indicator write within a minute is a 429, however fast it posts."""
    # The limiter counts per wall-clock minute: a wait on the clock, as the window is one. The
    # 61 posts must not straddle two windows, so start in a fresh one if this one is ending.
    if 60 - time.time() % 60 < 15:
        await asyncio.sleep(60 - time.time() % 60 + 0.5)
    a = tenant_name("flood")
    statuses = []
    for i in range(61):
        body = {"kind": "domain", "value": f"flood-{i}.top", "category": "phishing"}
        answer = await http.post("/indicators", json=body, headers=headers(a, "analyst"))
        statuses.append(answer.status_code)
    assert statuses == [201] * 60 + [429]
    assert 1 <= int(answer.headers["retry-after"]) <= 60


async def test_the_audit_says_who_asserted_the_match(http: httpx.AsyncClient) -> None:
    a = tenant_name("analysts")
    value = f"parcel-{uuid.uuid4().hex[:8]}.top"
    body = {"kind": "domain", "value": value, "category": "parcel_delivery"}
    posted = await http.post("/indicators", json=body, headers=headers(a, "analyst", sub="bob"))
    assert posted.status_code == 201

    task = await verdict(http, a, f"Your parcel is held: pay the fee at https://{value}/pay")
    caller = headers(a, "analyst")
    audit = (await http.get(f"/tasks/{task['task_id']}/audit", headers=caller)).json()

    (reason,) = [r for r in audit["reasons"] if r["code"] == "scam_database_match"]
    assert f"asserted by user:bob of tenant {a}" in reason["text"]
    matches = [m for e in reason["evidence"] for m in e["data"]["output"]["matches"]]
    assert {(m["asserted"]["actor"], m["asserted"]["seq"]) for m in matches} == {("user:bob", 1)}


async def test_indicator_writes_never_reach_a_tenant_progress_socket(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    a = tenant_name("watchers")
    caller = headers(a, "submitter", "analyst")
    url = f"{stack.ws}/ws/tasks?tenant="
    async with websockets.connect(url, additional_headers=caller) as socket:
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["step"] == "connected"
        body = {"kind": "domain", "value": "quiet.top", "category": "phishing"}
        assert (await http.post("/indicators", json=body, headers=caller)).status_code == 201
        answer = await http.post("/tasks", json={"content": "hello there", "kind": "sms"},
                                 headers=caller)  # fmt: skip
        task_id = answer.json()["task_id"]
        first = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert (first["task_id"], first["event_type"], first["seq"]) == (
            task_id,
            "TaskSubmitted",
            1,
        )
    # nor can anyone follow an indicator stream as a task
    stream = f"{stack.ws}/ws/agent-progress/indicators:tenant:{a}"
    async with websockets.connect(stream, additional_headers=caller) as socket:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(socket.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
