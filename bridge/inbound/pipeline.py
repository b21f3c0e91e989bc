"""The inbound pipeline and its runner: a received fax, step by step, to the inbox.

Where it sits: fax line in -> intake (bridge.inbound.intake) -> *inbound pipeline*
-> outgoing mail queue -> relay. `InboundRunner` claims `inbound` jobs and runs the
steps named in config `inbound.pipeline`, each a small class in handlers/inbound_*.py
with one `async process(job)`. The job is saved after every step, so a restart resumes
at the next one; each step is safe to run again.

A step that must not go on (the account was closed while the fax waited) raises
`RejectInbound`; the job ends `rejected` with the reason, the fax is recorded as
undeliverable and stays in the message center until the retention purge. Any other
exception parks the job in `failed` for `faxbridge jobs retry`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.components import Services
from bridge.inbound.jobs import QUEUE_INBOUND, InboundFaxJob
from bridge.inbound.messages import Footers
from bridge.inbound.models import UNDELIVERABLE, InboundFaxRecord
from bridge.queue import DONE, REJECTED, JobQueue
from bridge.pipeline import StepRunner, build_pipeline
from bridge.refusal import Refusal

log = logging.getLogger("bridge.inbound")


class RejectInbound(Refusal):
    """The fax will not be delivered; `reason` says why (for operators and logs)."""


class InboundMetering(Protocol):
    """Charges a received fax inside the delivery transaction (R-USE-1, R-PLAN-2/3);
    bridge.money.meter.Metering is one. Returns the amount charged, in minor units."""

    async def charge_inbound(
        self, tx: AsyncSession, *, account_id: int, fax_id: str, pages: int, line_seconds: float, number_kind: str
    ) -> int: ...


@dataclass(frozen=True)
class InboundContext:
    """What inbound steps may use; handed to each step's constructor."""

    services: Services
    footers: Footers
    store_dir: Path  # the message center's files: <store_dir>/<account id>/<fax id>.*
    metering: InboundMetering | None


class InboundStep(Protocol):
    name: str

    async def process(self, job: InboundFaxJob) -> None: ...


InboundStepFactory = Callable[[InboundContext], InboundStep]


def build_inbound_pipeline(
    names: Sequence[str], registry: Mapping[str, InboundStepFactory], context: InboundContext
) -> tuple[InboundStep, ...]:
    return build_pipeline(names, registry, context, setting="inbound.pipeline")


class InboundRunner(StepRunner[InboundFaxJob]):
    queue_name = QUEUE_INBOUND
    payload_type = InboundFaxJob
    rejection = RejectInbound

    async def completed(self, job_id: str, fax: InboundFaxJob) -> None:
        async with self.queue.db.transaction() as tx:
            JobQueue.finish(await self.queue.owned(tx, job_id), DONE)
        log.info("inbound fax done: %d mail(s) queued", len(fax.mail_ids))

    async def rejected(self, job_id: str, fax: InboundFaxJob, stage: str, refusal: RejectInbound) -> None:
        await self._reject(job_id, fax, stage, refusal)

    async def _reject(self, job_id: str, fax: InboundFaxJob, stage: str, refusal: RejectInbound) -> None:
        log.info("not delivered (at %s): %s", stage, refusal.reason)
        async with self.queue.db.transaction() as tx:
            owned = await self.queue.owned(tx, job_id)
            owned.stage = stage
            owned.payload = fax.model_dump(mode="json")
            JobQueue.finish(owned, REJECTED, error=refusal.reason, rule=refusal.rule)
            record = await tx.get(InboundFaxRecord, fax.id)
            if record is not None:
                record.state = UNDELIVERABLE
                record.detail = refusal.reason
