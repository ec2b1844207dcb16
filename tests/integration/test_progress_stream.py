"""The delivery loop with a real hub (Redis) and store (PostgreSQL), no relay: the test publishes
wire messages itself, signed as the relay signs them, so it can publish them late, out of order,
twice, or far too many."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

import infrastructure.hub as hub_module
from api.caller import Caller
from api.limits import ClosePacer
from api.metrics import StreamMetrics
from api.routes.stream import _ExpiryClose, _pump
from api.streaming import Close, Follow, Outgoing, TenantFollower, progress_stream
from domain import events as ev
from domain.log import EventMetadata, NewEvent, RecordedEvent
from domain.progress import progress_message
from infrastructure.database import create_engine
from infrastructure.event_store import EventStore
from infrastructure.hub import ProgressHub, PubSubSeal, Subscription, task_channel, tenant_channel
from infrastructure.settings import Settings, load_settings
from tests.auth import TEST_SECRET
from tests.factories import new, progress, submitted
from tests.waiting import eventually

pytestmark = pytest.mark.integration

SEAL = PubSubSeal(load_settings(jwt_secret=TEST_SECRET))  # what the `settings` fixture's hub checks


def sealed(channel: str, recorded: RecordedEvent) -> tuple[str, bytes]:
    """The channel on Redis and the message, as the relay publishes `recorded` on `channel`."""
    wire = SEAL.wire(channel)
    return wire, SEAL.seal(wire, json.dumps(progress_message(recorded)))


@pytest.fixture
async def hub(settings: Settings, redis_url: str, store: EventStore) -> AsyncIterator[ProgressHub]:
    small = settings.model_copy(
        update={"redis_url": redis_url, "ws_queue_size": 4, "ws_idle_timeout_s": 5.0}
    )
    found = ProgressHub(small, store)
    await found.start()
    assert await found.wait_connected(5)
    yield found
    await found.stop()


async def publish(redis: Redis, store: EventStore, task: str, seqs: list[int]) -> None:
    by_seq = {r.version: r for r in await store.read_stream(task)}
    for seq in seqs:
        await redis.publish(*sealed(task_channel(task), by_seq[seq]))


def subscriptions(hub: ProgressHub) -> set[Subscription]:
    return {sub for subs in hub._channels.values() for sub in subs}


def awaiting_live(hub: ProgressHub) -> bool:
    """Every subscriber of the hub is subscribed and its delivery loop waits for a message."""
    subs = subscriptions(hub)
    return bool(subs) and all(sub._waiter is not None for sub in subs)


async def sent(stream: AsyncIterator[Outgoing | Close]) -> Outgoing:
    """The stream's next message, which must not be a close."""
    item = await anext(stream)
    assert isinstance(item, Outgoing), item
    return item


async def collect(stream: AsyncIterator[Outgoing | Close], within: float = 10) -> list[int]:
    seqs: list[int] = []
    async with asyncio.timeout(within):
        async for item in stream:
            if isinstance(item, Close):
                assert item.code == 1000
                return seqs
            if item.seq is not None:
                seqs.append(item.seq)
    return seqs


async def test_gaps_duplicates_and_overflow_are_repaired_from_postgresql(
    store: EventStore, hub: ProgressHub, redis: Redis
) -> None:
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted()], 0)
    metrics = StreamMetrics()
    stream = progress_stream(store, hub, hub._settings, metrics, Follow([task]))
    assert (await sent(stream)).kind == "connected"
    assert (await sent(stream)).seq == 1
    # Subscribed now. 60 events: far more than the queue of 4 holds while nobody reads.
    await store.append(task, [progress(i % 100) for i in range(60)], 1)
    await store.append(task, [new(ev.TaskCompleted())], 61)
    await publish(redis, store, task, [2, 2, 5, *range(3, 63)])  # a duplicate, a gap, a flood
    # The hub overflows the queue before the loop reads again.
    await eventually(
        lambda: any(sub.overflows for sub in subscriptions(hub)),
        within=5,
        what="the subscriber's queue overflowed",
    )
    assert hub.subscriber_count == 1

    seqs = await collect(stream)
    assert seqs == list(range(2, 63))  # each once, in order: gaps filled from PostgreSQL
    assert metrics.overflows._value.get() >= 1
    await stream.aclose()  # what the endpoints do (aclosing) when the socket ends
    assert hub.subscriber_count == 0 and hub.channel_count == 0


async def test_a_message_missed_between_subscribe_and_history_is_not_lost(
    store: EventStore, hub: ProgressHub, redis: Redis
) -> None:
    """The live message of seq 2 is published before the socket connects (so it never reaches
    it); the history read after subscribing returns it; the live seq 3 follows."""
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted(), progress()], 0)
    await publish(redis, store, task, [1, 2])
    stream = progress_stream(store, hub, hub._settings, StreamMetrics(), Follow([task]))
    await anext(stream)  # connected
    assert [(await sent(stream)).seq for _ in range(2)] == [1, 2]
    await store.append(task, [new(ev.TaskCompleted())], 2)
    await publish(redis, store, task, [2, 3])
    assert await collect(stream) == [3]


async def test_resuming_after_the_last_event_of_a_finished_task_closes_at_once(
    store: EventStore, hub: ProgressHub
) -> None:
    """A client that reconnects with `after=<seq of TaskCompleted>` gets nothing again and is
    closed right away, not after the idle timeout (the chaos suite found that wait)."""
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted(), new(ev.TaskCompleted())], 0)
    stream = progress_stream(store, hub, hub._settings, StreamMetrics(), Follow([task], {task: 2}))
    assert (await sent(stream)).kind == "connected"
    assert await collect(stream, within=2) == []


async def test_a_draining_hub_closes_its_sockets_with_1001(
    store: EventStore, hub: ProgressHub
) -> None:
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted()], 0)
    stream = progress_stream(store, hub, hub._settings, StreamMetrics(), Follow([task]))
    assert (await sent(stream)).kind == "connected"
    assert (await sent(stream)).seq == 1
    waiting = asyncio.create_task(anext(stream))
    await eventually(lambda: awaiting_live(hub), within=5, what="waiting for a live message")
    hub.drain()
    assert await asyncio.wait_for(waiting, 2) == Close(1001, "server shutting down")


class CountingStore(EventStore):
    """Counts the reads of single streams: what each socket does on its own."""

    stream_reads = 0

    async def read_stream(self, *args: Any, **kwargs: Any) -> list[RecordedEvent]:
        self.stream_reads += 1
        return await super().read_stream(*args, **kwargs)


async def test_without_redis_the_hub_reads_the_log_once_for_every_socket(
    settings: Settings, store: EventStore
) -> None:
    """Redis is unreachable from the start. 50 sockets follow one task while 20 events commit
    over about 2 s: every socket gets every event once, in order, from the hub's own reading of
    the log (about one query per `ws_poll_s` for the whole process). Each socket reads
    PostgreSQL on its own only at the switches (a handful of times), not every `ws_poll_s`,
    which would be 50 x 20 reads for this test and 20,000 queries a second for 5,000 sockets."""
    unreachable = settings.model_copy(
        update={"redis_url": "redis://127.0.0.1:1/0", "ws_poll_s": 0.05, "ws_idle_timeout_s": 10}
    )
    counting = CountingStore(store.engine)
    hub = ProgressHub(unreachable, counting)
    await hub.start()
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted()], 0)
    try:
        follows = [
            collect(progress_stream(counting, hub, unreachable, StreamMetrics(), Follow([task])))
            for _ in range(50)
        ]
        clients = [asyncio.create_task(follow) for follow in follows]
        for version in range(1, 20):
            await asyncio.sleep(0.1)
            await store.append(task, [progress(version)], version)
        await store.append(task, [new(ev.TaskCompleted())], 20)
        for client in clients:
            assert await asyncio.wait_for(client, 10) == list(range(1, 22))
        assert hub.degraded
        assert hub.polls >= 20  # it read the log all along
        assert counting.stream_reads <= 50 * 3, counting.stream_reads  # history + switches
    finally:
        await hub.stop()


class FakeSocket:
    """What the pump needs of a WebSocket: what was sent, and the close codes."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: list[int] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed.append(code)


async def test_a_database_outage_closes_the_socket_with_1013(settings: Settings) -> None:
    """PostgreSQL refuses connections while a socket reads its history: the socket is closed
    with 1013 (try again later), so the client reconnects with `after=`. (Taking the error for
    the client leaving would keep the socket open and silent for good.)"""
    nowhere = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"}
    )
    engine = create_engine(nowhere)
    store = EventStore(engine)
    hub = ProgressHub(nowhere, store)  # never started: degraded, subscribing returns at once
    socket = FakeSocket()
    stream = progress_stream(store, hub, nowhere, StreamMetrics(), Follow(["t"]))
    try:
        await asyncio.wait_for(_pump(socket, stream, StreamMetrics(), 5), 20)
    finally:
        await engine.dispose()
    assert [m["step"] for m in socket.sent] == ["connected"]
    assert socket.closed == [1013]


async def test_a_token_already_expired_closes_at_once_with_4401(
    hub: ProgressHub, store: EventStore, redis: Redis
) -> None:
    """A token past `exp` (accepted within the leeway): the socket sends nothing but the close,
    even when the expiry lands while the socket subscribes (a cancellation that redis-py's
    wait_for can swallow, which would leave the socket streaming)."""
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted(), progress(10)], 0)
    caller = Caller("t", "user:x", frozenset({"analyst"}), expires_at=datetime.now(UTC))
    socket = FakeSocket()
    stream = progress_stream(store, hub, hub._settings, StreamMetrics(), Follow([task]))
    pump = asyncio.create_task(_pump(socket, stream, StreamMetrics(), 5))
    expiry = _ExpiryClose(socket, caller, pump)  # type: ignore[arg-type]
    try:
        await eventually(pump.done, within=5, what="the socket closed")
        await store.append(task, [progress(20)], 2)
        await publish(redis, store, task, [3])
        assert socket.closed == [4401]
        # At most `connected`, then the error: no event went out.
        assert all("seq" not in m for m in socket.sent) and socket.sent[-1]["error"]
        assert pump.done() and hub.subscriber_count == 0
    finally:
        await expiry.disarm()
        pump.cancel()


async def test_a_tenant_socket_that_overflows_loses_no_event_of_a_task_it_had_not_seen(
    hub: ProgressHub, store: EventStore, redis: Redis
) -> None:
    """The queue (4) overflows with the first events of a task the tenant socket had not seen
    yet: the catch-up reads the tenant's events from the log, so all of them arrive, in order.
    (Reading back only the tasks already seen would lose them all.) Events after a task's end
    (an analyst's review) are passed on too: a tenant socket does not end with its tasks."""
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    known, unseen = f"known-{uuid.uuid4()}", f"unseen-{uuid.uuid4()}"
    meta = EventMetadata(tenant=tenant, actor="a")
    follow = Follow([], tenant=tenant)
    stream = progress_stream(store, hub, hub._settings, StreamMetrics(), follow)
    assert (await sent(stream)).kind == "connected"
    first = asyncio.create_task(sent(stream))
    await eventually(lambda: awaiting_live(hub), within=5, what="waiting for a live message")

    async def publish_all(task: str, after: int = 0) -> None:
        for recorded in await store.read_stream(task, after):
            await redis.publish(*sealed(tenant_channel(tenant), recorded))

    await store.append(known, [NewEvent(ev.TaskSubmitted(content="x", kind="sms"), meta)], 0)
    await publish_all(known)
    assert (await first).seq == 1
    # Nobody reads now: 7 events of a new task, more than the queue holds, then its end and a
    # review after the end.
    events = [NewEvent(ev.TaskSubmitted(content="y", kind="sms"), meta)]
    events += [NewEvent(ev.ProgressReported(message="m", percent=i), meta) for i in range(6)]
    events += [NewEvent(ev.TaskCompleted(), meta)]
    await store.append(unseen, events, 0)
    await publish_all(unseen)
    await eventually(
        lambda: any(sub.overflows for sub in subscriptions(hub)),
        within=5,
        what="the tenant socket's queue overflowed",
    )
    review = ev.VerdictReviewed(decision="override", verdict="safe", note="checked")
    await store.append(unseen, [NewEvent(review, meta)], 8)
    await publish_all(unseen, 8)
    got: list[int] = []
    async with asyncio.timeout(5):
        while len(got) < 9:
            item = await anext(stream)
            if isinstance(item, Outgoing) and item.seq is not None:
                assert json.loads(item.text)["task_id"] == unseen
                got.append(item.seq)
    assert got == list(range(1, 10))
    await stream.aclose()


async def test_subscribers_that_leave_before_redis_confirms_leave_nothing_behind(
    hub: ProgressHub,
) -> None:
    subscribing = [
        asyncio.create_task(hub.subscribe([task_channel(f"gone-{uuid.uuid4()}")]))
        for _ in range(50)
    ]
    await asyncio.sleep(0)  # each has registered its wait for Redis's confirmation
    for task in subscribing:
        task.cancel()
    await asyncio.gather(*subscribing, return_exceptions=True)
    # The hub's chores send the SUBSCRIBEs, then the UNSUBSCRIBEs: once none is left, it
    # holds whatever it is going to hold.
    await eventually(lambda: not hub._chores, within=5, what="the hub's chores done")
    assert hub._waiters == {}
    assert hub.subscriber_count == 0 and hub.channel_count == 0


async def test_a_message_published_before_a_late_subscribe_confirmation_is_not_lost(
    store: EventStore, hub: ProgressHub, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis confirms the SUBSCRIBE after the hub stopped waiting (a loaded machine): the
    socket reads the log at once, then seqs 2 and 3 (the last) are published before Redis
    takes the subscription, so they reach nobody, and no later message shows the gap. The late
    confirmation has the socket read the log again."""
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted()], 0)
    release = asyncio.Event()
    send_subscribe = hub._send_subscribe

    async def held_back(pubsub: Any, channels: list[str]) -> None:
        await release.wait()
        await send_subscribe(pubsub, channels)

    monkeypatch.setattr(hub_module, "SUBSCRIBE_TIMEOUT_S", 0.05)
    monkeypatch.setattr(hub, "_send_subscribe", held_back)
    stream = progress_stream(store, hub, hub._settings, StreamMetrics(), Follow([task]))
    await anext(stream)  # the subscribe timed out (stale: the log is read), then connected
    assert (await sent(stream)).seq == 1
    await store.append(task, [progress(50), new(ev.TaskCompleted())], 1)
    await publish(redis, store, task, [2, 3])  # nobody subscribed yet: lost on Redis
    release.set()  # nothing is published after the confirmation: only the log has seqs 2, 3
    assert await collect(stream) == [2, 3]
    assert task_channel(task) in hub._confirmed


async def test_a_tenant_socket_passes_on_every_event_of_a_task_submitted_once_connected(
    hub: ProgressHub, store: EventStore, redis: Redis
) -> None:
    """`connected` is the client's cue: a task it submits as soon as it has it shows from its
    first event. (Were `connected` sent before the hub subscribed, the first events could be
    published to nobody, and the socket would take the task up from the first one it heard.)"""
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    task = f"task-{uuid.uuid4()}"
    meta = EventMetadata(tenant=tenant, actor="a")
    stream = progress_stream(store, hub, hub._settings, StreamMetrics(), Follow([], tenant=tenant))
    assert (await sent(stream)).kind == "connected"
    events = [NewEvent(ev.TaskSubmitted(content="x", kind="sms"), meta)]
    events += [NewEvent(ev.ProgressReported(message="m", percent=50), meta)]
    await store.append(task, events, 0)
    for recorded in await store.read_stream(task):  # the relay's publish, right after the commit
        await redis.publish(*sealed(tenant_channel(tenant), recorded))
    await store.append(task, [NewEvent(ev.TaskCompleted(), meta)], 2)
    await redis.publish(*sealed(tenant_channel(tenant), (await store.read_stream(task, 2))[0]))
    got: list[int] = []
    async with asyncio.timeout(5):
        while len(got) < 3:
            item = await anext(stream)
            if isinstance(item, Outgoing) and item.seq is not None:
                got.append(item.seq)
    assert got == [1, 2, 3]
    await stream.aclose()


async def test_a_tenant_socket_keeps_its_catch_up_mark_until_redis_confirms_it(
    store: EventStore, settings: Settings
) -> None:
    """At a heartbeat a tenant socket moves the mark its catch-up reads from up to what the
    relay had published: that much has reached it. Not while Redis has yet to confirm its
    subscription: then what was published reached nobody, and the catch-up that the late
    confirmation brings must read it from the log."""
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    follower = TenantFollower(store, settings, Follow([], tenant=tenant), tenant)
    await follower.start()
    mark = follower.log_mark
    task = f"task-{uuid.uuid4()}"
    await store.append(task, [submitted()], 0)
    [later] = await store.read_stream(task)
    sub = Subscription([tenant_channel(tenant)], 4)
    follower.published_then = later.cursor
    await follower.at_heartbeat(sub, confirmed=False)
    assert follower.log_mark == mark
    follower.published_then = later.cursor
    await follower.at_heartbeat(sub, confirmed=True)
    assert follower.log_mark == later.cursor


async def test_finished_sockets_let_go_of_their_subscriptions_and_close_at_the_paced_rate(
    hub: ProgressHub, store: EventStore
) -> None:
    """Sockets whose tasks ended together close at `ws_close_rate` (here 20 a second), so that
    their closes do not all land at once ahead of other sockets' live messages: each lets go
    of its subscription at its terminal event, then closes (1000) in its turn."""
    tasks = [f"task-{uuid.uuid4()}" for _ in range(20)]
    for task in tasks:
        await store.append(task, [submitted(), new(ev.TaskCompleted())], 0)
    sockets = [FakeSocket() for _ in tasks]
    pacer = ClosePacer(rate=20)
    loop = asyncio.get_running_loop()
    closed_at: list[float] = []

    async def one(socket: FakeSocket, task: str) -> None:
        stream = progress_stream(store, hub, hub._settings, StreamMetrics(), Follow([task]))
        await _pump(socket, stream, StreamMetrics(), 5, pacer)
        closed_at.append(loop.time())

    pumps = asyncio.gather(*(one(s, t) for s, t in zip(sockets, tasks, strict=True)))
    await eventually(
        lambda: all(len(s.sent) == 3 for s in sockets), within=5, what="every history sent"
    )
    assert hub.subscriber_count == 0  # while most closes wait their turn
    await asyncio.wait_for(pumps, 10)
    assert all(s.closed == [1000] for s in sockets)
    # 20 closes at 20 a second: the last about a second after the first, not in the same moment
    assert max(closed_at) - min(closed_at) >= 0.9
