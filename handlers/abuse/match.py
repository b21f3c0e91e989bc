"""Abuse pipeline step 2: find the numbers the report names and whose they are (R-ABUSE-3).

Where it sits: `abuse mailbox -> classify -> [match number] -> act`. Numbers are found
with phonenumbers across `abuse.regions` plus fax addresses of our own domains; the
inventory (FaxNumber) says which are the service's and which account holds them.
"""

from __future__ import annotations

from bridge.abuse.matching import holders
from bridge.abuse.pipeline import AbuseContext, AbuseJob, AbuseStep


class MatchNumbers(AbuseStep):
    """Find the numbers in the report and look them up in the inventory."""

    name = "match"

    def __init__(self, context: AbuseContext) -> None:
        self.context = context

    async def process(self, job: AbuseJob) -> None:
        assert job.report is not None, "classify runs first"
        # Pure Python over at most abuse.max_text_chars of text: cheap, but off the loop.
        job.found = await self.context.blocking(self.context.finder.find, job.report.texts)
        async with self.context.db.reading() as session:
            job.holders = await holders(session, [f.e164 for f in job.found])
