"""The durable job queue every runner works from.

Where it sits: the SMTP intake enqueues an `intake` job in the transaction that records
the submission; the intake runner claims it, runs the pipeline and moves it on to the
next queue (`transmit`); notices go through the `mail` queue. Later stages add queues.

Queue names and job states are the enums below, not free strings: a queue named in
the configuration (`intake.next_queue`) is checked against `QueueName` at start, so a
typo stops start-up instead of stranding every job in a queue no runner reads. The
database column stays a plain string (a StrEnum member is its value).

A job is claimed with a lease (owner + expiry). Every later write about the job names
the owner, so a worker that lost its lease (it stalled past the expiry and someone else
took the job) cannot overwrite the new owner's work. A worker that dies simply stops
renewing: its jobs are claimed again when the lease ends, or at once at the next start
on the same host when the owning process is gone. Nothing is ever deleted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.core.db import Database
from bridge.core.models import Job, utcnow

log = logging.getLogger("bridge.queue")


class JobState(StrEnum):
    """Where a job is in its life (the `jobs.state` column)."""

    QUEUED = "queued"
    RUNNING = "running"
    # A job whose work continues in child jobs (a fax waiting for its calls): not claimable.
    WAITING = "waiting"
    DONE = "done"
    REJECTED = "rejected"
    FAILED = "failed"


class QueueName(StrEnum):
    """The product's queues (the `jobs.queue` column); a runner reads each one.

    A new flow that needs a queue adds it here, so that configuration naming it is
    checked at start like any other.
    """

    INTAKE = "intake"  # accepted submissions, through the intake pipeline (bridge.outbound)
    TRANSMIT = "transmit"  # rendered faxes waiting for their calls (bridge.outbound.transmit)
    CALL = "call"  # one call of a fax to one number (bridge.outbound.transmit)
    MAIL = "mail"  # every mail the service sends (bridge.mail)
    INBOUND = "inbound"  # received faxes, through the inbound pipeline (bridge.inbound)


# The names the code used before the enums; each is the enum member itself.
QUEUED, RUNNING, WAITING = JobState.QUEUED, JobState.RUNNING, JobState.WAITING
DONE, REJECTED, FAILED = JobState.DONE, JobState.REJECTED, JobState.FAILED
JOB_STATES = tuple(JobState)


class LeaseLost(Exception):
    """The job is no longer ours: its lease ran out and another worker claimed it."""


def process_owner() -> str:
    """`host:pid:nonce`: the nonce tells a recycled pid from the process that died."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class JobQueue:
    def __init__(self, db: Database, *, lease_seconds: float, owner: str | None = None) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = owner or process_owner()
        # Keyed by plain strings: a job read back from the database names its queue as one.
        self._wakeups: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    # --- putting work in -------------------------------------------------------------
    @staticmethod
    def add(
        tx: AsyncSession,
        queue: QueueName,
        payload: BaseModel,
        *,
        job_id: str,
        submission_id: str | None = None,
        parent_id: str | None = None,
        not_before: datetime | None = None,
    ) -> Job:
        """Add a job inside the caller's transaction (it is durable when that commits)."""
        job = Job(
            id=job_id,
            queue=queue,
            state=QUEUED,
            submission_id=submission_id,
            parent_id=parent_id,
            payload=payload.model_dump(mode="json"),
            not_before=not_before or utcnow(),
        )
        tx.add(job)
        return job

    @staticmethod
    def new_row(
        queue: QueueName, payload: BaseModel, *, job_id: str, submission_id: str | None = None
    ) -> dict[str, Any]:
        """The column values of a new queued job, for bulk inserts (the intake's)."""
        now = utcnow()
        return dict(
            id=job_id, queue=queue, state=QUEUED, submission_id=submission_id, parent_id=None,
            payload=payload.model_dump(mode="json"), stage="", steps_done=[], attempts=0,
            not_before=now, lease_owner=None, lease_until=None, last_error=None, rule=None,
            created_at=now, updated_at=now,
        )

    def wake(self, queue: QueueName) -> None:
        """Tell this process's runner of `queue` that there is work (after a commit)."""
        self._wakeups[queue].set()

    async def wait_for_work(self, queue: QueueName, timeout: float) -> None:
        event = self._wakeups[queue]
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        event.clear()

    # --- taking work out -------------------------------------------------------------
    async def claim(self, queue: QueueName) -> Job | None:
        """Take the next due job of `queue`, or a running one whose lease ran out."""
        jobs = await self.claim_many(queue, 1)
        return jobs[0] if jobs else None

    async def claim_many(self, queue: QueueName, limit: int) -> list[Job]:
        """Take up to `limit` due jobs of `queue` (oldest first) in one transaction.

        Runners that commit a batch of jobs together (the inbound runner) claim them
        together: one write for the batch instead of one per job.
        """
        now = utcnow()
        claimable = and_(
            Job.queue == queue,
            or_(
                and_(Job.state == QUEUED, Job.not_before <= now),
                and_(Job.state == RUNNING, Job.lease_until < now),
            ),
        )
        # Look first without the write lock: an idle runner must not make the intake
        # wait for the database.
        async with self.db.reading() as session:
            if await session.scalar(select(Job.id).where(claimable).limit(1)) is None:
                return []
        # Choose and take in one statement, inside the write transaction: two workers
        # claiming at once each get a whole batch, never the same job (PostgreSQL: the
        # rows chosen are locked, and rows another claimer holds are skipped).
        chosen = (
            select(Job.id).where(claimable).order_by(Job.not_before).limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.db.transaction() as tx:
            claimed = (
                await tx.scalars(
                    update(Job)
                    .where(Job.id.in_(chosen), claimable)
                    .values(
                        state=RUNNING,
                        lease_owner=self.owner,
                        lease_until=now + self.lease,
                        attempts=Job.attempts + 1,
                        updated_at=now,
                    )
                    .returning(Job)
                    .execution_options(synchronize_session=False)
                )
            ).all()
        return sorted(claimed, key=lambda job: job.not_before)

    async def owned(self, tx: AsyncSession, job_id: str) -> Job:
        """The job, locked to us: LeaseLost if another worker owns it now."""
        job = await tx.get(Job, job_id, populate_existing=True)
        if not self.is_ours(job):
            raise LeaseLost(job_id)
        assert job is not None
        return job

    def is_ours(self, job: Job | None) -> bool:
        """Whether `job`, as just read inside a write transaction, is still ours."""
        return job is not None and job.state == RUNNING and job.lease_owner == self.owner

    async def save_progress(
        self, job_id: str, payload: BaseModel, *, stage: str, steps_done: Sequence[str]
    ) -> None:
        """Record a finished step and renew the lease, in one transaction."""
        async with self.db.transaction() as tx:
            job = await self.owned(tx, job_id)
            job.payload = payload.model_dump(mode="json")
            job.stage = stage
            job.steps_done = list(steps_done)
            job.lease_until = utcnow() + self.lease

    @staticmethod
    def finish(job: Job, state: JobState, *, error: str | None = None, rule: str | None = None) -> None:
        """Mark an owned job done, rejected or failed (inside the caller's transaction)."""
        job.state = state
        job.lease_owner = None
        job.lease_until = None
        job.last_error = error
        job.rule = rule

    @staticmethod
    def move(job: Job, queue: QueueName, payload: BaseModel, *, not_before: datetime | None = None) -> None:
        """Hand an owned job to the next queue, as a fresh queued job there."""
        job.queue = queue
        job.state = QUEUED
        job.payload = payload.model_dump(mode="json")
        job.steps_done = []
        job.stage = ""
        job.attempts = 0
        job.lease_owner = None
        job.lease_until = None
        job.not_before = not_before or utcnow()

    async def postpone(self, job_id: str, delay_seconds: float, error: str) -> None:
        """Put an owned job back to wait (a relay that is down, a busy line)."""
        async with self.db.transaction() as tx:
            job = await self.owned(tx, job_id)
            job.state = QUEUED
            job.lease_owner = None
            job.lease_until = None
            job.last_error = error
            job.not_before = utcnow() + timedelta(seconds=delay_seconds)

    # --- operators and lifecycle -----------------------------------------------------
    async def retry(self, job_id: str) -> Job:
        """Queue a failed or rejected job again, from the step where it stopped."""
        async with self.db.transaction() as tx:
            job = await tx.get(Job, job_id)
            if job is None:
                raise KeyError(job_id)
            if job.state not in (FAILED, REJECTED):
                raise ValueError(f"job {job_id} is {job.state}; only failed or rejected jobs can be retried")
            job.state = QUEUED
            job.not_before = utcnow()
            job.lease_owner = None
            job.lease_until = None
            job.last_error = None
            job.rule = None
        self._wakeups[job.queue].set()
        return job

    async def release_mine(self) -> int:
        """On shutdown: put the jobs this process holds back in the queue at once."""
        async with self.db.transaction() as tx:
            result = await tx.execute(
                update(Job)
                .where(Job.state == RUNNING, Job.lease_owner == self.owner)
                .values(state=QUEUED, lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
        # An UPDATE's result is a CursorResult, which has rowcount; SQLAlchemy types
        # AsyncSession.execute() as returning the base Result.
        return result.rowcount  # type: ignore[attr-defined]

    async def recover_orphans(self) -> int:
        """At start: requeue running jobs of dead processes on this host.

        Jobs of other hosts (several servers sharing PostgreSQL) wait for their lease.
        """
        host = socket.gethostname()
        async with self.db.transaction() as tx:
            running = (
                await tx.scalars(select(Job).where(Job.state == RUNNING))
            ).all()
            recovered = 0
            for job in running:
                owner_host, _, rest = (job.lease_owner or "").partition(":")
                pid = rest.partition(":")[0]
                if owner_host == host and pid.isdigit() and not _pid_alive(int(pid)):
                    log.warning("job %s: its worker (%s) died; queued again", job.id, job.lease_owner)
                    job.state = QUEUED
                    job.lease_owner = None
                    job.lease_until = None
                    recovered += 1
        return recovered


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier life of this pid: we hold no jobs yet at start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
