"""Retention: received faxes are kept as long as the plan says, and no longer.

Where it sits: the inbound component runs `purge_once` every
`inbound.purge_interval_seconds` (and the CLI can run it by hand). R-STORE-1: a fax
on a plan named in `inbound.retention_days` (Free: 30) is purged that many days after
receipt; other plans (Plus, Pro) keep it for the life of the account, counted from
the plan the account is on now (an upgrade keeps what is still there). R-STORE-2: a
closed account's faxes are purged. A fax held for an operator (`inbound.unrouted =
"hold"`: nobody held its number) is purged `inbound.held_days` after receipt, for no
account is there to keep it for (R-STORE-2). Faxes still being delivered are left
alone. The row stays (what arrived, when) with `purged_at`; the files go.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, or_, select

from bridge.accounts.models import Account
from bridge.core.db import Database
from bridge.core.models import utcnow
from bridge.inbound.models import QUEUED, UNROUTED, InboundFaxRecord
from bridge.inbound.settings import InboundSettings

log = logging.getLogger("bridge.inbound.retention")


class Retention:
    def __init__(self, settings: InboundSettings, db: Database) -> None:
        self.settings = settings
        self.db = db

    async def purge_once(self, now: datetime | None = None) -> int:
        """Remove the files of every fax past its keeping time; returns how many."""
        now = now or utcnow()
        expired_by_plan = [
            and_(Account.plan == plan, InboundFaxRecord.received_at < now - timedelta(days=days))
            for plan, days in self.settings.retention_days.items()
        ]
        async with self.db.transaction() as tx:
            due = (
                await tx.scalars(
                    select(InboundFaxRecord)
                    .join(Account, Account.id == InboundFaxRecord.account_id)
                    .where(
                        InboundFaxRecord.purged_at.is_(None),
                        InboundFaxRecord.state != QUEUED,
                        or_(Account.state == "closed", *expired_by_plan),
                    )
                )
            ).all()
            held = (
                await tx.scalars(
                    select(InboundFaxRecord).where(
                        InboundFaxRecord.account_id.is_(None),
                        InboundFaxRecord.state == UNROUTED,
                        InboundFaxRecord.purged_at.is_(None),
                        InboundFaxRecord.tiff_path != "",
                        InboundFaxRecord.received_at < now - timedelta(days=self.settings.held_days),
                    )
                )
            ).all()
            due = [*due, *held]
            paths = [Path(p) for record in due for p in (record.tiff_path, record.pdf_path) if p]
            # Files first, then the rows: a crash in between leaves rows that the next
            # run purges again (unlinking a missing file is fine).
            await asyncio.to_thread(_remove, paths)
            for record in due:
                record.purged_at = now
                record.tiff_path = ""
                record.pdf_path = ""
        if due:
            log.info("purged %d received fax(es) past their keeping time (R-STORE-1/2)", len(due))
        return len(due)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
