"""Where progress messages travel between the relay and the api processes' hubs.

By default the Redis at `SCAMTRAIL_REDIS_URL`, with PUBLISH and SUBSCRIBE. `SCAMTRAIL_PUBSUB_URL`
moves them to another Redis; when that one is a Redis Cluster (any node's URL: it reports
`cluster_enabled:1`), messages go over sharded channels instead: the relay SPUBLISHes each to
the shard that owns its channel's slot, and each api process keeps one SSUBSCRIBE connection per
shard it has channels on (`ShardedSubscriber`). Plain PUBLISH on a cluster is broadcast to every
node over the cluster bus, so it would not scale out; sharded messages stay on one shard.

The arq queue and the log's doorbell stay on `SCAMTRAIL_REDIS_URL`.

A subscriber has the shape of redis-py's PubSub as the hub uses it (`subscribe`, `unsubscribe`,
`get_message`, `aclose`), and the sharded one reports its replies under the same names
("subscribe", "message"). Any fault on any shard (a dead master, a slot that moved in a
failover, a node that stops answering) is raised from `get_message`: the hub then drops the
whole subscriber, reads the log meanwhile and subscribes again against the new topology, so what
was published on the broken shard is read from PostgreSQL, not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from infrastructure.settings import Settings

log = logging.getLogger(__name__)

# A shard's connection says nothing while its channels are quiet: after this long a PING is
# sent, and a shard that does not answer within as long again is treated as gone.
SHARD_HEALTH_S = 5.0
_TIMEOUTS: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 5}


class ChannelSubscriber(Protocol):
    """What the hub needs of a Pub/Sub connection (redis-py's PubSub has this shape)."""

    async def subscribe(self, *channels: str) -> Any: ...

    async def unsubscribe(self, *channels: str) -> Any: ...

    async def get_message(
        self,
        ignore_subscribe_messages: bool = False,
        timeout: float | None = 0.0,  # noqa: ASYNC109 (redis-py's PubSub.get_message)
    ) -> dict[str, Any] | None: ...

    async def aclose(self) -> None: ...


class ProgressBus:
    """Publishes and subscribes progress messages on one Redis server or a Redis Cluster."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        """`redis` is the process's client of SCAMTRAIL_REDIS_URL, used when no separate
        SCAMTRAIL_PUBSUB_URL is set (the caller keeps owning it)."""
        self._url = settings.pubsub_url
        self._server = redis if self._url is None else Redis.from_url(self._url, **_TIMEOUTS)
        self._cluster: RedisCluster | None = None
        self._sharded: bool | None = False if self._url is None else None

    async def sharded(self) -> bool:
        """Whether messages go over sharded channels (the Pub/Sub URL names a cluster). Asked of
        the server once; a Redis that cannot be reached raises, and is asked again next time."""
        if self._sharded is None:
            info = await self._server.info("cluster")
            self._sharded = bool(info.get("cluster_enabled"))
            if self._sharded:
                assert self._url is not None
                self._cluster = RedisCluster.from_url(self._url, **_TIMEOUTS)
                log.info("progress messages go over sharded channels of the cluster at %s",
                         self._url.rsplit("@", 1)[-1])  # fmt: skip
        return self._sharded

    async def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Every (channel, message) in one round trip per server; raises if any is not taken."""
        if await self.sharded():
            assert self._cluster is not None
            with _as_redis_errors():
                async with self._cluster.pipeline(transaction=False) as cluster_pipe:
                    for channel, message in messages:
                        cluster_pipe.execute_command("SPUBLISH", channel, message)
                    await cluster_pipe.execute()
            return
        async with self._server.pipeline(transaction=False) as pipe:
            for channel, message in messages:
                pipe.publish(channel, message)
            await pipe.execute()

    async def subscriber(self) -> ChannelSubscriber:
        if await self.sharded():
            assert self._cluster is not None
            with _as_redis_errors():
                # The topology as it is now: after a failover, the new masters.
                await self._cluster.nodes_manager.initialize()
            return ShardedSubscriber(self._cluster)
        return cast(ChannelSubscriber, self._server.pubsub())

    async def aclose(self) -> None:
        if self._cluster is not None:
            await self._cluster.aclose()
        if self._url is not None:
            await self._server.aclose()


@contextlib.contextmanager
def _as_redis_errors() -> Iterator[None]:
    """The cluster client's own errors (no reachable node, slots not covered during a failover)
    are not RedisErrors; callers ride out RedisErrors, so they are raised as one."""
    try:
        yield
    except RedisClusterException as error:
        raise RedisConnectionError(f"Redis Cluster: {error}") from error


_REPLY_TYPES = {
    b"smessage": "message",
    b"ssubscribe": "subscribe",
    b"sunsubscribe": "unsubscribe",
    b"pong": "pong",
}


class ShardedSubscriber:
    """SSUBSCRIBE on a Redis Cluster: one connection per shard (master) that has channels here,
    each read by a task of its own into one queue that `get_message` takes from.

    The shard of a channel is fixed when it is subscribed, from the topology the cluster client
    knew when this subscriber was made. When that changes (a failover, a resharding), the master
    that lost the slot tells its subscribers with an unasked "sunsubscribe", or just dies: either
    way this subscriber fails as a whole, and the hub makes a new one."""

    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster = cluster
        self._shards: dict[str, _Shard] = {}
        self._messages: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self._leaving: set[bytes] = set()  # channels we unsubscribe: their replies are expected

    async def subscribe(self, *channels: str) -> None:
        for shard, names in self._by_shard(channels).items():
            # One command per channel: a cluster refuses SSUBSCRIBE across slots (CROSSSLOT).
            await self._sending(shard, [("SSUBSCRIBE", name) for name in names])

    async def unsubscribe(self, *channels: str) -> None:
        for shard, names in self._by_shard(channels).items():
            if shard in self._shards:
                self._leaving.update(name.encode() for name in names)
                await self._sending(shard, [("SUNSUBSCRIBE", name) for name in names])

    async def _sending(self, shard: str, commands: list[tuple[str, ...]]) -> None:
        """Send on `shard`'s connection, made now if need be. A shard that cannot be reached
        or written to fails the whole subscriber, as a read would: the hub then subscribes
        everything again, instead of leaving these channels without a subscription."""
        try:
            await (await self._shard(shard)).send(commands)
        except (RedisError, OSError) as error:
            self._messages.put_nowait(error)
            raise

    async def get_message(
        self,
        ignore_subscribe_messages: bool = False,
        timeout: float | None = 0.0,  # noqa: ASYNC109 (the shape of ChannelSubscriber)
    ) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(timeout):
                item = await self._messages.get()
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        shards, self._shards = list(self._shards.values()), {}
        for shard in shards:
            await shard.close()

    def _by_shard(self, channels: Sequence[str]) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for channel in channels:
            node = self._cluster.get_node_from_key(channel)
            if node is None:
                raise RedisConnectionError(f"no master serves the slot of {channel!r}")
            grouped.setdefault(node.name, []).append(channel)
        return grouped

    async def _shard(self, name: str) -> _Shard:
        shard = self._shards.get(name)
        if shard is None:
            node = self._cluster.get_node(node_name=name)
            assert node is not None
            kwargs = node.connection_kwargs
            connection = Connection(**{**kwargs, "socket_timeout": None})
            await connection.connect()  # type: ignore[no-untyped-call]
            shard = self._shards[name] = _Shard(name, connection, self._reply)
        return shard

    def _reply(self, shard: str, reply: Any) -> None:
        """A shard's reply or push, or its failure, as the hub reads it."""
        if isinstance(reply, BaseException):
            self._messages.put_nowait(reply)
            return
        kind = _REPLY_TYPES.get(bytes(reply[0]).lower()) if isinstance(reply, list) else None
        if kind is None:
            self._messages.put_nowait(RedisError(f"unexpected reply from shard {shard}: {reply!r}"))
        elif kind == "unsubscribe" and reply[1] not in self._leaving:
            # Not ours: the slot moved away from this master (failover, resharding).
            self._messages.put_nowait(
                RedisConnectionError(f"shard {shard} dropped {reply[1]!r}: its slot moved")
            )
        elif kind == "unsubscribe":
            self._leaving.discard(reply[1])
        elif kind != "pong":
            self._messages.put_nowait({"type": kind, "channel": reply[1], "data": reply[2]})


class _Shard:
    """One master's SSUBSCRIBE connection and the task that reads it."""

    def __init__(self, name: str, connection: Connection, reply: Any) -> None:
        self.name, self._connection, self._reply = name, connection, reply
        self._lock = asyncio.Lock()
        self._reader = asyncio.create_task(self._read(), name=f"sharded-pubsub {name}")

    async def send(self, commands: list[tuple[str, ...]]) -> None:
        async with self._lock:
            packed = self._connection.pack_commands(commands)
            await self._connection.send_packed_command(packed, check_health=False)

    async def _read(self) -> None:
        pinged = False
        try:
            while True:
                reply = await self._connection.read_response(timeout=SHARD_HEALTH_S)
                if reply is not None:
                    pinged = False
                    self._reply(self.name, reply)
                elif pinged:
                    raise RedisConnectionError(
                        f"shard {self.name} did not answer a PING within {SHARD_HEALTH_S:.0f} s"
                    )
                else:
                    await self.send([("PING",)])
                    pinged = True
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as error:
            self._reply(self.name, error)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
            await self._reader
        with contextlib.suppress(RedisError, OSError):
            await self._connection.disconnect()
