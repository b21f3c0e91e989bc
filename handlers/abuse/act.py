"""Abuse pipeline step 3: act on the report (R-ABUSE-1, R-ABUSE-3).

Where it sits: `abuse mailbox -> classify -> match number -> [act]`. In one
transaction: the report row, the account's case opened or extended, the reporter's
acknowledgement, the account holder's notice, and the suspension when the distinct
reporters reach the threshold (bridge.abuse.cases).
"""

from __future__ import annotations

from bridge.abuse import cases
from bridge.abuse.pipeline import AbuseContext, AbuseJob, AbuseStep


class Act(AbuseStep):
    """Record the report, open or extend the case, mail the people concerned."""

    name = "act"

    def __init__(self, context: AbuseContext) -> None:
        self.context = context

    async def process(self, job: AbuseJob) -> None:
        await cases.record_report(self.context, job)
