"""Idle Free accounts are closed (R-ACCT-5 (i)): no fax received for 30 days.

Where it sits: the inbound component runs `IdleAccounts.close_once` with the retention
purge, every `inbound.purge_interval_seconds`. An account on a plan named in
`inbound.close_when_idle_days` (Free: 30) is closed when no fax has arrived for it in
that many continuous days, counted from its last received fax, or from its sign-up
if it never received one. Every fax that arrived on its number counts, those its junk
filter blocked included (they were received; the customer chose not to see them);
the service's own mails do not (they are not faxes). The customer is told at their
delivery addresses (an account notice, R-MAIL-2), and the retention purge then removes
the faxes kept for them (R-STORE-2).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from bridge.accounts.models import Account
from bridge.core.db import Database
from bridge.core.models import utcnow
from bridge.inbound.accounts import close_account, closing_notice
from bridge.inbound.models import InboundFaxRecord
from bridge.mail.kinds import MailKind
from bridge.mail.outbox import Outbox

if TYPE_CHECKING:
    from bridge.settings import Settings

log = logging.getLogger("bridge.inbound.idle")


class IdleAccounts:
    def __init__(self, settings: Settings, db: Database, outbox: Outbox) -> None:
        self.settings = settings
        self.db = db
        self.outbox = outbox

    async def close_once(self, now: datetime | None = None) -> list[int]:
        """Close every account idle past its plan's limit; their ids."""
        now = now or utcnow()
        closed: list[int] = []
        last_fax = (
            select(InboundFaxRecord.account_id, func.max(InboundFaxRecord.received_at).label("at"))
            .where(InboundFaxRecord.account_id.is_not(None))
            .group_by(InboundFaxRecord.account_id)
            .subquery()
        )
        async with self.db.transaction() as tx:
            for plan, days in self.settings.inbound.close_when_idle_days.items():
                since = now - timedelta(days=days)
                idle = await tx.scalars(
                    select(Account)
                    .outerjoin(last_fax, last_fax.c.account_id == Account.id)
                    .where(
                        Account.plan == plan,
                        Account.state == "active",
                        Account.created_at < since,
                        (last_fax.c.at.is_(None)) | (last_fax.c.at < since),
                    )
                )
                for account in idle:
                    await close_account(
                        tx, account, via="idle", reason=f"no fax received for {days} days (R-ACCT-5 (i))"
                    )
                    notice = closing_notice(
                        self.settings, account,
                        why=f"Your free account has not received a fax for {days} days. As our terms say,\n"
                            "an unused free account closes.",
                        what_next="You are welcome to sign up again at any time, or to choose a paid plan,\n"
                                  "which keeps your number whether or not faxes arrive.",
                    )
                    await self.outbox.enqueue(tx, notice, kind=MailKind.ACCOUNT_CLOSED)
                    closed.append(account.id)
        if closed:
            log.info("closed %d idle account(s) (R-ACCT-5 (i)): %s", len(closed), ", ".join(map(str, closed)))
        return closed
