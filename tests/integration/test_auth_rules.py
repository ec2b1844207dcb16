"""The rules behind the matrix: submitters see only their own tasks, sockets close at the token's
expiry, submissions are rate-limited per tenant, sockets per user are bounded, and developer
tokens verify against the api that shares their secret."""

from __future__ import annotations

import logging
import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.app import create_app
from api.dev_auth import dev_token
from infrastructure.settings import Settings
from tests.auth import bearer, token

pytestmark = pytest.mark.integration


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    limited = app_settings.model_copy(update={"submissions_per_minute": 3,
                                              "max_sockets_per_user": 2})  # fmt: skip
    with TestClient(create_app(limited)) as client:
        yield client


# Each test's own tenant: the rate counters live in Redis, which tests share.
TENANT = f"rules-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def own_tenant() -> None:
    global TENANT
    TENANT = f"rules-{uuid.uuid4().hex[:8]}"


def submit(client: TestClient, sub: str, tenant: str | None = None) -> str:
    tenant = tenant or TENANT
    response = client.post("/tasks", json={"content": f"pay {uuid.uuid4()}", "kind": "sms"},
                           headers=bearer(tenant=tenant, roles=["submitter"], sub=sub))  # fmt: skip
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def test_a_submitter_sees_only_its_own_tasks_an_analyst_all(client: TestClient) -> None:
    alices, bobs = submit(client, "alice"), submit(client, "bob")
    bob = bearer(tenant=TENANT, roles=["submitter"], sub="bob")
    assert client.get(f"/tasks/{alices}", headers=bob).status_code == 404
    assert client.get(f"/tasks/{alices}/timeline", headers=bob).status_code == 404
    assert client.post(f"/tasks/{alices}/cancel", headers=bob).status_code == 404
    assert [t["task_id"] for t in client.get("/tasks", headers=bob).json()["tasks"]] == [bobs]
    analyst = bearer(tenant=TENANT, roles=["analyst"], sub="carol")
    listed = {t["task_id"] for t in client.get("/tasks", headers=analyst).json()["tasks"]}
    assert listed == {alices, bobs}
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(
            f"/ws/agent-progress/{alices}?token={token(TENANT, ['submitter'], 'bob')}"
        ) as ws,
    ):
        while True:
            ws.receive_json()
    assert closed.value.code == 4404


def test_submissions_over_the_tenant_rate_are_429_with_retry_after(client: TestClient) -> None:
    for sub in ("a", "b", "c"):  # the limit is per tenant, whoever submits
        submit(client, sub)
    refused = client.post("/tasks", json={"content": "one more", "kind": "sms"},
                          headers=bearer(tenant=TENANT, roles=["submitter"], sub="d"))  # fmt: skip
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    submit(client, "a", tenant=TENANT + "-other")  # other tenants are not affected


def test_a_socket_closes_with_4401_when_its_token_expires(client: TestClient) -> None:
    task = submit(client, "alice")
    short = token(TENANT, ["analyst"], ttl_s=2)
    started = time.monotonic()
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(
            f"/ws/agent-progress/{task}", headers={"Authorization": f"Bearer {short}"}
        ) as ws,
    ):
        while True:
            ws.receive_json()
    assert closed.value.code == 4401
    assert 0.5 < time.monotonic() - started < 4  # at expiry, not at connect, not at idle (60 s)


def test_sockets_per_user_are_bounded(client: TestClient) -> None:
    task = submit(client, "alice")
    url = f"/ws/agent-progress/{task}?token={token(TENANT, ['analyst'], 'greedy')}"
    with client.websocket_connect(url) as one, client.websocket_connect(url) as two:
        assert one.receive_json()["step"] == two.receive_json()["step"] == "connected"
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(url) as ws:
            while True:
                ws.receive_json()
        assert closed.value.code == 4429


def test_a_too_large_body_is_413_before_it_is_read(client: TestClient) -> None:
    body = b'{"content": "' + b"x" * 3_000_000 + b'", "kind": "sms"}'
    response = client.post("/tasks", content=body, headers=bearer(roles=["submitter"]))
    assert response.status_code == 413


def test_dev_tokens_verify_with_the_shared_developer_secret(
    app_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret_file = tmp_path / ".scamtrail" / "dev-jwt-secret"
    dev = app_settings.model_copy(update={"jwt_secret": None,
                                          "dev_jwt_secret_file": str(secret_file)})  # fmt: skip
    value = dev_token(dev, ["analyst"], "demo", "dev")
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    with TestClient(create_app(dev)) as client:
        assert client.get("/tasks", headers=bearer(value)).status_code == 200
        assert client.get("/tasks", headers=bearer()).status_code == 401  # the test secret


def test_disabled_auth_warns_at_every_start(
    app_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    off = app_settings.model_copy(update={"auth_disabled": True})
    for _ in range(2):
        with caplog.at_level(logging.WARNING), TestClient(create_app(off)) as client:
            assert client.get("/tasks").status_code == 200
    warnings = [r for r in caplog.records if "AUTH IS DISABLED" in r.getMessage()]
    assert len(warnings) == 2 and all(r.levelno == logging.WARNING for r in warnings)
