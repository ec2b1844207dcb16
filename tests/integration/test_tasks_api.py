"""Submitting, reading and cancelling tasks over HTTP (the app in-process, real PostgreSQL and
Redis; no worker runs here, so tasks stay where the api left them)."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from infrastructure.settings import Settings

pytestmark = pytest.mark.integration

SCAM = "URGENT: your parcel is held, pay 1.99 at http://usps-redelivery.top"


async def submit(api: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await api.post("/tasks", json={"content": SCAM, "kind": "sms", **body})


async def test_submit_records_the_task_and_enqueues_its_job(
    api: httpx.AsyncClient, app_settings: Settings
) -> None:
    response = await submit(api, metadata={"sender_region": "US"})

    assert response.status_code == 202, response.text
    accepted = response.json()
    task_id = accepted["task_id"]
    assert accepted["status"] == "submitted" and accepted["created"] is True
    assert accepted["links"]["websocket"] == f"/ws/agent-progress/{task_id}"
    assert response.headers["location"] == f"/tasks/{task_id}"

    task = (await api.get(f"/tasks/{task_id}")).json()
    assert (task["status"], task["kind"], task["percent"], task["version"]) == (
        "submitted", "sms", 0, 1,
    )  # fmt: skip
    redis = Redis.from_url(app_settings.redis_url)
    try:
        queued = await redis.zrange(app_settings.queue, 0, -1)
    finally:
        await redis.aclose()
    assert queued == [task_id.encode()]


async def test_the_same_idempotency_key_gives_the_same_task_once(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "client-retry-7"}
    first = await api.post("/tasks", json={"content": SCAM, "kind": "sms"}, headers=headers)
    again = await api.post("/tasks", json={"content": SCAM, "kind": "sms"}, headers=headers)

    assert first.status_code == again.status_code == 202
    assert first.json()["task_id"] == again.json()["task_id"]
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    assert (await api.get(f"/tasks/{first.json()['task_id']}")).json()["version"] == 1

    other = await api.post("/tasks", json={"content": "other", "kind": "sms"}, headers=headers)
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": "", "kind": "sms"}, "content"),
        ({"content": "   ", "kind": "sms"}, "content"),
        ({"content": "hi", "kind": "fax"}, "kind"),
        ({"kind": "sms"}, "content"),
    ],
)
async def test_bad_submissions_are_422_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    response = await api.post("/tasks", json=body)
    assert response.status_code == 422
    assert any(error["loc"][-1] == field for error in response.json()["detail"])


async def test_content_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    response = await api.post("/tasks", json={"content": "x" * 1024 * 1024, "kind": "text"})
    assert response.status_code == 413
    assert "limit is 65536" in response.json()["detail"]


async def test_cancel_then_cancel_again_is_409(api: httpx.AsyncClient) -> None:
    task_id = (await submit(api)).json()["task_id"]

    cancelled = await api.post(f"/tasks/{task_id}/cancel", json={"reason": "sent by mistake"})
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["current_step"]) == (
        "cancelled", "cancelled",
    )  # fmt: skip
    again = await api.post(f"/tasks/{task_id}/cancel")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]


async def test_unknown_task_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/tasks/no-such-task")).status_code == 404
    assert (await api.post("/tasks/no-such-task/cancel")).status_code == 404


async def test_probes(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "reasons": []}


async def test_a_nul_in_the_url_is_422_not_a_server_error(api: httpx.AsyncClient) -> None:
    for url in ("/tasks?q=pay%00now", "/tasks/abc%00def", "/tasks/abc/timeline?after=1%00"):
        response = await api.get(url)
        assert response.status_code == 422, (url, response.text)
        assert "NUL" in response.json()["detail"][0]["msg"]
