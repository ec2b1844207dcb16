"""The arq queue of analyses, as the api and the sweep see it."""

from __future__ import annotations

from arq import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

ANALYZE = "analyze_task"

# What `ArqRedis.enqueue_job` does, as one script: store the job and queue its id, unless a job
# or a kept result of that id is there already. arq's own takes three round trips (WATCH, EXISTS,
# then MULTI/EXEC); a submission pays for each, and the script, run atomically by Redis, needs no
# WATCH to stay correct against another enqueue of the same id.
# KEYS: the job's key, its result's key, the queue. ARGV: expiry (ms), job, job id, score.
_ENQUEUE = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
return 1
"""


async def enqueue_analysis(jobs: ArqRedis, task_id: str, queue: str) -> bool:
    """Enqueue the task's job, as arq's `enqueue_job` would store it; the job id is the task
    id, so a task never has two jobs queued or running at once. False when one already is."""
    enqueued_at = timestamp_ms()
    job = serialize_job(ANALYZE, (task_id,), {}, None, enqueued_at, serializer=jobs.job_serializer)
    keys = [job_key_prefix + task_id, result_key_prefix + task_id, queue]
    args: list[bytes | str | int] = [jobs.expires_extra_ms, job, task_id, enqueued_at]
    return bool(await jobs.register_script(_ENQUEUE)(keys=keys, args=args))
