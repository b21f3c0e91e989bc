"""Abuse pipeline step 1: classify the report and gather its text (issue 7).

Where it sits: `abuse mailbox -> [classify] -> match number -> act`. Reading MIME, PDF
text layers and OCR of fax headers is blocking work, so it runs in the abuse
executor, bounded by `abuse.parse_timeout_seconds`.
"""

from __future__ import annotations

import asyncio

from bridge.abuse.parsing import Unreadable, read_report
from bridge.abuse.pipeline import AbuseContext, AbuseJob, AbuseStep


class Classify(AbuseStep):
    """Tell what kind of report this is (ARF, attached, inline, junk fax, complaint)."""

    name = "classify"

    def __init__(self, context: AbuseContext) -> None:
        self.context = context

    async def process(self, job: AbuseJob) -> None:
        timeout = self.context.abuse.parse_timeout_seconds
        try:
            job.report = await asyncio.wait_for(
                self.context.blocking(read_report, job.raw, self.context.limits, self.context.own_addresses), timeout
            )
        except TimeoutError:
            raise Unreadable(f"took longer than {timeout:g} s to read") from None
