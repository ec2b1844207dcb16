"""Every refusal has one row in api/errors.py: its HTTP status, WebSocket close code and exit
code. The command line's client reads an api's answers back through the same table, so a status
must mean one exit code, and the api's own layers must reach the database only through
infrastructure/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.application.refusals import InvalidRequest, TooManyReviews
from api.errors import (
    EXIT_BAD_INPUT,
    EXIT_UNREACHABLE,
    REFUSALS,
    answer,
    close_code_for,
    exit_code_for,
    exit_code_for_close,
    exit_code_for_status,
    status_for,
)
from api.limits import RateLimited
from domain.errors import InvalidAppend, TaskNotFound

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_a_status_means_one_exit_code() -> None:
    by_status: dict[int, set[int]] = {}
    for row in REFUSALS.values():
        by_status.setdefault(row.status, set()).add(row.exit_code)
    assert all(len(codes) == 1 for codes in by_status.values()), by_status


def test_the_table_answers_for_each_adapter() -> None:
    missing = TaskNotFound("t-1")
    assert (status_for(missing), close_code_for(missing), exit_code_for(missing)) == (
        404,
        4404,
        EXIT_BAD_INPUT,
    )
    # A subclass answers as its base: too many reviews is a task that cannot be reviewed.
    assert status_for(TooManyReviews("t-1", 3)) == 409
    assert close_code_for(InvalidRequest("bad ids")) == close_code_for(InvalidAppend("x")) == 4400


def test_the_client_reads_statuses_and_closes_through_the_table() -> None:
    assert exit_code_for_status(401) == exit_code_for_status(404) == EXIT_BAD_INPUT
    assert exit_code_for_status(429) == exit_code_for_status(503) == EXIT_UNREACHABLE
    assert exit_code_for_status(418) == EXIT_BAD_INPUT
    assert {code: exit_code_for_close(code) for code in (4400, 4401, 4403, 4404)} == dict.fromkeys(
        (4400, 4401, 4403, 4404), EXIT_BAD_INPUT
    )
    # Worth reconnecting: a server error, the socket limit, a normal close.
    assert [exit_code_for_close(code) for code in (1011, 4429, 1000, None)] == [None] * 4


def test_a_malformed_query_parameter_answers_as_validation_does() -> None:
    response = answer(InvalidRequest("not a cursor this api returned", field="cursor"))
    assert response.status_code == 422
    assert b'"loc":["query","cursor"]' in response.body
    limited = answer(RateLimited("over", retry_after_s=7))
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")


def test_the_api_reaches_the_database_through_repositories_only() -> None:
    reach = re.compile(r"\.engine\b|\bAsyncEngine\b|\bcreate_engine\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "api").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if reach.search(line)
    ]
    assert offenders == []


async def test_a_hostile_body_leaves_neither_the_answer_nor_the_error_deep() -> None:
    """A 422 echoes the offending input cut at a fixed depth, and the error object keeps only
    that copy: it can outlive the request in a traceback, and printing a list nested 600 deep
    there would raise RecursionError (pytest's unraisable hook did, long after the request)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError

    from api.errors import install

    deep: list[object] = []
    for _ in range(600):
        deep = [deep]
    error = RequestValidationError(
        [{"type": "string_type", "loc": ("body", "content"), "msg": "x", "input": deep}],
        body={"content": deep},
    )
    app = FastAPI()
    install(app)
    response = await app.exception_handlers[RequestValidationError](None, error)  # type: ignore[arg-type,misc]
    assert response.status_code == 422
    assert len(response.body) < 200 and b'"..."' in response.body
    assert len(str(error)) < 300 and error.body is None
