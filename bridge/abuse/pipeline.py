"""The abuse pipeline: classify, match number, act, for one message of the abuse mailbox.

Where it sits: `abuse mailbox (IMAP) -> abuse pipeline (classify, match number, act)`.
The poller (bridge.abuse.poller) builds an `AbuseJob` for each new message and calls
`AbusePipeline.process(job)`; the steps are small classes in handlers/abuse_*.py with
one `async process(job)` each. The act step commits the report, the case change, the
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
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bridge.abuse.matching import FoundNumber, NumberFinder, NumberHolder
from bridge.abuse.messages import AbuseMessages
from bridge.abuse.parsing import Limits, ReadReport, Unreadable
from bridge.abuse.settings import AbuseSettings
from bridge.core.db import Database
from bridge.mail.outbox import Outbox

if TYPE_CHECKING:
    from bridge.settings import Settings

log = logging.getLogger("bridge.abuse.pipeline")


@dataclass
class AbuseJob:
    """One message of the abuse mailbox on its way through the steps."""

    id: str
    mailbox: str
    uidvalidity: int
    uid: int
    raw: bytes
    sha256: str
    # Filled by classify.
    report: ReadReport | None = None
    # Filled by match.
    found: list[FoundNumber] = field(default_factory=list)
    holders: dict[str, NumberHolder] = field(default_factory=dict)
    # Filled by act (or by the pipeline when the report is quarantined).
    outcome: str = ""
    reason: str = ""
    case_ids: list[int] = field(default_factory=list)
    filed_in: str = ""


class AbuseStep(Protocol):
    name: str

    async def process(self, job: AbuseJob) -> None: ...


@dataclass(frozen=True)
class AbuseContext:
    """What the abuse steps may use; handed to each step's constructor."""

    settings: Settings
    db: Database
    outbox: Outbox
    messages: AbuseMessages
    finder: NumberFinder
    # Blocking work (MIME, PDF, OCR) runs here, never on the event loop.
    executor: Executor

    @property
    def abuse(self) -> AbuseSettings:
        return self.settings.abuse

    @property
    def limits(self) -> Limits:
        a = self.settings.abuse
        return Limits(
            max_message_bytes=a.max_message_bytes,
            max_mime_depth=a.max_mime_depth,
            max_parts=a.max_parts,
            max_received_headers=a.max_received_headers,
            max_text_chars=a.max_text_chars,
            ocr=a.ocr,
            ocr_timeout_seconds=a.ocr_timeout_seconds,
        )

    @property
    def own_addresses(self) -> frozenset[str]:
        from email.utils import parseaddr

        return frozenset({parseaddr(self.settings.service.notices_from)[1].lower(), self.abuse.imap_user.lower()} - {""})

    async def blocking(self, function, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)


def build_context(settings: Settings, db: Database, outbox: Outbox, executor: Executor) -> AbuseContext:
    abuse = settings.abuse
    finder = NumberFinder(abuse.regions, settings.service.fax_domains, settings.service.default_region, max_numbers=abuse.max_numbers)
    return AbuseContext(settings, db, outbox, AbuseMessages(settings.service, abuse), finder, executor)


class AbusePipeline:
    def __init__(self, context: AbuseContext, steps: Sequence[AbuseStep] | None = None) -> None:
        from handlers.abuse.act import Act
        from handlers.abuse.classify import Classify
        from handlers.abuse.match import MatchNumbers

        self.context = context
        self.steps: tuple[AbuseStep, ...] = tuple(steps) if steps is not None else (Classify(context), MatchNumbers(context), Act(context))

    async def process(self, job: AbuseJob) -> None:
        from bridge.abuse import cases

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
                await cases.record_quarantine(self.context, job, f"internal error at {step.name}: {type(error).__name__}: {error}"[:1000])
                return
