"""The analyst console: one HTML page and its ES modules, served as files (no build step).

The page holds no data; its script reads everything from the HTTP api with the analyst's token.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.staticfiles import StaticFiles

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console"

# The page renders hostile text (the messages under analysis). Everything is inserted as text,
# and this policy is the second line: no inline script, nothing from another origin.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(tags=["console"], include_in_schema=False)
# StaticFiles answers conditional requests with 304 and refuses paths outside the directory.
_files = StaticFiles(directory=CONSOLE_DIR)


@router.get("/")
async def console_page(request: Request) -> Response:
    return await _served("index.html", request)


@router.get("/console/{name}")
async def console_asset(name: str, request: Request) -> Response:
    return await _served(name, request)


async def _served(name: str, request: Request) -> Response:
    response = await _files.get_response(name, request.scope)
    # Every file gets the page's headers, not only the page at /: the same page is reachable
    # as /console/index.html, and a policy on a script or a stylesheet costs nothing.
    response.headers.update(PAGE_HEADERS)
    # Revalidated on each load (an ETag round trip), so a deploy is picked up at once.
    response.headers["Cache-Control"] = "no-cache"
    return response
