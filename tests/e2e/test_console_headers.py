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
