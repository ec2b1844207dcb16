"""Values at the edges of what the log can hold are refused cleanly, never a 500; an
Idempotency-Key belongs to one caller, and an identical retry is the same task."""

from __future__ import annotations

import base64

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

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


async def test_idempotency_keys_of_callers_whose_names_hold_colons_never_meet(
    api: httpx.AsyncClient,
) -> None:
    # (tenant, sub, key) triples that read alike once joined with ':'
    same_tenant = [("t1", "a", "b:c"), ("t1", "a:b", "c")]
    across_tenants = [("x", "u", "user:v:k"), ("x:user:u", "v", "k")]
    for first, second in (same_tenant, across_tenants):
        ids = []
        for tenant, sub, key in (first, second):
            caller = bearer(tenant=tenant, roles=("submitter",), sub=sub)
            response = await submit(api, **caller, **{"Idempotency-Key": key})
            assert response.status_code == 202, response.text
            assert response.json()["created"] is True
            task_id = response.json()["task_id"]
            assert (await api.get(f"/tasks/{task_id}", headers=caller)).status_code == 200
            ids.append(task_id)
        assert ids[0] != ids[1]


async def test_a_keyed_task_of_another_caller_is_never_handed_back(
    api: httpx.AsyncClient, clean_database: AsyncEngine
) -> None:
    """Whatever names the task, the stored submission's owner is compared with the caller's:
    here the first event is rewritten to another tenant's, as a colliding scope would leave it."""
    alice = bearer(roles=("submitter",), sub="alice")
    task_id = (await submit(api, **alice, **{"Idempotency-Key": "k-owner"})).json()["task_id"]
    async with clean_database.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE events SET metadata = jsonb_set(metadata, '{tenant}', '\"other\"')"
                " WHERE stream_id = :id"
            ),
            {"id": task_id},
        )
        await conn.execute(
            sa.text("UPDATE task_projection SET tenant = 'other' WHERE task_id = :id"),
            {"id": task_id},
        )

    again = await submit(api, **alice, **{"Idempotency-Key": "k-owner"})
    assert again.status_code == 409, again.text
    assert task_id not in again.text


@pytest.mark.parametrize(
    "metadata",
    [
        b'{"amount": 1e23}',  # PostgreSQL's jsonb gives back the integer 10**23
        b'{"max": 1.7976931348623157e308, "tiny": 5e-324, "nested": [{"x": 1e22}]}',
    ],
)
async def test_an_identical_retry_is_the_same_task_whatever_jsonb_does_to_numbers(
    api: httpx.AsyncClient, metadata: bytes
) -> None:
    body = b'{"content": "pay now", "kind": "sms", "metadata": ' + metadata + b"}"
    headers = {"Idempotency-Key": "k-jsonb", "Content-Type": "application/json"}
    first = await api.post("/tasks", content=body, headers=headers)
    again = await api.post("/tasks", content=body, headers=headers)
    assert first.status_code == again.status_code == 202, again.text
    assert again.json()["task_id"] == first.json()["task_id"]
    assert again.json()["created"] is False


async def test_a_retry_of_a_submission_recorded_without_its_fingerprint_is_compared_as_before(
    api: httpx.AsyncClient, clean_database: AsyncEngine
) -> None:
    headers = {"Idempotency-Key": "k-legacy"}
    task_id = (await submit(api, **headers)).json()["task_id"]
    async with clean_database.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE events SET metadata = metadata - 'request_sha256' WHERE stream_id = :id"
            ),
            {"id": task_id},
        )
    again = await submit(api, **headers)
    assert (again.status_code, again.json()["task_id"]) == (202, task_id)
    other = await api.post("/tasks", json={"content": "other", "kind": "sms"}, headers=headers)
    assert other.status_code == 409


SURROGATE = '"\\ud800"'  # a lone surrogate, as JSON writes it: Python reads it, UTF-8 cannot
HOSTILE_SUBMISSIONS = [
    f'{{"content": "hi {SURROGATE[1:-1]} there"}}',
    f'{{"content": "hi", "metadata": {{"a": {SURROGATE}}}}}',
    f'{{"content": "hi", "metadata": {{{SURROGATE}: 1}}}}',
    f'{{"content": "hi", "metadata": {{"a": [{{"b": {SURROGATE}}}]}}}}',
    '{"content": "hi", "metadata": {"a": NaN}}',
    '{"content": "hi", "metadata": {"a": [Infinity]}}',
    '{"content": "hi", "metadata": {"a": -1e999}}',
    '{"content": "hi", "metadata": {"a": ' + "[" * 300 + "]" * 300 + "}}",
    '{"content": "hi", "metadata": {"a": ' + '{"b": ' * 40 + "1" + "}" * 40 + "}}",
    '{"content": ' + "[" * 600 + "]" * 600 + "}",
]


@pytest.mark.parametrize("body", HOSTILE_SUBMISSIONS)
async def test_what_the_log_cannot_hold_is_refused_with_422(
    api: httpx.AsyncClient, body: str
) -> None:
    response = await api.post(
        "/tasks", content=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] in (["body", "content"], ["body", "metadata"])


async def test_a_lone_surrogate_in_a_cancel_reason_or_review_note_is_422(
    api: httpx.AsyncClient,
) -> None:
    task_id = (await submit(api)).json()["task_id"]
    headers = {"Content-Type": "application/json"}
    for url, body in [
        (f"/tasks/{task_id}/cancel", f'{{"reason": {SURROGATE}}}'),
        (f"/tasks/{task_id}/reviews", f'{{"decision": "confirm", "note": {SURROGATE}}}'),
    ]:
        response = await api.post(url, content=body.encode(), headers=headers)
        assert response.status_code == 422, (url, response.text)
    assert (await api.get(f"/tasks/{task_id}")).json()["status"] == "submitted"


async def test_times_beyond_the_years_1_to_9999_in_utc_are_bounds_not_errors(
    api: httpx.AsyncClient,
) -> None:
    task_id = (await submit(api)).json()["task_id"]
    found = {
        "submitted_after=0001-01-01T00:00:00%2B01:00": [task_id],
        "submitted_before=9999-12-31T23:59:59-01:00": [task_id],
        "submitted_before=0001-01-01T00:00:00%2B01:00": [],
        "submitted_after=9999-12-31T23:59:59-01:00": [],
    }
    for query, expected in found.items():
        response = await api.get(f"/tasks?{query}")
        assert response.status_code == 200, (query, response.text)
        assert [t["task_id"] for t in response.json()["tasks"]] == expected, query


async def test_a_cursor_with_a_time_beyond_the_years_1_to_9999_in_utc_is_422(
    api: httpx.AsyncClient,
) -> None:
    for moment in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        cursor = base64.urlsafe_b64encode(f"{moment}|x".encode()).decode().rstrip("=")
        response = await api.get("/tasks", params={"cursor": cursor})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"][-1] == "cursor"


async def test_a_signed_token_with_an_expiry_beyond_any_date_is_401(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/tasks", headers=bearer(exp=10**20))
    assert response.status_code == 401, response.text


async def test_a_prune_age_beyond_a_century_is_422(api: httpx.AsyncClient) -> None:
    """A bad age is a 4xx naming the problem, never a 500."""
    response = await api.post(
        "/admin/tasks/prune", params={"older_than": "984114h"}, headers=bearer(roles=["admin"])
    )
    assert response.status_code == 422, response.text
    assert "longer than" in response.text
