"""Schemathesis against the api's own OpenAPI schema, with a valid token: no 5xx, and every
response conforms to the schema (status documented, body and headers as declared).

The api runs under uvicorn in its own process, as in production (an in-process ASGI client would
run requests on a loop other than the one the app's lifespan opened its pools on)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.auth import token
from tests.e2e.progress_stack import child_env, free_port, processes, start_api

pytestmark = pytest.mark.integration

EXAMPLES = 60  # per operation: ~15 operations, ~15 s in all


@pytest.fixture(scope="module")
def api_url(migrated_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[str]:  # fmt: skip
    port, logs = free_port(), tmp_path_factory.mktemp("fuzz")
    env = child_env(database_url=migrated_database, redis_url=redis_url,
                    submissions_per_minute=100_000, queue="scamtrail:test:fuzz",
                    log_level="WARNING", ws_idle_timeout_s=1)  # fmt: skip
    with processes() as started:
        started.append(start_api(env, port, logs / "api.log"))
        yield f"http://127.0.0.1:{port}"


def test_no_server_error_and_no_schema_violation(api_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    headers = {"Authorization": f"Bearer {token('fuzz', ['submitter', 'analyst', 'admin'])}"}
    failures: list[str] = []
    calls: list[int] = []
    operations = list(schema.get_all_operations())
    assert len(operations) >= 12
    for result in operations:
        operation = result.ok()  # type: ignore[union-attr]

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
            calls.append(1)
            # Every check but "schema-valid data is accepted": an indicator's value is a string
            # in the schema and must also parse as a phone, domain or URL (422 if not); that rule
            # is the api's, and the schema cannot express it.
            case.call_and_validate(base_url=api_url, headers=headers, timeout=10,
                                   excluded_checks=[positive_data_acceptance])  # fmt: skip

        try:
            check()
        except BaseException as error:  # hypothesis raises a (base) exception group
            if isinstance(error, KeyboardInterrupt):
                raise
            failures.append(f"{operation.label}: {error!r}")  # one run reports every operation
    assert len(calls) >= len(operations) * 5, "hypothesis generated almost no cases"
    assert not failures, "\n\n".join(failures[:5])


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


# Values the schema allows but the log may not hold: NUL and lone surrogates (JSON can spell
# them, UTF-8 and PostgreSQL cannot), NaN and infinities, numbers jsonb gives back changed,
# deep nesting, and times whose UTC falls outside the years 1-9999.
EDGE_TEXT = st.text(
    st.characters(exclude_categories=()) | st.sampled_from(["\x00", "\ud800", "\udfff", ":"]),
    max_size=12,
)
EDGE_NUMBER = (
    st.floats()
    | st.integers()
    | st.sampled_from([1e23, 1.7976931348623157e308, 5e-324, -0.0, 10**30])
)
EDGE_JSON = st.recursive(
    st.none() | st.booleans() | EDGE_NUMBER | EDGE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(EDGE_TEXT, inner, max_size=3),
    max_leaves=12,
) | st.integers(1, 400).map(_nested)
EDGE_TIME = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
    st.integers(-1439, 1439),
) | st.sampled_from(
    [datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
     datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1)))]
)  # fmt: skip
HOSTILE_EXAMPLES = 100


def _post(client: httpx.Client, url: str, body: object, **headers: str) -> httpx.Response:
    # json.dumps writes a lone surrogate as "\ud800" and NaN as NaN, as a hostile client would.
    headers["Content-Type"] = "application/json"
    return client.post(url, content=json.dumps(body).encode(), headers=headers)


def test_values_the_log_cannot_hold_are_4xx_and_an_identical_retry_is_never_409(
    api_url: str,
) -> None:
    headers = {"Authorization": f"Bearer {token('fuzz-edges', ['submitter', 'analyst'])}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=10) as client:
        task_id = _post(client, "/tasks", {"content": "pay now"}).json()["task_id"]

        @settings(max_examples=HOSTILE_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(content=EDGE_TEXT, metadata=st.dictionaries(EDGE_TEXT, EDGE_JSON, max_size=3),
               note=EDGE_TEXT)  # fmt: skip
        def check(content: str, metadata: dict[str, object], note: str) -> None:
            key = uuid.uuid4()  # a new key each time: hypothesis replays its examples
            body = {"content": content or "x", "kind": "sms", "metadata": metadata}
            first = _post(client, "/tasks", body, **{"Idempotency-Key": str(key)})
            assert first.status_code in (202, 422), first.text
            if first.status_code == 202:
                again = _post(client, "/tasks", body, **{"Idempotency-Key": str(key)})
                assert again.status_code == 202, again.text
                assert again.json()["task_id"] == first.json()["task_id"]
            review = {"decision": "confirm", "note": note}
            assert _post(client, f"/tasks/{task_id}/reviews", review).status_code < 500
            assert _post(client, f"/tasks/{task_id}/cancel", {"reason": note}).status_code < 500

        check()


def test_times_at_the_edges_of_the_calendar_are_never_a_server_error(api_url: str) -> None:
    headers = {"Authorization": f"Bearer {token('fuzz-edges', ['submitter', 'analyst'])}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=10) as client:

        @settings(max_examples=HOSTILE_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(after=EDGE_TIME, before=EDGE_TIME)
        def check(after: datetime, before: datetime) -> None:
            params = {"submitted_after": after.isoformat(), "submitted_before": before.isoformat()}
            assert client.get("/tasks", params=params).status_code == 200
            raw = f"{after.isoformat()}|task".encode()
            cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            assert client.get("/tasks", params={"cursor": cursor}).status_code in (200, 422)

        check()
