"""Commands the api hands on: submit and cancel. Routes turn requests into these calls."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import uuid
import weakref
from collections.abc import Callable
from typing import Any, Literal

import sqlalchemy as sa
from arq import ArqRedis

from api.caller import Caller
from domain import events as ev
from domain.errors import (
    ConcurrencyConflict,
    DomainError,
    IdempotencyKeyReused,
    TaskNotFound,
    TaskNotReviewable,
)
from domain.log import EventMetadata, NewEvent, RecordedEvent
from domain.task import TaskState, cancel, review
from infrastructure.analysis_queue import enqueue_analysis
from infrastructure.task_log import TaskLog
from infrastructure.task_queries import tenant_task

log = logging.getLogger(__name__)

# Namespace for ids derived from an Idempotency-Key: the same key from the same caller always
# names the same task and the same TaskSubmitted event, so a retried request stores nothing new.
_IDEMPOTENCY = uuid.UUID("5f6b2a5e-1c1e-4c0e-9a55-7d1f6f0f5c11")

# Reviews of one task are taken one at a time in this process (a lock per task, dropped when no
# review holds it); writers elsewhere (other api processes, the worker) are met by re-reading
# the task and appending again, up to this many times, with a short random pause between tries.
_REVIEW_ATTEMPTS = 30
_REVIEW_BACKOFF_S = 0.01
_review_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
_COUNT_REVIEWS = sa.text(
    "SELECT count(*) FROM events WHERE stream_id = :task_id AND type = 'VerdictReviewed'"
)


class TooManyReviews(TaskNotReviewable):
    """The task holds `max_reviews_per_task` reviews already (409): one task's log is not an
    unbounded comment thread."""

    def __init__(self, task_id: str, limit: int) -> None:
        self.task_id = task_id
        DomainError.__init__(
            self, f"task {task_id!r} already has {limit} reviews, the most a task may have"
        )


async def submit_task(
    task_log: TaskLog,
    jobs: ArqRedis,
    queue: str,
    caller: Caller,
    submission: ev.TaskSubmitted,
    idempotency_key: str | None,
) -> tuple[str, bool]:
    """Record the submission, then enqueue its analysis. Returns (task_id, created)."""
    if idempotency_key:
        # Scoped to the caller, not just the tenant: two users' keys never meet (a submitter
        # cannot see another user's task, so a shared key would hand it a task it can't read).
        # A JSON array, not "tenant:actor:key": any of the three may hold ':', and a joined
        # string would let ("a", "b:c") and ("a:b", "c") name the same task.
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
        result = await task_log.append(task_id, [NewEvent(submission, metadata, event_id)], 0)
        created = result.stored
    except ConcurrencyConflict:
        created = False  # the key's task exists with other events: compare below
    if not created:
        (first,) = await task_log.store.read_stream(task_id, limit=1)
        if not _same_submission(first, caller, submission, fingerprint):
            raise IdempotencyKeyReused(idempotency_key or "")
    try:
        await enqueue_analysis(jobs, task_id, queue)
    except Exception as error:  # the task is recorded; the sweep enqueues it later
        log.warning("task %s recorded but not enqueued (%r); the sweep will retry", task_id, error)
    return task_id, created


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


async def cancel_task(
    task_log: TaskLog, caller: Caller, task_id: str, reason: str | None
) -> TaskState:
    """Append TaskCancelled unless the task is finished (409). The worker stops before its
    next step when its own next append conflicts with this one."""
    return await _decide(task_log, caller, task_id, lambda state: cancel(state, reason))


async def review_task(
    task_log: TaskLog,
    caller: Caller,
    task_id: str,
    decision: Literal["confirm", "override"],
    verdict: ev.Verdict | None,
    note: str,
    *,
    max_reviews: int,
) -> TaskState:
    """Record an analyst's review (VerdictReviewed); 409 unless the task has a verdict, and 409
    once it has `max_reviews` reviews. Concurrent reviews of one task all land: they queue on a
    per-task lock here, and one that still meets another writer's append decides again."""
    lock = _review_locks.get(task_id)
    if lock is None:
        lock = _review_locks[task_id] = asyncio.Lock()
    async with lock:
        reviews = await _review_count(task_log, task_id)
        if reviews >= max_reviews:
            await visible_task(task_log, caller, task_id)  # 404 first for a task it cannot see
            raise TooManyReviews(task_id, max_reviews)
        return await _decide(
            task_log,
            caller,
            task_id,
            lambda state: review(state, decision, verdict, note),
            attempts=_REVIEW_ATTEMPTS,
            backoff_s=_REVIEW_BACKOFF_S,
        )


async def _review_count(task_log: TaskLog, task_id: str) -> int:
    async with task_log.store.engine.connect() as conn:
        return int((await conn.execute(_COUNT_REVIEWS, {"task_id": task_id})).scalar_one())


async def _decide(
    task_log: TaskLog,
    caller: Caller,
    task_id: str,
    decide: Callable[[TaskState], ev.DomainEvent],
    *,
    attempts: int = 10,
    backoff_s: float = 0.0,
) -> TaskState:
    """Decide on the task's current state and append the decision; if someone appended in the
    meantime (the worker, another analyst), decide again on the newer state, up to `attempts`
    times, pausing up to `backoff_s` (random) between tries so that racers spread out."""
    metadata = EventMetadata(tenant=caller.tenant, actor=caller.actor)
    for attempt in range(attempts):
        state = await visible_task(task_log, caller, task_id)
        decision = decide(state)
        try:
            await task_log.append(task_id, [NewEvent(decision, metadata)], state.version)
        except ConcurrencyConflict:
            if backoff_s and attempt + 1 < attempts:
                await asyncio.sleep(random.uniform(0, backoff_s))
            continue
        after = await task_log.task(task_id)
        assert after is not None
        return after
    raise ConcurrencyConflict(task_id, state.version, None)


async def visible_task(task_log: TaskLog, caller: Caller, task_id: str) -> TaskState:
    """The task's state if the caller may see it; `TaskNotFound` otherwise (another tenant's
    task, or another submitter's for a submitter, is 'not found', never 'forbidden': its
    existence is not revealed). The scope is in the query (infrastructure/task_queries.py)."""
    state = await tenant_task(
        task_log.store.engine, caller.tenant, task_id, submitted_by=caller.submitted_by
    )
    if state is None:
        raise TaskNotFound(task_id)
    return state


def links(task_id: str) -> dict[str, Any]:
    return {
        "self": f"/tasks/{task_id}",
        "timeline": f"/tasks/{task_id}/timeline",
        "events": f"/tasks/{task_id}/events",
        "websocket": f"/ws/agent-progress/{task_id}",
        "cancel": f"/tasks/{task_id}/cancel",
    }
