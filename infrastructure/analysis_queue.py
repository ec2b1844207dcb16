"""The arq queue of analyses, as the api and the sweep see it."""

from __future__ import annotations

from arq import ArqRedis

ANALYZE = "analyze_task"


async def enqueue_analysis(jobs: ArqRedis, task_id: str, queue: str) -> bool:
    """Enqueue the task's job; the job id is the task id, so a task never has two jobs queued
    or running at once. False when one already is."""
    job = await jobs.enqueue_job(ANALYZE, task_id, _job_id=task_id, _queue_name=queue)
    return job is not None
