"""The runner loop every queue shares: claim a job, handle it, never lose it.

Where it sits: `bridge.app` starts one runner per queue (intake, mail, and the queues of
later stages); each runs `workers` concurrent loops that claim jobs from the durable
queue. A subclass only writes `handle(job)`; a runner that commits several jobs
together sets `batch_size` and writes `handle_batch(jobs)` instead.

Guarantees (STYLE 5, 11): an unexpected exception parks the job in `failed` with the
stage and traceback; on shutdown the loops stop claiming, in-flight jobs get
`grace` seconds, then are cancelled and left for the next start (the app releases their
leases). Every log line inside `handle` carries the job id.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from abc import ABC
from collections.abc import Callable

from bridge.core.logcontext import current_job
from bridge.core.models import Job
from bridge.core.queue import FAILED, JobQueue, LeaseLost, QueueName

log = logging.getLogger("bridge.runner")

# How often a deferring runner looks again whether it may work.
DEFER_CHECK_SECONDS = 0.05


class Runner(ABC):
    queue_name: QueueName
    # Jobs claimed at once; more than 1 only for runners that override handle_batch.
    batch_size = 1

    def __init__(self, queue: JobQueue, *, workers: int, poll_seconds: float) -> None:
        self.queue = queue
        self.workers = workers
        self.poll_seconds = poll_seconds
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # See defer_while(): a predicate meaning "something more urgent is going on".
        self._defer_while: Callable[[], bool] | None = None
        self._max_deferral = 0.0
        self._deferring_since: float | None = None

    def defer_while(self, busy: Callable[[], bool], *, max_seconds: float) -> None:
        """Start no new job while `busy()` is true, for at most `max_seconds` at a
        stretch (after that, work goes on regardless, so nothing starves)."""
        self._defer_while = busy
        self._max_deferral = max_seconds

    def _should_defer(self) -> bool:
        if self._defer_while is None or not self._defer_while():
            self._deferring_since = None
            return False
        now = time.monotonic()
        if self._deferring_since is None:
            self._deferring_since = now
        return now - self._deferring_since < self._max_deferral

    async def handle(self, job: Job) -> None:
        """Do the job's work and leave it finished, moved, postponed or parked."""
        raise NotImplementedError

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"{self.queue_name}-runner-{n}")
            for n in range(self.workers)
        ]

    async def stop(self, grace: float) -> None:
        """Stop claiming; give in-flight jobs `grace` seconds, then cancel them."""
        self._stopping.set()
        self.queue.wake(self.queue_name)
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%s: %d job(s) cut short at shutdown; they stay queued", self.queue_name, len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

    async def _work(self) -> None:
        while not self._stopping.is_set():
            if self._should_defer():
                await asyncio.sleep(DEFER_CHECK_SECONDS)
                continue
            try:
                jobs = await self.queue.claim_many(self.queue_name, self.batch_size)
            except Exception:
                log.exception("%s: cannot claim a job; retrying", self.queue_name)
                await asyncio.sleep(self.poll_seconds)
                continue
            if not jobs:
                await self.queue.wait_for_work(self.queue_name, self.poll_seconds)
                continue
            try:
                await self.handle_batch(jobs)
            except Exception:
                # A batch that could not even record its outcome (the database or the
                # disk failing under it): its jobs keep their leases and are claimed
                # again when those run out; this loop goes on with the next ones.
                log.exception("%s: a batch of %d job(s) could not be finished; they are retried when "
                              "their lease runs out", self.queue_name, len(jobs))
                await asyncio.sleep(self.poll_seconds)

    async def handle_batch(self, jobs: list[Job]) -> None:
        """Handle claimed jobs one after the other (runners that batch override this)."""
        for job in jobs:
            token = current_job.set(job.id)
            try:
                await self.handle(job)
            except LeaseLost:
                log.warning("lease lost: another worker took this job over")
            except Exception:  # noqa: BLE001 - STYLE 5: any failure parks the job in `failed` with its traceback
                await self.park_failed(job.id, stage=job.stage or self.queue_name)
            finally:
                current_job.reset(token)

    async def park_failed(self, job_id: str, *, stage: str) -> None:
        """Record the exception being handled on the job, in `failed` (STYLE 5)."""
        trace = traceback.format_exc()
        log.error("failed at %s; parked for `faxbridge jobs retry %s`\n%s", stage, job_id, trace)
        try:
            async with self.queue.db.transaction() as tx:
                job = await self.queue.owned(tx, job_id)
                job.stage = stage
                JobQueue.finish(job, FAILED, error=trace)
        except LeaseLost:
            log.warning("lease lost before the failure could be recorded")
