"""Helpers for the money tests: accounts with cards, fax jobs, attempts recorded the
way the call runner records them, and the ledger read back independently."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from sqlalchemy import select

from bridge.accounts.models import Account, FaxNumber
from bridge.accounts.senders import create_account
from bridge.core.db import Database
from bridge.core.models import Job
from bridge.core.queue import JobQueue
from bridge.core.spool import Spool
from bridge.mail.outbox import Outbox
from bridge.money.billing import BillingCycle
from bridge.money.meter import Metering, Reception
from bridge.money.models import BillingAccount, LedgerEntry, PaymentMethod
from bridge.money.processor import OfflineProcessor
from bridge.outbound.jobs import FaxJob, RenderedDocument
from bridge.outbound.models import CallAttempt
from bridge.settings import Settings
from tests.accounts.support import put_in_state

APPROVES, DECLINES, CHARGES_BACK = "4242424242424242", "4000000000000002", "4000000000000259"
_serial = itertools.count(1)


class MovableClock:
    """The billing clock, moved by the test instead of waited for."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Books:
    """Metering, the billing cycle and an outbox over one real database."""

    def __init__(self, settings: Settings, db: Database, clock: MovableClock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        spool = Spool(settings.paths.spool_dir)
        spool.create()
        self.outbox = Outbox(spool, JobQueue(db, lease_seconds=30), mail_domain="fax.test")
        self.metering = Metering(settings, db, clock=clock, outbox=self.outbox)
        self.cycle = BillingCycle(settings, db, metering=self.metering)
        self.processor: OfflineProcessor = self.metering.processor  # type: ignore[assignment]

    def fresh_metering(self) -> Metering:
        """A new process's metering over the same books (after a crash, a restart)."""
        return Metering(self.settings, self.db, clock=self.clock, outbox=self.outbox)

    def money(self, minor: int) -> str:
        return self.metering.format_money(minor)

    async def account(self, *, plan: str = "plus", card: str | None = APPROVES, state: str = "active") -> int:
        n = next(_serial)
        async with self.db.transaction() as tx:
            account = await create_account(tx, senders=[f"customer{n}@example.com"], plan=plan)
            await put_in_state(tx, account, state)
            account_id = account.id
        if card:
            await self.add_card(account_id, card)
        return account_id

    async def add_card(self, account_id: int, number: str) -> None:
        token = await self.processor.tokenize(number)
        async with self.db.transaction() as tx:
            for old in await tx.scalars(select(PaymentMethod).where(PaymentMethod.account_id == account_id)):
                old.state = "removed"
            tx.add(PaymentMethod(account_id=account_id, processor="offline", token=token.token, brand=token.brand,
                                 last4=token.last4, state="active", created_at=self.clock()))

    async def number(self, account_id: int, e164: str, kind: str) -> None:
        async with self.db.transaction() as tx:
            tx.add(FaxNumber(e164=e164, kind=kind, account_id=account_id, state="assigned"))

    def job(self, account_id: int, recipients: list[str], pages: int) -> FaxJob:
        job_id = f"Ftest{next(_serial)}"
        return FaxJob(
            id=job_id, submission_id=job_id, account_id=account_id, envelope_from="customer@example.com",
            from_header="customer@example.com", recipients=recipients, received_at=self.clock(),
            raw_path="/dev/null", work_dir="/tmp",
            rendered=RenderedDocument(tiff_path="/dev/null", pdf_path="/dev/null", page_count=pages),
        )

    async def attempt(
        self, job: FaxJob, number: str, *, answered: bool, pages: int, seconds: float, attempt_no: int = 1,
        outcome: str = "completed", metering: Metering | None = None,
    ) -> int:
        """Record an attempt and charge it in one transaction, as the call runner does."""
        metering = metering or self.metering
        async with self.db.transaction() as tx:
            attempt = CallAttempt(job_id=job.id, account_id=job.account_id, number=number, attempt=attempt_no,
                                  outcome=outcome, answered=answered, pages_sent=pages, line_seconds=seconds)
            tx.add(attempt)
            return await metering.charge_attempt(tx, job=job, attempt=attempt)

    async def settle(self, job: FaxJob) -> None:
        async with self.db.transaction() as tx:
            await self.metering.settle(tx, job=job)

    async def inbound(
        self, account_id: int, fax_id: str, pages: int, *, seconds: float = 0, kind: str = "local"
    ) -> int:
        async with self.db.transaction() as tx:
            charged = await self.metering.charge_receptions(tx, [Reception(account_id, fax_id, pages, seconds, kind)])
            return charged[fax_id]

    async def state(self, account_id: int) -> BillingAccount:
        async with self.db.reading() as session:
            row = await session.get(BillingAccount, account_id)
            assert row is not None
            return row

    async def entries(self, account_id: int, kind: str | None = None) -> list[LedgerEntry]:
        query = select(LedgerEntry).where(LedgerEntry.account_id == account_id).order_by(LedgerEntry.id)
        if kind:
            query = query.where(LedgerEntry.kind == kind)
        async with self.db.reading() as session:
            return list(await session.scalars(query))

    async def assert_consistent(self, account_id: int) -> None:
        """R-DEP-10: the cached balance and holds equal what the ledger and holds sum to,
        and each entry's running balance follows from the one before."""
        async with self.db.reading() as session:
            summed, held = await self.metering.ledger.summed(session, account_id)
        state = await self.state(account_id)
        assert (state.balance_minor, state.held_minor) == (summed, held)
        running = 0
        for entry in await self.entries(account_id):
            assert isinstance(entry.amount_minor, int)
            running += entry.amount_minor
            assert entry.balance_after_minor == running

    async def account_state(self, account_id: int) -> str:
        async with self.db.reading() as session:
            account = await session.get(Account, account_id)
            assert account is not None
            return account.state

    async def mails(self, kind: str | None = None) -> list[tuple[str, str]]:
        """(kind, text) of each mail the outbox queued."""
        async with self.db.reading() as session:
            jobs = list(await session.scalars(select(Job).where(Job.queue == "mail").order_by(Job.created_at)))
        found = []
        for job in jobs:
            if kind and job.payload["kind"] != kind:
                continue
            message = message_from_bytes(Path(job.payload["eml_path"]).read_bytes(), policy=policy.default)
            found.append((job.payload["kind"], f"{message['Subject']}\n{message.get_body().get_content()}"))
        return found
