"""The task use cases: submit, read, list, follow, cancel and review, each for a `Caller`.

A caller sees its tenant's tasks, and a submitter only its own: anyone else's task is
`TaskNotFound`, never "forbidden", so its existence is not revealed. The scope is in the
queries (infrastructure/task_queries.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from api.application.caller import Caller, check_roles
from api.application.refusals import InvalidRequest, TooLarge, TooManyReviews
from api.limits import TenantRates
from domain import events as ev
from domain.errors import ConcurrencyConflict, IdempotencyKeyReused, TaskNotFound
from domain.log import EventMetadata, NewEvent, RecordedEvent
from domain.task import TaskState, cancel, review
from infrastructure.event_log import TaskStreams
from infrastructure.task_queries import BadCursor, TaskFilter, TaskQueries
from infrastructure.timeline import TimelineEntries, TimelineSlice

log = logging.getLogger(__name__)

READERS = ("submitter", "analyst")  # a submitter reads its own tasks, an analyst its tenant's

# Namespace for ids derived from an Idempotency-Key: the same key from the same caller always
# names the same task and the same TaskSubmitted event, so a retried request stores nothing new.
_IDEMPOTENCY = uuid.UUID("5f6b2a5e-1c1e-4c0e-9a55-7d1f6f0f5c11")

# Reviews of one task are taken one at a time in this process (a lock per task, dropped when no
# review holds it); writers elsewhere (other api processes, the worker) are met by re-reading
# the task and appending again, up to this many times, with a short random pause between tries.
_REVIEW_ATTEMPTS = 30
_REVIEW_BACKOFF_S = 0.01

Enqueue = Callable[[str], Awaitable[object]]  # hands a task id to the analysis queue


@dataclass(frozen=True)
class TaskLimits:
    max_content_bytes: int
    max_metadata_bytes: int
    max_reviews_per_task: int


@dataclass(frozen=True)
class Submitted:
    task_id: str
    created: bool  # False: an Idempotency-Key retry of a task recorded before
    status: str


class Tasks:
    def __init__(
        self,
        streams: TaskStreams,
        queries: TaskQueries,
        timeline: TimelineEntries,
        enqueue: Enqueue,
        rates: TenantRates,
        limits: TaskLimits,
    ) -> None:
        self._streams, self._queries, self._timeline = streams, queries, timeline
        self._enqueue, self._rates, self._limits = enqueue, rates, limits
        self._review_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def submit(
        self,
        caller: Caller,
        content: str,
        kind: ev.Kind,
        metadata: dict[str, Any],
        idempotency_key: str | None,
    ) -> Submitted:
        """Record the submission, then enqueue its analysis. `TooLarge` past the content or
        metadata limit, `RateLimited` past the tenant's submissions a minute."""
        check_roles(caller, ("submitter",))
        self._check_size(content, metadata)
        await self._rates.submission(caller.tenant)
        submission = ev.TaskSubmitted(content=content, kind=kind, client_metadata=metadata)
        task_id, created = await self._record(caller, submission, idempotency_key)
        try:
            await self._enqueue(task_id)
        except Exception as error:  # the task is recorded; the sweep enqueues it later
            log.warning("task %s recorded but not enqueued (%r); the sweep will retry",
                        task_id, error)  # fmt: skip
        if created:  # what was just recorded; a read would cost a round trip for the same
            return Submitted(task_id, created, "submitted")
        # A retry under an Idempotency-Key: the task as it stands now. Read as the submitter: a
        # status is only ever reported for the caller's own task.
        state = await self._queries.task(caller.tenant, task_id, submitted_by=caller.actor)
        return Submitted(task_id, created, state.status if state else "submitted")

    def _check_size(self, content: str, metadata: dict[str, Any]) -> None:
        size, most = len(content.encode()), self._limits.max_content_bytes
        if size > most:
            raise TooLarge(f"content is {size} bytes; the limit is {most}")
        # The metadata is stored in the same event and replayed to every reader and through
        # Redis: it is bounded as a whole, serialised, not only by its number of keys.
        size = len(json.dumps(metadata, ensure_ascii=False).encode())
        most = self._limits.max_metadata_bytes
        if size > most:
            raise TooLarge(f"metadata is {size} bytes as JSON; the limit is {most}")

    async def _record(
        self, caller: Caller, submission: ev.TaskSubmitted, idempotency_key: str | None
    ) -> tuple[str, bool]:
        if idempotency_key:
            # Scoped to the caller, not just the tenant: two users' keys never meet (a submitter
            # cannot see another user's task, so a shared key would hand it a task it can't
            # read). A JSON array, not "tenant:actor:key": any of the three may hold ':', and a
            # joined string would let ("a", "b:c") and ("a:b", "c") name the same task.
            scope = json.dumps([caller.tenant, caller.actor, idempotency_key])
            task_id = str(uuid.uuid5(_IDEMPOTENCY, scope))
            event_id = uuid.uuid5(_IDEMPOTENCY, json.dumps([scope, "submitted"]))
        else:
            task_id, event_id = str(uuid.uuid4()), uuid.uuid4()
        fingerprint = request_fingerprint(submission)
        metadata = EventMetadata(
            tenant=caller.tenant,
            actor=caller.actor,
            correlation_id=event_id,
            request_sha256=fingerprint,
        )
        try:
            new = [NewEvent(submission, metadata, event_id)]
            created = (await self._streams.append(task_id, new, 0)).stored
        except ConcurrencyConflict:
            created = False  # the key's task exists with other events: compare below
        if not created:
            (first,) = await self._streams.store.read_stream(task_id, limit=1)
            if not _same_submission(first, caller, submission, fingerprint):
                raise IdempotencyKeyReused(idempotency_key or "")
        return task_id, created

    async def visible(self, caller: Caller, task_id: str) -> TaskState:
        """The task's state if the caller may see it; `TaskNotFound` otherwise."""
        check_roles(caller, READERS)
        state = await self._queries.task(caller.tenant, task_id, submitted_by=caller.submitted_by)
        if state is None:
            raise TaskNotFound(task_id)
        return state

    async def page(
        self, caller: Caller, where: TaskFilter, *, cursor: str | None, limit: int
    ) -> tuple[list[TaskState], str | None]:
        """One page of the caller's tasks, newest first, and the next page's cursor."""
        check_roles(caller, READERS)
        try:
            return await self._queries.page(
                caller.tenant, where, cursor=cursor, limit=limit, submitted_by=caller.submitted_by
            )
        except BadCursor as error:
            raise InvalidRequest(str(error), field="cursor") from None

    async def events(
        self, caller: Caller, task_id: str, *, after: int = 0, limit: int | None = None
    ) -> tuple[TaskState, list[RecordedEvent]]:
        """The task (if visible) and its events with seq > after, in order."""
        state = await self.visible(caller, task_id)
        return state, await self._streams.store.read_stream(task_id, after, limit)

    async def timeline(
        self, caller: Caller, task_id: str, *, after: int = 0, limit: int = 100
    ) -> TimelineSlice:
        """The task's timeline entries with seq > after (if the task is visible), in order:
        stored ones when the projection holds the whole page, else rendered from its events
        (infrastructure/timeline.py)."""
        await self.visible(caller, task_id)
        stored = await self._timeline.page(task_id, after, limit)
        if stored is not None:
            return stored
        return TimelineSlice.of(await self._streams.store.read_stream(task_id, after, limit))

    async def check_followable(self, caller: Caller, task_ids: list[str]) -> None:
        """TaskNotFound unless the caller may follow every task: its tenant's, and its own for
        a submitter. A stream is followed from the log, so a task is followable from its first
        event on, before any projection row exists."""
        check_roles(caller, READERS)
        visible = await self._queries.followable(
            caller.tenant, task_ids, submitted_by=caller.submitted_by
        )
        for task_id in task_ids:
            if task_id not in visible:
                raise TaskNotFound(task_id)

    async def cancel(self, caller: Caller, task_id: str, reason: str | None) -> TaskState:
        """Append TaskCancelled unless the task is finished (409). The worker stops before its
        next step when its own next append conflicts with this one."""
        return await self._decide(caller, task_id, lambda state: cancel(state, reason))

    async def review(
        self,
        caller: Caller,
        task_id: str,
        decision: Literal["confirm", "override"],
        verdict: ev.Verdict | None,
        note: str,
    ) -> TaskState:
        """Record an analyst's review (VerdictReviewed); 409 unless the task has a verdict, and
        409 once it has `max_reviews_per_task` reviews. Concurrent reviews of one task all
        land: they queue on a per-task lock here, and one that still meets another writer's
        append decides again."""
        check_roles(caller, ("analyst",))
        lock = self._review_locks.get(task_id)
        if lock is None:
            lock = self._review_locks[task_id] = asyncio.Lock()
        async with lock:
            most = self._limits.max_reviews_per_task
            if await self._queries.review_count(task_id) >= most:
                await self.visible(caller, task_id)  # 404 first for a task it cannot see
                raise TooManyReviews(task_id, most)
            return await self._decide(
                caller,
                task_id,
                lambda state: review(state, decision, verdict, note),
                attempts=_REVIEW_ATTEMPTS,
                backoff_s=_REVIEW_BACKOFF_S,
            )

    async def _decide(
        self,
        caller: Caller,
        task_id: str,
        decide: Callable[[TaskState], ev.DomainEvent],
        *,
        attempts: int = 10,
        backoff_s: float = 0.0,
    ) -> TaskState:
        """Decide on the task's current state and append the decision; if someone appended in
        the meantime (the worker, another analyst), decide again on the newer state, up to
        `attempts` times, pausing up to `backoff_s` (random) between tries so that racers
        spread out."""
        metadata = EventMetadata(tenant=caller.tenant, actor=caller.actor)
        for attempt in range(attempts):
            state = await self.visible(caller, task_id)
            decision = decide(state)
            try:
                await self._streams.append(task_id, [NewEvent(decision, metadata)], state.version)
            except ConcurrencyConflict:
                if backoff_s and attempt + 1 < attempts:
                    await asyncio.sleep(random.uniform(0, backoff_s))
                continue
            after = await self._streams.task(task_id)
            assert after is not None
            return after
        raise ConcurrencyConflict(task_id, state.version, None)


def request_fingerprint(submission: ev.TaskSubmitted) -> str:
    """A digest of the request as it arrived, stored with its TaskSubmitted: a retry is compared
    with it rather than with the stored event, which the jsonb round trip changes (1e23 comes
    back as the integer 10**23)."""
    canonical = json.dumps(submission.model_dump(mode="json"), sort_keys=True, allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _same_submission(
    first: RecordedEvent, caller: Caller, submission: ev.TaskSubmitted, fingerprint: str
) -> bool:
    """Whether the stored first event is this caller's same request. The owner is checked too,
    not only implied by the task id: a task of anyone else is never handed back."""
    meta = first.metadata
    if (meta.tenant, meta.actor) != (caller.tenant, caller.actor):
        return False
    stored = (meta.model_extra or {}).get("request_sha256")
    # Submissions recorded before the fingerprint existed are compared event to event.
    return stored == fingerprint if stored is not None else first.event == submission
