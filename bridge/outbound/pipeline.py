"""The intake pipeline: named steps that turn an accepted message into a fax to send.

Where it sits: between the SMTP front door and the transmit queue. `IntakeRunner`
claims `intake` jobs and runs the steps named in config `intake.pipeline` (STYLE: a
pipeline is a tuple of step names), each a small class in handlers/outbound/ that
derives from `IntakeStep` and has one `async process(job)`. After each step the job is
saved, so a restart resumes at the next step; steps are written to be safe to run again
(idempotent).

A step refuses a submission by raising `RejectSubmission` with the customer-facing
reason; the runner records it and mails the sender, in one transaction. Any other
exception parks the job in `failed` with the stage and traceback, for an operator's
`faxbridge jobs retry`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridge.core.component import Provided
from bridge.core.db import Database
from bridge.core.models import Job
from bridge.core.pipeline import Pipeline, Step
from bridge.core.queue import REJECTED, JobQueue, QueueName
from bridge.core.refusal import Refusal
from bridge.core.runner import Runner
from bridge.core.spool import Spool
from bridge.mail.kinds import MailKind
from bridge.mail.outbox import Outbox
from bridge.outbound.jobs import FaxJob
from bridge.outbound.notices import Notices

if TYPE_CHECKING:
    from bridge.settings import Settings

log = logging.getLogger("bridge.pipeline")


class RejectSubmission(Refusal):
    """A step will not go on with this submission; `reason` is what the sender reads:
    what was wrong and what to do about it."""


class IntakeStep(Step[FaxJob]):
    """A step of the intake pipeline (handlers/outbound/<step>.py): built with the
    StepContext, it works on the submission's FaxJob."""

    def __init__(self, context: StepContext) -> None:
        self.context = context


@dataclass(frozen=True)
class StepContext:
    """What steps may use; handed to each step's constructor."""

    settings: Settings
    db: Database
    spool: Spool
    # What other components provide (bridge.core.component): the meter step takes the
    # app's one Metering from here.
    provided: Provided


class IntakeRunner(Runner):
    """Runs the intake steps over a job's FaxJob, saving it after each step.

    A restart resumes at the first step not yet done (steps are safe to run again); a
    `RejectSubmission` ends the job rejected and mails the sender; any other exception
    parks it in `failed` with the step's name. When the steps are done the job moves
    on to `next_queue`.
    """

    queue_name = QueueName.INTAKE

    def __init__(
        self,
        queue: JobQueue,
        pipeline: Pipeline[FaxJob],
        *,
        next_queue: QueueName,
        outbox: Outbox,
        notices: Notices,
        workers: int,
        poll_seconds: float,
    ) -> None:
        super().__init__(queue, workers=workers, poll_seconds=poll_seconds)
        self.steps = pipeline.steps
        self.next_queue = next_queue
        self.outbox = outbox
        self.notices = notices

    async def handle(self, job: Job) -> None:
        payload = FaxJob.model_validate(job.payload)
        done = list(job.steps_done)
        for step in self.steps:
            if step.name in done:
                continue
            log.debug("step %s", step.name)
            try:
                await step.process(payload)
            except RejectSubmission as refusal:
                await self.rejected(job.id, payload, step.name, refusal)
                return
            except Exception:  # noqa: BLE001 - STYLE 5: any failure parks the job in `failed` with its traceback
                await self.park_failed(job.id, stage=step.name)
                return
            done.append(step.name)
            await self.queue.save_progress(job.id, payload, stage=step.name, steps_done=done)
        await self.completed(job.id, payload)

    async def completed(self, job_id: str, payload: FaxJob) -> None:
        async with self.queue.db.transaction() as tx:
            owned = await self.queue.owned(tx, job_id)
            JobQueue.move(owned, self.next_queue, payload)
        self.queue.wake(self.next_queue)
        log.info("intake done; waiting in queue %s", self.next_queue)

    async def rejected(self, job_id: str, payload: FaxJob, stage: str, refusal: RejectSubmission) -> None:
        log.info("rejected at %s (%s): %s", stage, refusal.rule or "-", refusal.reason)
        notice = self.notices.rejection(payload, refusal.reason, rule=refusal.rule)
        async with self.queue.db.transaction() as tx:
            owned = await self.queue.owned(tx, job_id)
            owned.stage = stage
            owned.payload = payload.model_dump(mode="json")
            JobQueue.finish(owned, REJECTED, error=refusal.reason, rule=refusal.rule)
            await self.outbox.enqueue(tx, notice, kind=MailKind.REJECTION, about_job=job_id)
