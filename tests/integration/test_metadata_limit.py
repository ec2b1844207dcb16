"""A submission's metadata is bounded as a whole: 50 keys of 40 KB each once became a 2 MB
event, stored and replayed to every reader and through Redis."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration


async def test_metadata_over_the_limit_is_413_with_a_message(api: httpx.AsyncClient) -> None:
    metadata = {f"k{i}": "x" * 40_000 for i in range(50)}
    response = await api.post("/tasks", json={"content": "hello", "metadata": metadata})
    assert response.status_code == 413, response.text
    assert "metadata is" in response.json()["detail"] and "8192" in response.json()["detail"]


async def test_metadata_within_the_limit_is_accepted(api: httpx.AsyncClient) -> None:
    metadata = {"sender_region": "GB", "note": "é" * 1000}
    response = await api.post("/tasks", json={"content": "hello", "metadata": metadata})
    assert response.status_code == 202, response.text
