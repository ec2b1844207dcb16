"""How a sharded subscriber reads its shards' replies: sharded names reported as the hub reads
plain Pub/Sub, our own SUNSUBSCRIBE confirmations dropped, and an unasked one (the slot moved
away from that master) raised as a broken connection, so that the hub subscribes again."""

from __future__ import annotations

from typing import Any, cast

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from infrastructure.progress_bus import ShardedSubscriber


def subscriber() -> ShardedSubscriber:
    return ShardedSubscriber(cast(RedisCluster, object()))  # the replies need no cluster


async def next_message(sub: ShardedSubscriber) -> dict[str, Any] | None:
    return await sub.get_message(timeout=0.01)


async def test_sharded_replies_read_as_plain_ones() -> None:
    sub = subscriber()
    sub._reply("n1", [b"ssubscribe", b"agent_progress:t", 1])
    sub._reply("n1", [b"smessage", b"agent_progress:t", b"{}"])
    assert await next_message(sub) == {
        "type": "subscribe", "channel": b"agent_progress:t", "data": 1,
    }  # fmt: skip
    assert await next_message(sub) == {
        "type": "message", "channel": b"agent_progress:t", "data": b"{}",
    }  # fmt: skip
    assert await next_message(sub) is None


async def test_a_pong_is_not_a_message() -> None:
    sub = subscriber()
    sub._reply("n1", [b"pong", b""])
    assert await next_message(sub) is None


async def test_our_own_unsubscribe_is_quiet_but_an_unasked_one_breaks_the_subscriber() -> None:
    sub = subscriber()
    sub._leaving.add(b"agent_progress:a")
    sub._reply("n1", [b"sunsubscribe", b"agent_progress:a", 0])
    assert await next_message(sub) is None
    sub._reply("n1", [b"sunsubscribe", b"agent_progress:b", 0])  # the slot moved
    with pytest.raises(RedisConnectionError, match="slot moved"):
        await next_message(sub)


async def test_a_shard_failure_is_raised_to_the_reader() -> None:
    sub = subscriber()
    sub._reply("n1", RedisConnectionError("connection closed"))
    with pytest.raises(RedisConnectionError, match="connection closed"):
        await next_message(sub)


async def test_an_unexpected_reply_is_an_error_not_a_message() -> None:
    sub = subscriber()
    sub._reply("n1", b"OK")
    with pytest.raises(Exception, match="unexpected reply"):
        await next_message(sub)


class _Node:
    """A cluster node nobody listens on."""

    name = "127.0.0.1:1"

    @property
    def connection_kwargs(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": 1, "socket_connect_timeout": 1}


class _Cluster:
    def get_node_from_key(self, key: str) -> _Node:
        return _Node()

    def get_node(self, node_name: str) -> _Node:
        return _Node()


async def test_a_shard_that_cannot_be_reached_fails_the_whole_subscriber() -> None:
    """Not only the SSUBSCRIBE: the reader fails too, so that the hub subscribes everything
    again rather than leave the channel without a subscription."""
    sub = ShardedSubscriber(cast(RedisCluster, _Cluster()))
    with pytest.raises(RedisConnectionError):
        await sub.subscribe("agent_progress:t")
    with pytest.raises(RedisConnectionError):
        await next_message(sub)
    await sub.aclose()
