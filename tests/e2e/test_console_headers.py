"""The console page renders hostile text: wherever it is served from, it carries its
Content-Security-Policy, and no other site may frame it."""

from __future__ import annotations

import httpx
import pytest

from api.routes.console import PAGE_HEADERS

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("path", ["/", "/console/index.html", "/console/console.js"])
async def test_every_console_file_carries_the_page_policy(
    api: httpx.AsyncClient, path: str
) -> None:
    served = await api.get(path)
    assert served.status_code == 200
    assert "frame-ancestors 'none'" in served.headers["content-security-policy"]
    for name, value in PAGE_HEADERS.items():
        assert served.headers[name] == value


@pytest.mark.parametrize(
    "path", ["/docs", "/docs/assets/init.js", "/docs/assets/swagger-ui-bundle.js"]
)
async def test_the_api_docs_are_served_from_the_api_under_the_page_policy(
    api: httpx.AsyncClient, path: str
) -> None:
    served = await api.get(path)
    assert served.status_code == 200
    for name, value in PAGE_HEADERS.items():
        assert served.headers[name] == value
    if path == "/docs":
        assert "cdn" not in served.text.lower() and "<script>" not in served.text


async def test_only_the_named_docs_assets_are_served(api: httpx.AsyncClient) -> None:
    for name in ("core.py", "..%2Fcore.py", "index.html", "redoc.standalone.js"):
        assert (await api.get(f"/docs/assets/{name}")).status_code == 404
