"""Step `meter`: hold the fax's cost against the sender's deposit (R-DEP-2).

Where it sits: after `render` (the page count is known), last in the intake pipeline,
before the job is queued for sending. It quotes pages x rate for every number, charges
the first deposit when the account has none (R-DEP-1) and holds the quote; the call
runner then charges what each attempt really used and releases the rest. A fax that
cannot be paid for (a Free plan, a suspended account, a declined card, too little
deposit) is refused, and the sender is told the quote and why (R-DEP-9).
"""

from __future__ import annotations

import logging

from bridge.money.meter import METERING, PaymentRefused
from bridge.outbound.jobs import FaxJob
from bridge.outbound.pipeline import IntakeStep, RejectSubmission, StepContext

log = logging.getLogger("bridge.meter")


class Meter(IntakeStep):
    """Reserve the job's cost against the sender's deposit (R-DEP-2)."""

    name = "meter"

    def __init__(self, context: StepContext) -> None:
        super().__init__(context)
        self.metering = context.provided.need(METERING)  # the app's one Metering

    async def process(self, job: FaxJob) -> None:
        try:
            quote = await self.metering.authorise(job)
        except PaymentRefused as refusal:
            raise RejectSubmission(refusal.reason, rule=refusal.rule) from None
        log.info("%s: quoted and held %s", job.id, quote.describe(self.metering.money))
