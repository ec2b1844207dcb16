"""/docs: Swagger UI over /openapi.json, served from this process with no CDN.

FastAPI's own page loads Swagger UI from a CDN (a white page offline or behind a firewall) and
starts it with an inline script (which a strict Content-Security-Policy forbids). Here the page
and its starter are our files, and Swagger UI's script and stylesheet come from the
`fastapi-offline` package, which ships them; the page gets the console's strict policy.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.staticfiles import StaticFiles

from api.routes.console import PAGE_HEADERS

_PAGE_DIR = Path(__file__).resolve().parents[1] / "api_docs"
_SWAGGER_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
# What /docs/assets/ serves, and from where: nothing else in either directory is reachable.
_ASSETS = {
    "init.js": StaticFiles(directory=_PAGE_DIR),
    "swagger-ui-bundle.js": StaticFiles(directory=_SWAGGER_DIR),
    "swagger-ui.css": StaticFiles(directory=_SWAGGER_DIR),
    "favicon.png": StaticFiles(directory=_SWAGGER_DIR),
}
_PAGE = StaticFiles(directory=_PAGE_DIR)

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs_page(request: Request) -> Response:
    return _with_headers(await _PAGE.get_response("index.html", request.scope), "no-cache")


@router.get("/docs/assets/{name}")
async def docs_asset(name: str, request: Request) -> Response:
    files = _ASSETS.get(name)
    if files is None:
        raise HTTPException(404, f"no such asset: {name}")
    # Swagger UI's files change only with the installed package: a day's caching is safe.
    cache = "no-cache" if name == "init.js" else "public, max-age=86400"
    return _with_headers(await files.get_response(name, request.scope), cache)


def _with_headers(response: Response, cache: str) -> Response:
    response.headers.update(PAGE_HEADERS)
    response.headers["Cache-Control"] = cache
    return response
