"""The inbound pipeline and its runner: a received fax, step by step, to the inbox.

Where it sits: fax line in -> intake (bridge.inbound.intake) -> *inbound pipeline*
-> outgoing mail queue -> relay. `InboundRunner` claims `inbound` jobs and runs the
steps named in config `inbound.pipeline`, each a small class in handlers/inbound/ that
derives from `InboundStep` and has one `async process(job)`.

Write once (issue 6 asks for 100 faxes a second): a step's `process` does its work on
files and in memory and only *reads* the database; a step that has something to write
derives from `InboundRecordingStep` and also has `async record(tx, faxes)`, which writes
for the faxes of a whole batch and returns those it refuses. The runner claims up to `inbound.batch` jobs at once, runs
their steps side by side, and then commits the batch in ONE transaction: every step's
`record`, each fax's row (file paths, state) and each job's end.
Should a `record` raise, that transaction is dropped and the batch written again with
each fax in a savepoint, so only that fax ends failed. A commit per fax and step would
hold the path to one database round trip after another. Before the commit the runner
fsyncs the files the steps wrote and their directories, the batch's side by side.

Crash safety: nothing of a fax is in the database until that commit, so a crash
before it re-runs the fax's steps from the start; each step is safe to run again
(`store` finds the file already moved, `deliver` rewrites its mails under the same
ids and charges only in the commit, once: R-USE-1, Non-negotiable 2).

A step that must not go on (the account was closed while the fax waited) raises
`RejectInbound` in `process`, or `record` returns it for that fax; the job ends
`rejected` with the reason,
the fax is recorded as undeliverable and stays in the message center until the
retention purge. Any other exception parks that job alone in `failed` for
`faxbridge jobs retry`; the rest of the batch commits.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.accounts.models import Account
from bridge.core.logcontext import current_job
from bridge.core.models import Job
from bridge.core.pipeline import Pipeline, RecordingStep, Step
from bridge.core.queue import DONE, FAILED, REJECTED, JobQueue
from bridge.core.refusal import Refusal
from bridge.core.runner import Runner
from bridge.core.spool import fsync_directory, fsync_file
from bridge.inbound.accounts import AccountViews
from bridge.inbound.jobs import QUEUE_INBOUND, InboundFaxJob
from bridge.inbound.messages import Footers
from bridge.inbound.models import UNDELIVERABLE, InboundFaxRecord
from bridge.inbound.workpool import WorkPool

if TYPE_CHECKING:
    from bridge.money.meter import Reception
    from bridge.services import Services

log = logging.getLogger("bridge.inbound")

# Threads that fsync a batch's files before its commit (see `_make_durable`).
FSYNC_THREADS = 4


class RejectInbound(Refusal):
    """The fax will not be delivered; `reason` says why (for operators and logs)."""


class InboundMetering(Protocol):
    """Charges received faxes inside the delivery transaction (R-USE-1, R-PLAN-2/3);
    bridge.money.meter.Metering is one. Returns the amount charged per fax id, in minor
    units."""

    async def charge_receptions(self, tx: AsyncSession, receptions: Sequence[Reception]) -> dict[str, int]: ...


@dataclass(frozen=True)
class InboundContext:
    """What inbound steps may use; handed to each step's constructor."""

    services: Services
    footers: Footers
    store_dir: Path  # the message center's files: <store_dir>/<account id>/<fax id>.*
    metering: InboundMetering | None
    work: WorkPool  # worker processes for the heavy file work
    accounts: AccountViews  # the accounts of the batch, read when it starts


class InboundStep(Step[InboundFaxJob]):
    """A step of the inbound pipeline (handlers/inbound/<step>.py): `process(job)` works
    on files and only reads the database. A step that writes derives from
    `InboundRecordingStep` instead and also has `record(tx, faxes)`, called inside the
    batch's transaction with the faxes still going: it writes for all but those it
    refuses, which it returns by fax id."""

    def __init__(self, context: InboundContext) -> None:
        self.context = context


class InboundRecordingStep(RecordingStep[InboundFaxJob], InboundStep):
    """An inbound step with the second phase (see InboundStep)."""


@dataclass
class _Worked:
    """What became of one claimed fax before the batch commit."""

    job_id: str
    fax: InboundFaxJob
    stage: str
    # RejectInbound from a step's `process`, or whatever Refusal a step's `record`
    # returned for the fax (RecordingStep.record answers with the base class).
    refusal: Refusal | None = None
    error: str | None = None  # a traceback: the job is parked in `failed`


class InboundRunner(Runner):
    queue_name = QUEUE_INBOUND

    def __init__(
        self,
        queue: JobQueue,
        pipeline: Pipeline[InboundFaxJob],
        accounts: AccountViews,
        *,
        workers: int,
        batch_size: int,
        poll_seconds: float,
    ) -> None:
        super().__init__(queue, workers=workers, poll_seconds=poll_seconds)
        self.pipeline = pipeline
        self.steps = pipeline.steps
        self.accounts = accounts
        self.batch_size = batch_size

    async def handle_batch(self, jobs: list[Job]) -> None:
        await self.accounts.load(job.payload["account_id"] for job in jobs)
        worked = await asyncio.gather(*(self._work_on(job) for job in jobs))
        # The steps wrote their files without fsync: the files and their names are made
        # durable here, all of the batch side by side (the kernel's journal then takes
        # them in a few commits), before the commit that records them.
        await _make_durable(worked)
        try:
            async with self.queue.db.transaction() as tx:
                ended = await self._commit(tx, worked)
        except Exception:  # noqa: BLE001 - whatever a `record` raised, the batch is retried fax by fax below
            # A step's `record` failed: nothing of the batch was written. Again, each
            # fax in a savepoint, so that one ends failed and the others commit.
            async with self.queue.db.transaction() as tx:
                ended = await self._commit(tx, worked, isolated=True)
        for item, state in zip(worked, ended, strict=True):
            token = current_job.set(item.job_id)
            try:
                if state == DONE:
                    log.info("inbound fax done: mailed to %s",
                             ", ".join(rcpt for stored in item.fax.mails for rcpt in stored.mail.rcpt_tos) or "nobody")
                elif state == REJECTED:
                    assert item.refusal is not None
                    log.info("not delivered (at %s): %s", item.stage, item.refusal.reason)
                    await asyncio.to_thread(_discard_unqueued_mails, item.fax)
                elif state == FAILED:
                    log.error("failed at %s; parked for `faxbridge jobs retry %s`\n%s",
                              item.stage, item.job_id, item.error)
                    await asyncio.to_thread(_discard_unqueued_mails, item.fax)
                else:
                    log.warning("lease lost: another worker took this job over")
            finally:
                current_job.reset(token)

    async def _work_on(self, job: Job) -> _Worked:
        """Run the steps' `process` for one fax (no database writes)."""
        token = current_job.set(job.id)
        fax = InboundFaxJob.model_validate(job.payload)
        stage: str = self.queue_name
        try:
            for step in self.steps:
                stage = step.name
                log.debug("step %s", stage)
                await step.process(fax)
        except RejectInbound as refusal:
            return _Worked(job.id, fax, stage, refusal=refusal)
        except Exception:  # noqa: BLE001 - STYLE 5: any failure parks the job in `failed` with its traceback
            return _Worked(job.id, fax, stage, error=traceback.format_exc())
        finally:
            current_job.reset(token)
        return _Worked(job.id, fax, stage)

    async def _commit(self, tx: AsyncSession, worked: Sequence[_Worked], *, isolated: bool = False) -> list[str | None]:
        """Write the batch's outcomes; each fax's end state, or None for a job that is
        no longer ours. Not `isolated`, a step's exception propagates (the caller then
        does it all again `isolated`: each fax's records in a savepoint of its own)."""
        ids = [item.job_id for item in worked]
        # One query each for the batch's jobs, fax rows and accounts: the steps' and
        # metering's `tx.get`s then find them in the session (which holds objects only
        # weakly: these lists keep them there until the commit).
        jobs = {job.id: job for job in await tx.scalars(
            select(Job).where(Job.id.in_(ids)).execution_options(populate_existing=True))}
        rows = (await tx.scalars(select(InboundFaxRecord).where(InboundFaxRecord.id.in_(ids)))).all()
        accounts = (await tx.scalars(
            select(Account).where(Account.id.in_({item.fax.account_id for item in worked})))).all()
        ours = [item for item in worked if self.queue.is_ours(jobs.get(item.job_id))]
        going = [item for item in ours if item.refusal is None and item.error is None]
        if isolated:
            for item in going:
                try:
                    async with tx.begin_nested():
                        await self._record([item], tx)
                except Exception:  # noqa: BLE001 - STYLE 5: that fax alone is parked in `failed` with its traceback
                    item.error = traceback.format_exc()
        else:
            await self._record(going, tx)
        ended: dict[str, str] = {}
        for item in ours:
            job = jobs[item.job_id]
            if isolated:
                await tx.refresh(job)  # as it was before a savepoint that was rolled back
            job.stage = item.stage
            job.payload = item.fax.model_dump(mode="json")
            row = await _note_files(tx, item.fax)
            if item.refusal is not None:
                JobQueue.finish(job, REJECTED, error=item.refusal.reason, rule=item.refusal.rule)
                if row is not None:
                    row.state = UNDELIVERABLE
                    row.detail = item.refusal.reason
                ended[item.job_id] = REJECTED
            elif item.error is not None:
                JobQueue.finish(job, FAILED, error=item.error)
                ended[item.job_id] = FAILED
            else:
                job.steps_done = [step.name for step in self.steps]
                JobQueue.finish(job, DONE)
                ended[item.job_id] = DONE
        del rows, accounts  # held until here on purpose (see above)
        return [ended.get(item.job_id) for item in worked]

    async def _record(self, items: list[_Worked], tx: AsyncSession) -> None:
        """Every step's `record` for the faxes still going; a refused fax drops out."""
        for step in self.pipeline.recorders:
            if not items:
                break
            for item in items:
                item.stage = step.name
            refused = await step.record(tx, [item.fax for item in items])
            for item in items:
                if item.fax.id in refused:
                    item.refusal = refused[item.fax.id]
            items = [item for item in items if item.refusal is None]


async def _note_files(tx: AsyncSession, fax: InboundFaxJob) -> InboundFaxRecord | None:
    """Record where the fax's files are now, for the message center and the purge."""
    row = await tx.get(InboundFaxRecord, fax.id)
    if row is not None:
        row.tiff_path = fax.stored_tiff or fax.tiff_path
        if fax.pdf_path:
            row.pdf_path = fax.pdf_path
    return row


async def _make_durable(worked: Sequence[_Worked]) -> None:
    files: set[Path] = set()
    directories: set[Path] = set()
    for item in worked:
        fax = item.fax
        made = [fax.pdf_path, *(stored.mail.eml_path for stored in fax.mails)]
        files.update(Path(path) for path in made if path)
        moved = [fax.tiff_path, fax.stored_tiff]  # fsynced at intake; their names moved
        directories.update(Path(path).parent for path in [*made, *moved] if path)
    # A few threads side by side, each with its share of the files: fsyncs that wait
    # together let the file system's journal take them in a few commits, and a few
    # thread calls cost the event loop less than one per file (bench/inbound).
    ordered = sorted(files)
    await asyncio.gather(*(
        asyncio.to_thread(_fsync_each, ordered[n::FSYNC_THREADS], fsync_file) for n in range(FSYNC_THREADS)
    ))
    await asyncio.to_thread(_fsync_each, sorted(directories), fsync_directory)


def _fsync_each(paths: Sequence[Path], fsync: Callable[[Path], None]) -> None:
    for path in paths:
        if path.exists():
            fsync(path)


def _discard_unqueued_mails(fax: InboundFaxJob) -> None:
    """Mails `deliver` stored for a fax that was not delivered: never queued, removed."""
    for stored in fax.mails:
        Path(stored.mail.eml_path).unlink(missing_ok=True)
