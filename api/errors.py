"""Domain errors → HTTP status codes and WebSocket close codes, in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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


def status_for(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 400


def close_code_for(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in WS_CLOSE:
            return WS_CLOSE[cls]
    return 1011


def install(app: FastAPI) -> None:
    async def domain_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, DomainError)
        return JSONResponse({"detail": str(error)}, status_code=status_for(error))

    app.add_exception_handler(DomainError, domain_error)
