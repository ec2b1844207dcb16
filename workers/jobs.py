"""The arq worker: jobs take task ids, long-lived clients live in ctx (made at startup, closed at
shutdown), and settings are built by the caller, never at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import sqlalchemy as sa
from arq import Retry, cron, func
from arq.connections import RedisSettings
from arq.typing import StartupShutdown
from arq.worker import Worker
from redis.exceptions import RedisError

from domain import events as ev
from domain.decider import runs_exhausted
from domain.extraction import extract_entities
from domain.task import fold
from infrastructure.analysis_queue import ANALYZE, enqueue_analysis
from infrastructure.database import create_engine
from infrastructure.doorbell import Doorbell
from infrastructure.event_store import EventStore
from infrastructure.outage import Backoff
from infrastructure.settings import Settings
from infrastructure.task_log import TaskLog
from workers.analysis import Agent, run_analysis
from workers.queue_worker import AnalysisWorker
from workers.task_writer import TaskGone, TaskWasCancelled, TaskWriter
from workers.toolbox import ToolboxFactory, toolbox_factory

log = logging.getLogger(__name__)


async def analyze_task(ctx: dict[str, Any], task_id: str) -> str:
    agent: Agent = ctx["agent"]
    # Our own deadline, a little before arq's: arq would cancel the job and drop it without a
    # retry, and without a word in the log; the sweep would then start it again, for ever.
    deadline = asyncio.timeout(agent.settings.analysis_run_s)
    try:
        async with deadline:
            return await run_analysis(agent, task_id)
    except Exception as error:
        tries = int(ctx.get("job_try", 1))
        if deadline.expired():
            timeout = agent.settings.analysis_timeout_s
            how = f"the last one ran out of time (analysis_timeout_s is {timeout:g} s)"
            log.warning("analysis of %s ran out of time (try %d)", task_id, tries)
        else:
            how = f"the last one failed on an internal error ({type(error).__name__})"
            log.exception("analysis of %s failed (try %d)", task_id, tries)
        return await _retry_or_fail(agent, task_id, how)


async def _retry_or_fail(agent: Agent, task_id: str, how: str) -> str:
    """Retry the run later while the task has runs left (the log counts them, see
    `run_analysis`), else fail the task, saying why."""
    try:
        stream = await agent.log.store.read_stream(task_id)
    except Exception:  # the database too: try later (arq fails a job on any other exception)
        log.exception("analysis of %s: cannot read its log; retrying later", task_id)
        raise Retry(defer=30) from None
    state = fold(stream)
    if state is None or state.finished:  # e.g. TaskCompleted committed, its acknowledgement lost
        return "unknown" if state is None else state.status
    runs, most = state.analysis.runs, agent.settings.analysis_max_tries
    if runs < most:
        raise Retry(defer=min(2**runs, 30))
    # If it ends some other way meanwhile (cancelled, pruned), there is nothing to add.
    with contextlib.suppress(TaskWasCancelled, TaskGone):
        await TaskWriter(agent.log, stream, state=state).append(
            ev.TaskFailed(error=runs_exhausted(runs, most, how), percent=state.percent)
        )
    return "failed"


# Unfinished tasks that have been quiet longer than this were probably lost (Redis flushed, an
# enqueue that failed after the commit). Re-enqueueing is harmless: the job id dedupes.
_STALE = sa.text(
    "SELECT task_id FROM task_projection WHERE status IN ('submitted', 'running')"
    " AND updated_at < now() - make_interval(secs => :stale) ORDER BY updated_at LIMIT 500"
)


async def sweep_lost_tasks(ctx: dict[str, Any]) -> int:
    agent: Agent = ctx["agent"]
    store = agent.log.store
    if not isinstance(store, EventStore):  # the quiet tasks are found in PostgreSQL's projection
        return 0
    async with store.transaction() as conn:
        task_ids = (await conn.execute(_STALE, {"stale": agent.settings.stale_task_s})).scalars()
        stale = list(task_ids)
    requeued = 0
    for task_id in stale:
        requeued += await enqueue_analysis(ctx["redis"], task_id, agent.settings.queue)
    if requeued:
        log.warning("sweep: re-enqueued %d quiet unfinished tasks", requeued)
    return requeued


class QuietSweep(logging.Filter):
    """Drops arq's INFO lines about the sweep (its start, and its end with the count), written
    every `sweep_interval_s` whether or not it found anything. The sweep logs a warning of its
    own when it re-enqueued tasks; arq's warnings and errors about it are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(isinstance(a, str) and SWEEP_JOB in a for a in args)


SWEEP_JOB = f"cron:{sweep_lost_tasks.__name__}"
_quiet_sweep = QuietSweep()


def build_worker(
    settings: Settings,
    *,
    burst: bool = False,
    handle_signals: bool = True,
    toolbox: ToolboxFactory | None = None,
) -> Worker:
    """An arq worker for the analyses. Its tools come from `toolbox`, else from the factory
    `settings.toolbox` names, else the built-in ones (workers.toolbox)."""
    build_toolbox = toolbox or toolbox_factory(settings)
    logging.getLogger("arq.worker").addFilter(_quiet_sweep)  # once: a filter is added once

    startup = _startup(settings, build_toolbox)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await release(ctx)

    every = settings.sweep_interval_s
    return AnalysisWorker(
        functions=[
            func(
                analyze_task,
                name=ANALYZE,
                timeout=settings.analysis_timeout_s,
                # The log bounds the runs (analysis_max_tries); arq's count restarts whenever the
                # sweep re-enqueues a job. One try more than that, so that the try after the
                # last run's crash is ours (it fails the task, saying why), not arq's "max
                # retries exceeded", which drops the job silently.
                max_tries=settings.analysis_max_tries + 1,
                keep_result=0,  # a kept result would block re-enqueueing the same job id
            )
        ],
        cron_jobs=[
            cron(
                sweep_lost_tasks,
                second=set(range(0, 60, every)) if every < 60 else {0},
                run_at_startup=True,
                unique=True,
                # arq holds a crashed job for (longest function timeout + 10 s) before another
                # worker may take it, so the sweep must not be the longest.
                timeout=min(30, settings.analysis_timeout_s),
            )
        ],
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        queue_name=settings.queue,
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        max_jobs=settings.worker_concurrency,
        poll_delay=settings.worker_poll_s,
        handle_signals=handle_signals,
        # arq keeps the result of a job it drops (max retries exceeded) for keep_result, an hour
        # by default: the sweep could not re-enqueue the task meanwhile.
        keep_result=0,
    )


def _startup(settings: Settings, build_toolbox: ToolboxFactory) -> StartupShutdown:
    """What a worker opens at start: its engine, its tools, the log's doorbell and the agent."""

    async def startup(ctx: dict[str, Any]) -> None:
        engine = create_engine(settings, application_name="scamtrail-worker")
        box = build_toolbox(settings, engine)
        ctx["engine"], ctx["toolbox"] = engine, box
        ctx["doorbell"] = doorbell = Doorbell(settings, ctx["redis"])  # arq's own connection
        task_log = TaskLog(EventStore(engine), doorbell)
        ctx["agent"] = Agent(task_log, box.tools, settings, box.reasoner)
        # The public suffix list's trie and the phone metadata load on first use: here, not in
        # the first analysis, which would otherwise pay for them (about 65 ms of CPU here).
        extract_entities("+1 415 555 0100 https://www.example.co.uk/", "sms")
        log.info(
            "worker ready: %d analyses at once, tools %s",
            settings.worker_concurrency,
            ", ".join(sorted(box.tools)),
        )

    return startup


async def release(ctx: dict[str, Any]) -> None:
    """Close what startup opened; safe to call twice (shutdown, and run_worker after a crash)."""
    if toolbox := ctx.pop("toolbox", None):
        await toolbox.aclose()
    if doorbell := ctx.pop("doorbell", None):
        await doorbell.aclose()
    if engine := ctx.pop("engine", None):
        await engine.dispose()


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    """Run a worker until it is stopped (SIGINT / SIGTERM) or, with `burst`, the queue is empty.

    arq's poll loop has no retry: a Redis restart or failover ends `Worker.run` with a
    ConnectionError, which would end the whole process. The api and the relay ride Redis
    outages out; so does this: a fresh Worker is built and run
    again, with backoff, until Redis answers. Jobs running at the time finish first (arq's close
    waits for them); their arq state went with the restarted Redis, and the sweep re-enqueues
    whatever is left unfinished."""
    backoff = _worker_backoff(settings)
    while True:
        worker = build_worker(settings, burst=burst)
        try:
            worker.run()
            return
        except (RedisError, OSError) as error:
            # arq's close fails on the dead Redis before calling on_shutdown: release here, or
            # every outage would leak an engine (and its PostgreSQL connections).
            worker.loop.run_until_complete(release(worker.ctx))
            time.sleep(_restart_delay(backoff, error))


def _worker_backoff(settings: Settings) -> Backoff:
    return Backoff(first=0.2, most=settings.relay_backoff_max_s)


def _restart_delay(backoff: Backoff, error: BaseException) -> float:
    delay = backoff.next()
    log.warning("worker: Redis unreachable (%r); restarting in %.1f s", error, delay)
    return delay
