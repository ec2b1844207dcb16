"""arq's worker, with one Redis round trip to claim a job instead of four, and none for a job
it is running already.

arq leaves a job's id in the queue until the job finishes, and every poll (every
`worker_poll_s`) reads the ids due and tries to start each: WATCH its in-progress key, EXISTS,
ZSCORE, then MULTI / PSETEX / EXEC (and UNWATCH when the job is running). So a job running here
is looked at again on every poll while it runs, four round trips a time, and each claim costs
four more. At 50 analyses a second that was about eleven Redis round trips per job, more than
the analysis's own statements to PostgreSQL.

`AnalysisWorker.start_jobs` skips the ids of jobs this worker is running (it knows them: arq's
`tasks`), and claims any other with one script that Redis runs atomically, doing what arq's
WATCH / MULTI does: the job is taken only when no worker holds it (its in-progress key), it is
still queued, and it is due; taking it sets the in-progress key for `in_progress_timeout_s`,
as arq does, so workers of either kind share a queue safely. Everything else (running the job,
retries, results, aborts) is arq's own.

The override uses arq's worker attributes (`sem`, `job_counter`, `tasks`, `run_job`, ...),
which is why pyproject.toml bounds arq's version; tests/integration/test_queue_worker.py runs
it against a real Redis.
"""

from __future__ import annotations

import logging
from functools import cached_property

from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker
from redis.commands.core import AsyncScript

log = logging.getLogger(__name__)

# KEYS: the job's in-progress key, the queue. ARGV: the job id, now (ms), the in-progress
# key's lifetime (ms). Returns the job's score when it was claimed, else nil (running
# elsewhere, finished and gone from the queue, or deferred past now).
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('PSETEX', KEYS[1], ARGV[3], '1')
return score
"""


class AnalysisWorker(Worker):
    """An arq `Worker` whose poll starts jobs with fewer round trips (see the module)."""

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Start each due job this worker is not running yet, while it has room (arq's
        semaphore); a job claimed by another worker meanwhile is left to it."""
        claim = self._claim
        lifetime_ms = int(self.in_progress_timeout_s * 1000)
        for job_id_b in job_ids:
            job_id = job_id_b.decode()
            running = self.tasks.get(job_id)
            if running is not None and not running.done():
                continue  # ours, under way: its id stays queued until it finishes
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs:
                self.sem.release()
                return
            self.job_counter += 1
            keys = [in_progress_key_prefix + job_id, self.queue_name]
            try:
                score = await claim(keys=keys, args=[job_id, timestamp_ms(), lifetime_ms])
            except BaseException:  # Redis away (run_worker starts a new worker), or cancelled
                self._give_back_slot()
                raise
            if score is None:
                self._give_back_slot()
                log.debug("job %s is running elsewhere, gone or not due yet", job_id)
                continue
            task = self.loop.create_task(self.run_job(job_id, int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    @cached_property
    def _claim(self) -> AsyncScript:
        """The claim script on this worker's Redis (its pool is made once, before the polls)."""
        return self.pool.register_script(_CLAIM)

    def _give_back_slot(self) -> None:
        self.job_counter -= 1
        self.sem.release()
