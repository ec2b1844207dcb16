"""Every route and socket x {no token, expired, bad signature, wrong audience, wrong role, other
tenant, right tenant} → the status or close code a client sees.

The routes come from `app.routes`: a route added without an entry in ROUTES (or in PUBLIC, with a
reason) fails `test_every_route_is_in_the_matrix`, so none can escape the matrix.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from api.app import create_app
from domain import events as ev
from domain.log import EventMetadata, NewEvent
from infrastructure.database import create_engine
from infrastructure.event_store import EventStore
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from tests.auth import token

pytestmark = pytest.mark.integration

AUD = "scamtrail-api"
HOME, ELSEWHERE = "public", "other-tenant"
# Served without a token on purpose: probes, scrapers, the schema, the console's static page
# (which holds no data; its script calls the api with the analyst's token).
PUBLIC = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/assets/{name}",
          "/", "/console/{name}"}  # fmt: skip


@dataclass(frozen=True)
class World:
    client: TestClient
    done: str  # a completed task of HOME, submitted by user:alice

    def fresh_indicator(self) -> str:
        """A domain indicator HOME's analyst just asserted, through the api."""
        value = f"fresh-{uuid.uuid4().hex[:12]}.top"
        response = self.client.post("/indicators", json={"kind": "domain", "value": value,
                                    "category": "phishing"}, headers=auth(["analyst"]))  # fmt: skip
        assert response.status_code == 201, response.text
        return value

    def fresh_task(self) -> str:
        """An unfinished task of HOME by alice, made through the api."""
        response = self.client.post("/tasks", json={"content": f"win {uuid.uuid4()}",
                                    "kind": "sms"}, headers=auth(["submitter"]))  # fmt: skip
        assert response.status_code == 202, response.text
        task_id: str = response.json()["task_id"]
        return task_id


@dataclass(frozen=True)
class Route:
    roles: tuple[str, ...]  # a token with any of these may call it
    call: Callable[[World, str], tuple[str, str, dict[str, Any]]]  # (method, url, httpx kwargs)
    ok: int  # the right tenant's status
    other: int  # another tenant's status: 404 where the url names a task of HOME

    @property
    def wrong_roles(self) -> list[str]:
        return [r for r in ("submitter", "analyst", "admin") if r not in self.roles]


def task_route(method: str, suffix: str, **kwargs: Any) -> Callable[..., Any]:
    return lambda w, case: (method, f"/tasks/{w.done}{suffix}", kwargs)


READERS = ("submitter", "analyst")
ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/tasks"): Route(("submitter",), lambda w, c: (
        "POST", "/tasks", {"json": {"content": "call +1 900 555 0100", "kind": "sms"}}), 202, 202),
    ("GET", "/tasks"): Route(READERS, lambda w, c: ("GET", "/tasks", {}), 200, 200),
    ("GET", "/tasks/{task_id}"): Route(READERS, task_route("GET", ""), 200, 404),
    ("GET", "/tasks/{task_id}/timeline"): Route(READERS, task_route("GET", "/timeline"), 200, 404),
    ("GET", "/tasks/{task_id}/audit"): Route(READERS, task_route("GET", "/audit"), 200, 404),
    ("GET", "/tasks/{task_id}/events"): Route(READERS, task_route("GET", "/events"), 200, 404),
    ("POST", "/tasks/{task_id}/cancel"): Route(READERS, lambda w, c: (
        "POST", f"/tasks/{w.fresh_task() if c == 'right' else w.done}/cancel", {}), 200, 404),
    ("POST", "/tasks/{task_id}/reviews"): Route(("analyst",), task_route(
        "POST", "/reviews", json={"decision": "confirm", "note": "ok"}), 201, 404),
    ("POST", "/indicators"): Route(("analyst",), lambda w, c: ("POST", "/indicators", {"json": {
        "kind": "phone", "value": "+1 800 555 0199", "category": "toll_road"}}), 201, 201),
    # Another tenant's analyst finds no such assertion in its own set: 404.
    ("DELETE", "/indicators/{kind}/{value:path}"): Route(("analyst",), lambda w, c: (
        "DELETE", f"/indicators/domain/{w.fresh_indicator()}", {}), 200, 404),
    ("GET", "/indicators"): Route((*READERS, "admin"), lambda w, c: (
        "GET", "/indicators", {"params": {"kind": "domain", "value": "example.com"}}), 200, 200),
    ("GET", "/dashboard"): Route(("analyst",), lambda w, c: ("GET", "/dashboard", {}), 200, 200),
    ("POST", "/admin/projections/rebuild"): Route(("admin",), lambda w, c: (
        "POST", "/admin/projections/rebuild", {}), 200, 200),
    # Another tenant's admin prunes everything of its own: HOME's finished task must survive.
    ("POST", "/admin/tasks/prune"): Route(("admin",), lambda w, c: (
        "POST", "/admin/tasks/prune", {"params": {"older_than": "0m" if c == "other" else "999d"}}
    ), 200, 200),
}  # fmt: skip
# MCP over streamable HTTP (api/mcp): the token is checked at the door (401) for every method;
# roles and tenants are checked by each tool, which answers a tool error (tests/integration/
# test_mcp.py), so any valid token opens a session.
MCP = {("GET", "/mcp"), ("POST", "/mcp"), ("DELETE", "/mcp")}
SOCKETS: dict[str, Callable[[World], str]] = {
    "/ws/agent-progress/{task_id}": lambda w: f"/ws/agent-progress/{w.done}",
    "/ws/tasks": lambda w: f"/ws/tasks?ids={w.done}",
}
CASES = ["no token", "expired", "bad signature", "wrong audience", "wrong role", "other", "right"]
STATUS = {"no token": 401, "expired": 401, "bad signature": 401, "wrong audience": 401,
          "wrong role": 403}  # fmt: skip
CLOSE = {"no token": 4401, "expired": 4401, "bad signature": 4401, "wrong audience": 4401,
         "wrong role": 4403, "other": 4404, "right": 1000}  # fmt: skip


def auth(roles: list[str] | tuple[str, ...], tenant: str = HOME, **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(tenant, roles, 'alice', **{'aud': AUD, **kw})}"}


def headers_for(case: str, roles: tuple[str, ...], wrong: list[str]) -> dict[str, str]:
    return {
        "no token": {},
        "expired": auth(roles, ttl_s=-30),
        "bad signature": auth(roles, secret="not-the-secret-" * 3),
        "wrong audience": auth(roles, aud="another-api"),
        "wrong role": auth(wrong),
        "other": auth(roles, ELSEWHERE),
        "right": auth(roles),
    }[case]


@pytest.fixture(scope="module")
def world(settings: Settings, redis_url: str) -> Iterator[World]:
    queue = f"scamtrail:test:{uuid.uuid4().hex}"
    app_settings = settings.model_copy(
        update={"redis_url": redis_url, "jwt_audience": AUD, "queue": queue}
    )
    with TestClient(create_app(app_settings)) as client:
        done = f"done-{uuid.uuid4()}"
        client.portal.call(_completed_task, app_settings, done)  # type: ignore[union-attr]
        yield World(client, done)


async def _completed_task(settings: Settings, task_id: str) -> None:
    engine = create_engine(settings, pool_size=1)
    try:
        meta = EventMetadata(tenant=HOME, actor="user:alice")
        events = [ev.TaskSubmitted(content="pay the toll", kind="sms"),
                  ev.VerdictReached(verdict="scam", score=0.9, confidence=0.8),
                  ev.TaskCompleted(verdict="scam")]  # fmt: skip
        await TaskLog(EventStore(engine)).append(task_id, [NewEvent(e, meta) for e in events], 0)
    finally:
        await engine.dispose()


def test_every_route_is_in_the_matrix(world: World) -> None:
    # FastAPI nests included routers; iter_route_contexts flattens them with their full paths.
    routes = list(iter_route_contexts(world.client.app.routes))  # type: ignore[attr-defined]
    http = {(m, r.path) for r in routes for m in (r.methods or ()) if m != "HEAD"}
    sockets = {r.path for r in routes if isinstance(r.route, WebSocketRoute)}
    assert len(http) > len(ROUTES)  # the walk found them all, public ones included
    missing = {k for k in http if k[1] not in PUBLIC} - ROUTES.keys() - MCP
    assert not missing, f"routes without an entry in the auth matrix: {sorted(missing)}"
    assert sockets == SOCKETS.keys()
    for path in PUBLIC & {p for _, p in http}:
        assert world.client.get(path.replace("{name}", "app.js")).status_code != 401


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("key", list(ROUTES), ids=lambda k: f"{k[0]} {k[1]}")
def test_route(world: World, key: tuple[str, str], case: str) -> None:
    route = ROUTES[key]
    method, url, kwargs = route.call(world, case)
    headers = headers_for(case, route.roles, route.wrong_roles)
    response = world.client.request(method, url, headers=headers, **kwargs)
    expected = STATUS.get(case) or (route.other if case == "other" else route.ok)
    assert response.status_code == expected, response.text
    if expected == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    if key == ("GET", "/tasks") and expected == 200:
        listed = {t["task_id"] for t in response.json()["tasks"]}
        assert (world.done in listed) == (case == "right")
    if key[1] == "/admin/tasks/prune":
        assert world.client.get(f"/tasks/{world.done}", headers=auth(READERS)).status_code == 200


@pytest.mark.parametrize("case", CASES)
def test_mcp(world: World, case: str) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "matrix", "version": "1"}}}  # fmt: skip
    headers = {**headers_for(case, READERS, ["admin"]),
               "Accept": "application/json, text/event-stream"}  # fmt: skip
    for method in sorted(m for m, _ in MCP):
        kwargs: dict[str, Any] = {"json": initialize} if method == "POST" else {}
        response = world.client.request(method, "/mcp", headers=headers, **kwargs)
        if STATUS.get(case) == 401:
            assert response.status_code == 401, (method, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
        else:  # past the door, whatever the roles: a session opens (POST), or is wanted (400)
            assert response.status_code == (200 if method == "POST" else 400), response.text


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("path", list(SOCKETS))
def test_socket(world: World, path: str, case: str) -> None:
    headers = headers_for(case, READERS, ["admin"])
    code, messages = close_code(world.client, SOCKETS[path](world), headers)
    assert code == CLOSE[case], messages
    if case == "right":
        assert [m.get("seq") for m in messages[1:]] == [1, 2, 3]


def close_code(client: TestClient, url: str, headers: dict[str, str]) -> tuple[int, list[Any]]:
    messages: list[Any] = []
    try:
        with client.websocket_connect(url, headers=headers) as ws:
            while True:
                messages.append(ws.receive_json())
    except WebSocketDisconnect as closed:
        return closed.code, messages
    except WebSocketDenialResponse as denied:  # refused before accept: a client sees no code
        return -denied.status_code, messages
