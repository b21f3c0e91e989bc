"""The abuse pipeline: classify, match number, act, for one message of the abuse mailbox.

Where it sits: `abuse mailbox (IMAP) -> abuse pipeline (classify, match number, act)`.
The poller (bridge.abuse.poller) builds an `AbuseJob` for each new message and calls
`AbusePipeline.process(job)`; the steps are named in config `abuse.pipeline` and are
small classes in handlers/abuse/ deriving from `AbuseStep`, with one `async
process(job)` each. The act step commits the report, the case change, the
mail and the mailbox cursor in one transaction (STYLE 10); the poller files the message
in `job.filed_in` only after that commit.

A step refuses a report by raising `Unreadable` with the reason; the pipeline records
it as quarantined. An unexpected error in a step is also quarantined, with the error
as its reason and the traceback in the log (STYLE 5): one bad message never stops the
mailbox.
"""

from __future__ import annotations

import asyncio
import logging

from bridge.abuse import cases
from bridge.abuse.jobs import AbuseContext, AbuseJob, build_context
from bridge.abuse.parsing import Unreadable
from bridge.core.pipeline import Pipeline, Step

__all__ = ["AbuseContext", "AbuseJob", "AbusePipeline", "AbuseStep", "build_context"]

log = logging.getLogger("bridge.abuse.pipeline")


class AbuseStep(Step[AbuseJob]):
    """A step of the abuse pipeline (handlers/abuse/<step>.py), built with the AbuseContext."""

    def __init__(self, context: AbuseContext) -> None:
        self.context = context


class AbusePipeline:
    """Runs the steps named in `abuse.pipeline` over one message of the mailbox."""

    def __init__(self, context: AbuseContext, pipeline: Pipeline[AbuseJob]) -> None:
        self.context = context
        self.steps = pipeline.steps

    async def process(self, job: AbuseJob) -> None:
        for step in self.steps:
            try:
                await step.process(job)
            except Unreadable as refused:
                log.warning("%s (uid %d): quarantined at %s: %s", job.id, job.uid, step.name, refused.reason)
                await cases.record_quarantine(self.context, job, refused.reason)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Not the report's fault, but it must not stop the mailbox: keep it in
                # Quarantine with the error so an operator can look (STYLE 5).
                log.exception("%s (uid %d): error at %s; quarantined", job.id, job.uid, step.name)
                reason = f"internal error at {step.name}: {type(error).__name__}: {error}"
                await cases.record_quarantine(self.context, job, reason[:1000])
                return
