"""Every refusal in one table: the HTTP status, the WebSocket close code and the command-line
exit code of each error the use cases, the domain and the guards raise on purpose. The HTTP
answer to any of them is built by `answer` (`{"detail": why}`), the close by `close_code_for`,
the exit by `exit_code_for` / `exit_code_for_status`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.application.caller import Forbidden, NotAuthenticated
from api.application.refusals import InvalidRequest, NotFound, TooLarge
from api.limits import RateLimited, TooManySockets
from domain.errors import (
    ConcurrencyConflict,
    DomainError,
    IdempotencyKeyReused,
    InvalidAppend,
    InvalidReview,
    TaskAlreadyFinished,
    TaskNotFound,
    TaskNotReviewable,
)

# Exit codes of the command line; scripts rely on them.
EXIT_REFUSED = 1  # the server (the api, PostgreSQL) answered, and said no
EXIT_BAD_INPUT = 2  # what the user gave: arguments, a request refused; also click's usage error
EXIT_UNREACHABLE = 3  # no server, or one that cannot serve now: try again later

# WebSocket close codes (4000-4999 are the application's): 4400 bad request, 4401 no or bad
# token, 4403 wrong role, 4404 unknown task, 4429 too many, 1011 server error.
SERVER_ERROR_CLOSE = 1011


@dataclass(frozen=True)
class Answer:
    status: int  # HTTP
    close_code: int  # WebSocket
    exit_code: int  # command line


# Looked up along the error's class hierarchy, most specific first: DomainError is the fallback
# of every domain error this table does not name.
REFUSALS: dict[type[Exception], Answer] = {
    NotAuthenticated: Answer(401, 4401, EXIT_BAD_INPUT),
    Forbidden: Answer(403, 4403, EXIT_BAD_INPUT),
    TaskNotFound: Answer(404, 4404, EXIT_BAD_INPUT),
    NotFound: Answer(404, 4404, EXIT_BAD_INPUT),
    ConcurrencyConflict: Answer(409, SERVER_ERROR_CLOSE, EXIT_BAD_INPUT),
    TaskAlreadyFinished: Answer(409, SERVER_ERROR_CLOSE, EXIT_BAD_INPUT),
    IdempotencyKeyReused: Answer(409, SERVER_ERROR_CLOSE, EXIT_BAD_INPUT),
    TaskNotReviewable: Answer(409, SERVER_ERROR_CLOSE, EXIT_BAD_INPUT),
    TooLarge: Answer(413, SERVER_ERROR_CLOSE, EXIT_BAD_INPUT),
    InvalidRequest: Answer(422, 4400, EXIT_BAD_INPUT),
    InvalidAppend: Answer(422, 4400, EXIT_BAD_INPUT),
    InvalidReview: Answer(422, SERVER_ERROR_CLOSE, EXIT_BAD_INPUT),
    RateLimited: Answer(429, 4429, EXIT_UNREACHABLE),
    TooManySockets: Answer(429, 4429, EXIT_UNREACHABLE),
    DomainError: Answer(400, SERVER_ERROR_CLOSE, EXIT_BAD_INPUT),
}
REFUSED = tuple(REFUSALS)  # for `except REFUSED`


def answer_for(error: Exception) -> Answer | None:
    """The table's row for `error`; None for an error that is not a refusal (a bug)."""
    for cls in type(error).__mro__:
        if cls in REFUSALS:
            return REFUSALS[cls]
    return None


def status_for(error: Exception) -> int:
    found = answer_for(error)
    return found.status if found else 500


def close_code_for(error: Exception) -> int:
    found = answer_for(error)
    return found.close_code if found else SERVER_ERROR_CLOSE


def exit_code_for(error: Exception) -> int:
    found = answer_for(error)
    return found.exit_code if found else EXIT_REFUSED


def exit_code_for_status(status: int) -> int:
    """The exit code for an api's HTTP answer: the table's for a status it gives, a server
    that cannot serve (5xx) is unreachable, any other refusal is bad input."""
    for row in REFUSALS.values():
        if row.status == status:
            return row.exit_code
    return EXIT_UNREACHABLE if status >= 500 else EXIT_BAD_INPUT


def exit_code_for_close(code: int | None) -> int | None:
    """The exit code for a progress socket the api closed with `code`: None when the close
    says to try again (a server error, a socket limit) rather than refuse for good."""
    for row in REFUSALS.values():
        if row.close_code == code and code != SERVER_ERROR_CLOSE:
            return None if row.exit_code == EXIT_UNREACHABLE else row.exit_code
    return None


def answer(error: Exception) -> JSONResponse:
    """The HTTP answer to a refusal: its status, `{"detail": why}`, and the headers it needs. A
    malformed query parameter answers as FastAPI's own validation does, naming the parameter."""
    detail: Any = str(error)
    if isinstance(error, InvalidRequest) and error.field is not None:
        where = ("query", error.field)
        detail = [{"type": "value_error", "loc": where, "msg": detail, "input": None}]
    headers: dict[str, str] = {}
    if isinstance(error, NotAuthenticated):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after_s)
    return JSONResponse({"detail": detail}, status_code=status_for(error), headers=headers)


def _document_plain_422(app: FastAPI) -> None:
    """A 422 is either FastAPI's validation list or a domain refusal (`{"detail": "why"}`);
    the schema says both, so clients (and schemathesis) can rely on it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        plain = {"type": "object", "properties": {"detail": {"type": "string"}}}
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            content = operation.get("responses", {}).get("422", {}).get("content", {})
            json_body = content.get("application/json")
            if json_body and "schema" in json_body:
                json_body["schema"] = {"anyOf": [json_body["schema"], plain]}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


ECHO_DEPTH = 8  # how deep a 422 echoes the offending input; deeper parts read "..."


def _encodable(value: Any, depth: int = 0) -> Any:
    """`value` made JSON- and UTF-8-encodable and shallow: a 422 echoes the offending input, and
    a lone surrogate in it ("\\ud800" in the request's JSON) or a NaN would otherwise fail the
    response. Such a string keeps its escapes as text, such a number becomes its JSON spelling
    ("NaN"); a structure nested deeper than `ECHO_DEPTH` is cut, so no answer (and no later
    repr of the error) recurses through a hostile body."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode(errors="backslashreplace").decode()
        return value
    if isinstance(value, dict | list | tuple) and depth >= ECHO_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {_encodable(k, depth + 1): _encodable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(item, depth + 1) for item in value]
    return value


def install(app: FastAPI) -> None:
    async def invalid_request(_: Request, error: Exception) -> JSONResponse:
        """FastAPI's 422, made safe for any input it echoes (see `_encodable`). The error itself
        keeps only the shallow copy: it can outlive the request in a traceback, and formatting
        a body nested hundreds deep there would recurse."""
        assert isinstance(error, RequestValidationError)
        shallow = _encodable(list(error.errors()), depth=-2)  # the list, then each error
        error._errors = shallow
        error.body = None
        detail = _encodable(jsonable_encoder(shallow))
        return JSONResponse({"detail": detail}, status_code=422)

    async def refusal(_: Request, error: Exception) -> JSONResponse:
        return answer(error)

    app.add_exception_handler(RequestValidationError, invalid_request)
    _document_plain_422(app)
    for cls in REFUSALS:
        app.add_exception_handler(cls, refusal)
