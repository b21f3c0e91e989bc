"""What travels through the abuse pipeline: one message of the abuse mailbox, and what
the steps may use.

Where it sits: the poller (bridge.abuse.poller) makes an `AbuseJob` for each new message
of the mailbox; the steps (handlers/abuse/) fill it in; the case book
(bridge.abuse.cases) records what became of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any, TypeVar

from bridge.abuse.matching import FoundNumber, NumberFinder, NumberHolder
from bridge.abuse.messages import AbuseMessages
from bridge.abuse.parsing import Limits, ReadReport
from bridge.abuse.settings import AbuseSettings
from bridge.core.db import Database
from bridge.mail.outbox import Outbox

if TYPE_CHECKING:
    from bridge.settings import Settings

R = TypeVar("R")


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
        notices_from = parseaddr(self.settings.service.notices_from)[1]
        return frozenset({notices_from.lower(), self.abuse.imap_user.lower()} - {""})

    async def blocking(self, function: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)


def build_context(settings: Settings, db: Database, outbox: Outbox, executor: Executor) -> AbuseContext:
    abuse = settings.abuse
    finder = NumberFinder(
        abuse.regions, settings.service.fax_domains, settings.service.default_region, max_numbers=abuse.max_numbers
    )
    return AbuseContext(settings, db, outbox, AbuseMessages(settings.service, abuse), finder, executor)
