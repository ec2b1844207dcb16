"""What the MCP resource tests share on the client side: the updates a client heard, a task's
URI, and a resource read as JSON (api/mcp/resources.py, api/mcp/subscriptions.py)."""

from __future__ import annotations

import json
from typing import Any

from mcp import Client

from tests.waiting import eventually


class Updates:
    """The `notifications/resources/updated` a client received, as (uri, seq)."""

    def __init__(self, within: float = 15) -> None:
        self.seen: list[tuple[str, int]] = []
        self.within = within

    async def __call__(self, message: Any) -> None:
        root = getattr(message, "root", message)
        if getattr(root, "method", None) == "notifications/resources/updated":
            params = root.params.model_dump(by_alias=True, mode="json")
            self.seen.append((params["uri"], params["_meta"]["scamtrail/seq"]))

    def of(self, uri: str) -> list[int]:
        return [seq for at, seq in self.seen if at == uri]

    async def until(self, uri: str, seq: int) -> list[int]:
        """The seqs heard for `uri`, once the last is `seq`."""
        heard: list[int] = await eventually(
            lambda: self.of(uri),
            until=lambda seqs: seqs and seqs[-1] == seq,
            within=self.within,
            what=f"an update for seq {seq} of {uri}",
        )
        return heard


def task_uri(task_id: str) -> str:
    return f"scamtrail://tasks/{task_id}"


async def read_json(client: Client, uri: str) -> dict[str, Any]:
    (content,) = (await client.read_resource(uri)).contents
    assert content.mime_type == "application/json"
    document: dict[str, Any] = json.loads(getattr(content, "text", ""))
    return document
