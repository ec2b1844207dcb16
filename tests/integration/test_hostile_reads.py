"""Values at the edges of what the log can hold are refused cleanly, never a 500; an
Idempotency-Key belongs to one caller."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.auth import bearer

pytestmark = pytest.mark.integration


async def submit(api: httpx.AsyncClient, **headers: str) -> httpx.Response:
    return await api.post("/tasks", json={"content": "pay now", "kind": "sms"}, headers=headers)


async def test_a_seq_beyond_any_version_is_422(api: httpx.AsyncClient) -> None:
    task_id = (await submit(api)).json()["task_id"]
    for url in (
        f"/tasks/{task_id}/timeline?after=2147483648",
        f"/tasks/{task_id}/events?after=9999999999",
    ):
        response = await api.get(url)
        assert response.status_code == 422, (url, response.text)
    # and the store still serves the next request (no connection was thrown away)
    assert (await api.get(f"/tasks/{task_id}/timeline?after=2147483647")).json()["events"] == []


async def test_a_cursor_hiding_a_nul_is_422(api: httpx.AsyncClient) -> None:
    cursor = base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|\x00").decode().rstrip("=")
    response = await api.get("/tasks", params={"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "cursor"


async def test_an_idempotency_key_is_scoped_to_the_caller(api: httpx.AsyncClient) -> None:
    alice = bearer(roles=("submitter",), sub="alice")
    bob = bearer(roles=("submitter",), sub="bob")
    first = await submit(api, **alice, **{"Idempotency-Key": "k1"})
    again = await submit(api, **alice, **{"Idempotency-Key": "k1"})
    other = await submit(api, **bob, **{"Idempotency-Key": "k1"})

    assert first.json()["task_id"] == again.json()["task_id"]
    assert other.status_code == 202 and other.json()["created"] is True
    assert other.json()["task_id"] != first.json()["task_id"]
    assert (await api.get(f"/tasks/{other.json()['task_id']}", headers=bob)).status_code == 200
