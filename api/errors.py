"""Domain errors → HTTP status codes and WebSocket close codes, in one place."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.caller import Forbidden, NotAuthenticated
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

HTTP_STATUS: dict[type[DomainError], int] = {
    TaskNotFound: 404,
    ConcurrencyConflict: 409,
    TaskAlreadyFinished: 409,
    IdempotencyKeyReused: 409,
    TaskNotReviewable: 409,
    InvalidAppend: 422,
    InvalidReview: 422,
}

# WebSocket close codes (4000-4999 are the application's): 4400 bad request, 4401 no or bad
# token, 4403 wrong role, 4404 unknown task, 1011 server error.
WS_CLOSE: dict[type[DomainError], int] = {
    TaskNotFound: 4404,
    InvalidAppend: 4400,
}


# Refusals that are not about the domain: who is calling, and how much.
AUTH_STATUS: dict[type[Exception], tuple[int, int]] = {  # (HTTP status, WebSocket close code)
    NotAuthenticated: (401, 4401),
    Forbidden: (403, 4403),
    RateLimited: (429, 4429),
    TooManySockets: (429, 4429),
}
Refusal = NotAuthenticated | Forbidden | RateLimited | TooManySockets


def status_for(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 400


def close_code_for(error: DomainError | Refusal) -> int:
    if type(error) in AUTH_STATUS:
        return AUTH_STATUS[type(error)][1]
    for cls in type(error).__mro__:
        if cls in WS_CLOSE:
            return WS_CLOSE[cls]
    return 1011


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


def _encodable(value: Any) -> Any:
    """`value` made JSON- and UTF-8-encodable: a 422 echoes the offending input, and a lone
    surrogate in it ("\\ud800" in the request's JSON) or a NaN would otherwise fail the response.
    Such a string keeps its escapes as text, such a number becomes its JSON spelling ("NaN")."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode(errors="backslashreplace").decode()
        return value
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(item) for item in value]
    return value


def install(app: FastAPI) -> None:
    async def invalid_request(_: Request, error: Exception) -> JSONResponse:
        """FastAPI's 422, made safe for any input it echoes (see `_encodable`)."""
        assert isinstance(error, RequestValidationError)
        try:
            detail = _encodable(jsonable_encoder(error.errors()))
            return JSONResponse({"detail": detail}, status_code=422)
        except RecursionError:  # an input nested too deep to echo: say what is wrong without it
            errors = [{k: v for k, v in e.items() if k != "input"} for e in error.errors()]
            return JSONResponse({"detail": _encodable(jsonable_encoder(errors))}, status_code=422)

    async def domain_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, DomainError)
        return JSONResponse({"detail": str(error)}, status_code=status_for(error))

    async def refusal(_: Request, error: Exception) -> JSONResponse:
        status = AUTH_STATUS[type(error)][0]
        headers: dict[str, str] = {}
        if isinstance(error, NotAuthenticated):
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        if isinstance(error, RateLimited):
            headers["Retry-After"] = str(error.retry_after_s)
        return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    _document_plain_422(app)
    for cls in AUTH_STATUS:
        app.add_exception_handler(cls, refusal)
