"""Step `authenticate`: the sender may still fax from this account (R-ACCT-3).

Where it sits: first step of the intake pipeline. The SMTP front door already checked
the sender at DATA; this step checks again when the job runs, because the account can
be suspended or an address removed between acceptance and processing (a job can also
wait in the queue across a restart). DKIM/SPF/DMARC alignment joins here later, through
`SenderCheck`.
"""

from __future__ import annotations

from bridge.accounts.senders import SenderCheck, SenderRefused
from bridge.outbound.jobs import FaxJob
from bridge.outbound.pipeline import IntakeStep, RejectSubmission, StepContext


class Authenticate(IntakeStep):
    """Refuse the job unless its sender is a registered address of an active account."""

    name = "authenticate"

    def __init__(self, context: StepContext) -> None:
        self.senders = SenderCheck(context.db)

    async def process(self, job: FaxJob) -> None:
        try:
            identity = await self.senders.check(job.envelope_from, job.from_header)
        except SenderRefused as refusal:
            raise RejectSubmission(refusal.reason, rule=refusal.rule) from None
        if identity.account_id != job.account_id:
            raise RejectSubmission(
                f"The address {job.envelope_from} moved to another account after the"
                " message arrived; send it again.",
                rule="R-ACCT-3",
            )
