"""The transmit queue: rendered faxes go out over the fax line, one call per number.

Where it sits: after the intake pipeline (which ends by moving the job to `transmit`)
and before the receipt:

    transmit job (FaxJob) --fan out--> one `call` job per number --fax line--> attempts
                                                                     |
                              all numbers done <-- CallAttempt rows (R-USE-3 billing)
                                     |
                                  receipt mail (PDF attached), job done

One submission to several numbers is rendered once and sent once per number. Each
call job is independent: busy and unanswered numbers are retried on their own
schedule (`transmit.busy_retry_seconds`, `no_answer_retry_seconds`, times
`backoff_factor` per attempt, at most `max_attempts`), a number not in service is never
retried, and numbers the dial plan refuses are never dialled nor billed.

Every attempt is recorded in `call_attempts` in the same transaction that decides what
happens next and, with metering, charges it: an attempt is billed exactly when its row
is written, so a crash during a call (no row yet) leads to a new attempt, never to a
second charge. The last call job to finish sends the receipt and settles the job's
reservation in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.accounts.models import FaxNumber
from bridge.core.component import ServiceKey
from bridge.core.db import Database
from bridge.core.models import Job, utcnow
from bridge.core.queue import DONE, FAILED, QUEUED, WAITING, JobQueue, JobState
from bridge.core.runner import Runner
from bridge.faxline import (
    CallOutcome,
    CallRequest,
    CallResult,
    FaxDocumentError,
    FaxLine,
    LineClosed,
)
from bridge.mail.kinds import MailKind
from bridge.outbound.dialplan import DialPlan
from bridge.outbound.jobs import QUEUE_CALL, QUEUE_TRANSMIT, CallJob, FaxJob
from bridge.outbound.models import CallAttempt
from bridge.outbound.notices import CallReport, Notices
from bridge.outbound.settings import TransmitSettings

if TYPE_CHECKING:
    from bridge.services import Services

log = logging.getLogger("bridge.transmit")

# How long a call job waits when the line itself is down or shutting down.
LINE_UNAVAILABLE_RETRY_SECONDS = 30.0


class CallMetering(Protocol):
    """What the call runner needs from money: bridge.money.meter.Metering is one, and the
    composition root hands the app's one Metering over under CALL_METERING."""

    async def charge_attempt(self, tx: AsyncSession, *, job: FaxJob, attempt: CallAttempt) -> int: ...

    async def settle(self, tx: AsyncSession, *, job: FaxJob) -> None: ...

    def format_money(self, minor: int) -> str: ...


CALL_METERING: ServiceKey[CallMetering] = ServiceKey("metering of fax calls")


class TransmitRunner(Runner):
    """Fans a rendered fax out into one call job per number."""

    queue_name = QUEUE_TRANSMIT

    async def handle(self, job: Job) -> None:
        fax = FaxJob.model_validate(job.payload)
        if fax.rendered is None:
            raise RuntimeError("a fax reached the transmit queue without a rendered document")
        async with self.queue.db.transaction() as tx:
            owned = await self.queue.owned(tx, job.id)
            for index, number in enumerate(fax.recipients, start=1):
                JobQueue.add(
                    tx,
                    QUEUE_CALL,
                    CallJob(parent_id=job.id, number=number),
                    job_id=f"{job.id}.{index}",
                    submission_id=owned.submission_id,
                    parent_id=job.id,
                )
            owned.state = WAITING
            owned.stage = "calling"
            owned.lease_owner = None
            owned.lease_until = None
        self.queue.wake(QUEUE_CALL)
        log.info("sending %d page(s) to %s", fax.rendered.page_count, ", ".join(fax.recipients))


class CallRunner(Runner):
    """Dials one number for one fax; retries, records, bills and, last, sends the receipt."""

    queue_name = QUEUE_CALL

    def __init__(
        self,
        services: Services,
        line: FaxLine,
        *,
        workers: int,
        notices: Notices,
        metering: CallMetering | None = None,
    ) -> None:
        super().__init__(services.queue, workers=workers, poll_seconds=services.settings.queue.poll_seconds)
        self.services = services
        self.line = line
        self.notices = notices
        self.settings: TransmitSettings = services.settings.transmit
        self.dial_plan = DialPlan(self.settings)
        self.metering = metering

    async def handle(self, job: Job) -> None:
        call = CallJob.model_validate(job.payload)
        fax = await self._parent_fax(call.parent_id)
        assert fax.rendered is not None
        refusal = self.dial_plan.refusal(call.number)
        if refusal:
            log.warning("%s not dialled: %s", call.number, refusal)
            call.outcome, call.detail = "blocked", f"Not dialled: {refusal}."
            await self._finish(job.id, call, fax, state=DONE)
            return
        caller = await self._caller_number(fax)
        request = CallRequest(
            to_number=call.number,
            tiff_path=Path(fax.rendered.tiff_path),
            caller_number=caller,
            station_id=self.settings.station_id,
            job_id=job.id,
        )
        started = utcnow()
        try:
            result = await self.line.place_call(request)
        except LineClosed as closed:
            log.warning("line unavailable (%s); trying again later", closed)
            await self.queue.postpone(job.id, LINE_UNAVAILABLE_RETRY_SECONDS, str(closed))
            return
        except FaxDocumentError:
            await self.park_failed(job.id, stage="call")
            return
        await self._record(job, call, fax, result, started)

    async def _record(self, job: Job, call: CallJob, fax: FaxJob, result: CallResult, started: datetime) -> None:
        attempt_no = job.attempts
        final = (
            result.outcome in (CallOutcome.COMPLETED, CallOutcome.NOT_IN_SERVICE)
            or attempt_no >= self.settings.max_attempts
        )
        async with self.queue.db.transaction() as tx:
            owned = await self.queue.owned(tx, job.id)
            attempt = CallAttempt(
                job_id=fax.id,
                account_id=fax.account_id,
                number=call.number,
                attempt=attempt_no,
                outcome=result.outcome.value,
                answered=result.answered,
                pages_sent=result.pages_sent,
                line_seconds=result.line_seconds,
                bit_rate=result.bit_rate,
                ecm=result.ecm,
                remote_station_id=result.remote_station_id[:40],
                detail=result.detail,
                started_at=started,
                finished_at=utcnow(),
            )
            tx.add(attempt)
            await tx.flush()
            charged = 0
            if self.metering is not None:
                # R-USE-3: every attempt in which the far end answered is billed, in the
                # transaction that records it, so it is billed exactly once.
                charged = await self.metering.charge_attempt(tx, job=fax, attempt=attempt)
            call.attempts = attempt_no
            call.pages_sent = max(call.pages_sent, result.pages_sent)
            call.line_seconds += result.line_seconds
            call.charged_minor += charged
            call.outcome, call.detail = result.outcome.value, result.detail
            owned.payload = call.model_dump(mode="json")
            if final:
                JobQueue.finish(owned, DONE)
                await self._after_call_done(tx, fax)
            else:
                delay = self._retry_delay(result.outcome, attempt_no)
                owned.state = QUEUED
                owned.lease_owner = None
                owned.lease_until = None
                owned.last_error = result.detail
                owned.not_before = utcnow() + timedelta(seconds=delay)
                log.info("%s: %s; attempt %d of %d in %.0f s", call.number, result.outcome.value, attempt_no + 1,
                         self.settings.max_attempts, delay)
        log.info("%s: attempt %d %s, %d page(s), %.0f s on the line", call.number, attempt_no, result.outcome.value,
                 result.pages_sent, result.line_seconds)

    async def _finish(self, job_id: str, call: CallJob, fax: FaxJob, *, state: JobState) -> None:
        async with self.queue.db.transaction() as tx:
            owned = await self.queue.owned(tx, job_id)
            owned.payload = call.model_dump(mode="json")
            JobQueue.finish(owned, state)
            await self._after_call_done(tx, fax)

    async def _after_call_done(self, tx: AsyncSession, fax: FaxJob) -> None:
        """When this was the fax's last open call: receipt, settlement, parent done."""
        parent = await tx.get(Job, fax.id, with_for_update=True)
        assert parent is not None
        open_calls = await tx.scalar(
            select(func.count()).select_from(Job).where(
                Job.parent_id == fax.id, Job.queue == QUEUE_CALL, Job.state.not_in((DONE, FAILED))
            )
        )
        # This call's own row is already marked done in this transaction's session.
        if open_calls:
            return
        calls = [
            CallJob.model_validate(payload)
            for payload in (
                await tx.scalars(
                    select(Job.payload).where(Job.parent_id == fax.id, Job.queue == QUEUE_CALL).order_by(Job.id))
            ).all()
        ]
        if self.metering is not None:
            await self.metering.settle(tx, job=fax)
        reports = [
            CallReport(
                number=c.number,
                outcome=c.outcome or "failed",
                detail=c.detail,
                attempts=c.attempts,
                pages_sent=c.pages_sent,
                line_seconds=c.line_seconds,
                cost=self.metering.format_money(c.charged_minor) if self.metering is not None else None,
            )
            for c in calls
        ]
        pdf = await asyncio.to_thread(Path(fax.rendered.pdf_path).read_bytes) if fax.rendered else None
        receipt = self.notices.receipt(fax, reports, pdf)
        await self.services.outbox.enqueue(tx, receipt, kind=MailKind.RECEIPT, about_job=fax.id)
        parent.state = DONE
        parent.stage = "sent" if all(c.outcome == CallOutcome.COMPLETED for c in calls) else "finished"
        log.info("all numbers done for %s; receipt queued", fax.id)

    def _retry_delay(self, outcome: CallOutcome, attempt_no: int) -> float:
        base = {
            CallOutcome.BUSY: self.settings.busy_retry_seconds,
            CallOutcome.NO_ANSWER: self.settings.no_answer_retry_seconds,
        }.get(outcome, self.settings.dropped_retry_seconds)
        return base * self.settings.backoff_factor ** (attempt_no - 1)

    async def _parent_fax(self, parent_id: str) -> FaxJob:
        async with self.queue.db.reading() as session:
            payload = await session.scalar(select(Job.payload).where(Job.id == parent_id))
        if payload is None:
            raise RuntimeError(f"call job without its fax job {parent_id}")
        return FaxJob.model_validate(payload)

    async def _caller_number(self, fax: FaxJob) -> str:
        async with self.queue.db.reading() as session:
            number = await session.scalar(
                select(FaxNumber.e164).where(FaxNumber.account_id == fax.account_id).order_by(FaxNumber.id).limit(1)
            )
        return number or self.services.settings.render.station_number


def service_number_lookup(db: Database) -> Callable[[str], Awaitable[bool]]:
    """For the virtual line's dial plan: is this one of the service's own numbers?"""

    async def is_service_number(e164: str) -> bool:
        async with db.reading() as session:
            return await session.scalar(select(FaxNumber.id).where(FaxNumber.e164 == e164)) is not None

    return is_service_number
