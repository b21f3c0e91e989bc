"""Property-based tests of the books (R-DEP-10, R-USE-2, R-USE-3, R-DEP-3..6, R-DEP-8).

Hypothesis draws sequences of the money work faxbridge does for one Plus account:
deposits raised by an operator (R-DEP-4), faxes quoted and held (the meter step),
attempts the line reports (answered or not, replayed after a crash), settlements,
received faxes, billing cycles with their fees (R-DEP-5, R-DEP-7) and chargebacks
(R-DEP-8), refunds when the card authorisation is withdrawn (R-DEP-6), card changes
and the reconciliation that makes written-down top-ups (R-DEP-3). Each sequence runs
on the real `Metering`, `Ledger`, `Payments` and `BillingCycle` over a real SQLite
database and the offline processor's own books, copied fresh for every example.

After every step:

* R-DEP-10: the cached balance equals the ledger sum, the cached holds equal the open
  holds, and each entry's running balance follows from the one before.
* Attempts are charged exactly: `billed_units(pages, seconds) x rate` when answered,
  nothing when not (R-USE-2, R-USE-3), once per attempt however often replayed.

Where the balance may go below zero. Metering holds ONE attempt per number at
`pages x rate` when the fax is taken in; it cannot hold more, because what an attempt
costs is known only after it: R-USE-3 bills every answered attempt (a retry costs
again) and R-USE-2 bills line minutes beyond the page count. The work is already done
when it is charged, so the charge is posted whatever the deposit holds. Hence:

* The available balance (balance - held) drops only by the part of an attempt's charge
  its job's hold did not cover, by a received fax (R-USE-1, R-PLAN-2/3: no hold is
  possible for a fax that was sent to us), and by a chargeback (R-DEP-8: the bank took
  the deposit back). Those are the only steps allowed to take it from >= 0 to < 0, and
  an attempt lowers it by exactly `charge - hold used`, never more.
* Every other step keeps it >= 0 when it was: a hold is taken only when available
  covers the quote (R-DEP-9), a fee is paid from the deposit only when the deposit can
  pay it (R-DEP-5, else R-DEP-8), a refund gives back only the unused, unheld deposit
  (R-DEP-6). A declined fee is paid from the deposit only with money not held for a fax
  in progress (R-DEP-5 with R-DEP-9).
* R-DEP-3: a usage charge that leaves the balance below the low-water mark writes a
  top-up of the previous deposit amount down in the same transaction, while a card is
  on file; the balance then comes back up when the processor is asked.

At the end, after reconciliation, the ledger's card money equals the processor's own
books, charge for charge.

The seeded random walk in test_concurrency_and_crashes.py is kept: it is cheap, fixed
and also runs fair use; this test explores far more sequences and asserts the rules
exactly rather than "a top-up is pending somewhere".
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bridge.accounts.models import Account
from bridge.accounts.state import HoldReason, lift_hold, open_holds
from bridge.core import schema
from bridge.core.db import Database
from bridge.money.cli import _withdraw_authorisation
from bridge.money.meter import PaymentRefused, billed_units
from bridge.money.models import BillingAccount, CardCharge, Hold, LedgerEntry, PaymentMethod
from bridge.outbound.jobs import FaxJob
from bridge.outbound.models import CallAttempt
from bridge.settings import Settings
from tests.money.support import APPROVES, CHARGES_BACK, DECLINES, Books, MovableClock
from tests.support import Site

US, UK = "+12125550100", "+442079460000"  # USD 0.10 and USD 0.12 a page on Plus
CARDS = (APPROVES, DECLINES, CHARGES_BACK)


# --- the steps ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Deposit:
    """R-DEP-4: an operator raises the deposit amount (`account deposit ID --amount`)."""

    amount_minor: int


@dataclass(frozen=True)
class Send:
    """The meter step: quote, charge a first deposit or top-up if needed, hold."""

    recipients: tuple[str, ...]
    pages: int


@dataclass(frozen=True)
class Attempt:
    """The line reports one attempt of an open fax to one of its numbers."""

    job: int
    number: int
    answered: bool
    pages: int
    seconds: float
    replay: bool  # the call runner crashed after the commit and charges it again


@dataclass(frozen=True)
class Settle:
    job: int


@dataclass(frozen=True)
class Inbound:
    pages: int
    seconds: float
    toll_free: bool


@dataclass(frozen=True)
class Cycle:
    """Time passes and the billing cycle runs: fees, restores, chargebacks, fair use."""

    days: int


@dataclass(frozen=True)
class Card:
    number: str


@dataclass(frozen=True)
class Withdraw:
    """R-DEP-6: the customer withdraws the card authorisation: the unused deposit is refunded."""


@dataclass(frozen=True)
class Reconcile:
    """The money component makes the card charges written down (R-DEP-3 top-ups)."""


@dataclass(frozen=True)
class Resume:
    """An operator resumes an account suspended after a decline or chargeback."""


Step = Deposit | Send | Attempt | Settle | Inbound | Cycle | Card | Withdraw | Reconcile | Resume

steps = st.one_of(
    st.builds(Deposit, st.sampled_from([1000, 1500, 2500])),
    st.builds(Send, st.lists(st.sampled_from([US, UK]), min_size=1, max_size=3).map(tuple), st.integers(1, 12)),
    st.builds(Send, st.lists(st.sampled_from([US, UK]), min_size=1, max_size=3).map(tuple), st.integers(1, 12)),
    st.builds(Attempt, st.integers(0, 50), st.integers(0, 2), st.booleans(), st.integers(0, 12),
              st.floats(0, 900, allow_nan=False), st.booleans()),
    st.builds(Attempt, st.integers(0, 50), st.integers(0, 2), st.just(True), st.integers(0, 12),
              st.floats(0, 900, allow_nan=False), st.just(False)),
    st.builds(Settle, st.integers(0, 50)),
    st.builds(Inbound, st.integers(1, 60), st.floats(0, 600, allow_nan=False), st.booleans()),
    st.builds(Cycle, st.integers(0, 40)),
    st.builds(Card, st.sampled_from(CARDS)),
    st.just(Withdraw()),
    st.just(Reconcile()),
    st.just(Resume()),
)


# --- a fresh database for every example ----------------------------------------------------
@dataclass(repr=False)
class Template:
    site: Site
    settings: Settings
    database: Path

    def __repr__(self) -> str:
        return f"Template({self.database})"

    def fresh(self) -> None:
        """Put a clean copy of the migrated database in place; forget the processor's books."""
        var = self.site.var
        for path in var.glob("*.sqlite*"):
            path.unlink()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.site.db_path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.database, self.site.db_path)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    site = Site(tmp_path_factory.mktemp("properties")).write()
    settings_ = site.settings()
    schema.upgrade(settings_.database.url)
    database = site.root / "migrated.db"
    with sqlite3.connect(site.db_path) as connection:  # one self-contained file, WAL folded in
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(site.db_path, database)
    yield Template(site, settings_, database)


# --- the model of what each step may do to the deposit -------------------------------------
@dataclass
class Snapshot:
    balance: int
    held: int
    last_entry: int

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass
class Run:
    books: Books
    account: int
    open_jobs: list[FaxJob] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)  # job id -> attempts made
    received: int = 0
    # Known gap (see test_R_DEP_5_... below): a declined fee is paid from the deposit
    # when the BALANCE covers it, even if part of it is held for a fax in progress.

    async def snapshot(self) -> Snapshot:
        async with self.books.db.reading() as session:
            row = await session.get(BillingAccount, self.account)
            last = await session.scalar(select(LedgerEntry.id).order_by(LedgerEntry.id.desc()).limit(1))
        if row is None:
            return Snapshot(0, 0, last or 0)
        return Snapshot(row.balance_minor, row.held_minor, last or 0)

    async def new_entries(self, since: int) -> list[LedgerEntry]:
        async with self.books.db.reading() as session:
            query = select(LedgerEntry).where(LedgerEntry.id > since).order_by(LedgerEntry.id)
            return list(await session.scalars(query))

    async def hold_remaining(self, job_id: str) -> int:
        async with self.books.db.reading() as session:
            hold = await session.scalar(select(Hold).where(Hold.job_id == job_id))
        return hold.remaining_minor if hold is not None else 0

    async def pending_top_up(self) -> CardCharge | None:
        async with self.books.db.reading() as session:
            return await session.scalar(select(CardCharge).where(
                CardCharge.account_id == self.account, CardCharge.state == "pending",
                CardCharge.purpose.in_(("deposit", "topup"))))

    async def has_card(self) -> bool:
        async with self.books.db.reading() as session:
            return await session.scalar(select(PaymentMethod.id).where(
                PaymentMethod.account_id == self.account, PaymentMethod.state == "active")) is not None

    async def run(self, step: Step) -> None:
        before = await self.snapshot()
        low_water = self.books.metering.plan("plus").low_water_minor
        match step:
            case Deposit(amount):
                await self.deposit(amount)
            case Send(recipients, pages):
                job = self.books.job(self.account, list(recipients), pages)
                try:
                    await self.books.metering.authorise(job)
                except PaymentRefused:
                    pass
                else:
                    self.open_jobs.append(job)
                    after = await self.snapshot()
                    # R-DEP-9: a hold is taken only when the deposit can cover it.
                    assert after.available >= 0, (before, after)
                    assert after.held == before.held + self.books.metering.quote(
                        self.books.metering.plan("plus"), list(recipients), pages).total_minor
            case Attempt() if self.open_jobs:
                await self.attempt(step, before, low_water)
            case Settle(index) if self.open_jobs:
                job = self.open_jobs.pop(index % len(self.open_jobs))
                remaining = await self.hold_remaining(job.id)
                await self.books.settle(job)
                after = await self.snapshot()
                assert (after.balance, after.held) == (before.balance, before.held - remaining)
            case Inbound(pages, seconds, toll_free):
                self.received += 1
                charged = await self.books.inbound(self.account, f"in-{self.received}", pages, seconds=seconds,
                                                   kind="toll-free" if toll_free else "local")
                after = await self.snapshot()
                assert after.balance == before.balance - charged
                if charged and after.balance < low_water and await self.has_card():
                    await self.assert_top_up_written_down()
            case Cycle(days):
                self.books.clock.advance(days=days)
                await self.books.cycle.run_once()
            case Card(number):
                await self.books.add_card(self.account, number)
            case Withdraw():
                await _withdraw_authorisation(self.books.cycle, self.books.db, self.account)
            case Reconcile():
                await self.books.metering.payments.reconcile()
            case Resume():
                async with self.books.db.transaction() as tx:
                    account = await tx.get(Account, self.account)
                    assert account is not None
                    # The operator lifts every hold the cycle placed (R-DEP-8).
                    for hold in await open_holds(tx, account.id):
                        await lift_hold(tx, account, HoldReason(hold.reason), ref=hold.ref, by="operator")
            case _:
                return
        await self.check(step, before)

    async def deposit(self, amount: int) -> None:
        """What `faxbridge account deposit ID --amount` does (bridge/money/cli.py)."""
        payments = self.books.metering.payments
        await payments.reconcile()
        async with self.books.db.transaction() as tx:
            billing = await self.books.metering.ledger.account(tx, self.account)
            charge = await payments.request(
                tx, billing, purpose="deposit" if billing.deposit_minor is None else "topup", amount_minor=amount,
                key=await payments.next_deposit_key(tx, self.account), memo="deposit (R-DEP-4)", reference="cli")
            key = charge.idempotency_key if charge is not None else None
        if key is not None:
            await payments.execute(key)

    async def attempt(self, step: Attempt, before: Snapshot, low_water: int) -> None:
        job = self.open_jobs[step.job % len(self.open_jobs)]
        number = job.recipients[step.number % len(job.recipients)]
        assert job.rendered is not None
        pages = min(step.pages, job.rendered.page_count)
        remaining = await self.hold_remaining(job.id)
        self.attempts[job.id] = self.attempts.get(job.id, 0) + 1
        async with self.books.db.transaction() as tx:
            attempt = CallAttempt(job_id=job.id, account_id=self.account, number=number,
                                  attempt=self.attempts[job.id], outcome="completed" if step.answered else "busy",
                                  answered=step.answered, pages_sent=pages, line_seconds=step.seconds)
            tx.add(attempt)
            charged = await self.books.metering.charge_attempt(tx, job=job, attempt=attempt)
            attempt_id = attempt.id
        # R-USE-2, R-USE-3: exactly max(pages, started minutes) x rate, and only when answered.
        rate = self.books.metering.plan("plus").send_rate(number)
        assert charged == (billed_units(pages, step.seconds) * rate if step.answered else 0)
        if step.replay:
            async with self.books.db.transaction() as tx:
                again = await tx.get(CallAttempt, attempt_id)
                assert again is not None
                assert await self.books.metering.charge_attempt(tx, job=job, attempt=again) == charged
        after = await self.snapshot()
        # The hold pays first; only what it did not cover lowers the available balance.
        used = min(remaining, charged)
        assert (after.balance, after.held) == (before.balance - charged, before.held - used), (before, after, charged)
        assert after.available == before.available - (charged - used)
        if step.answered and after.balance < low_water and await self.has_card():
            await self.assert_top_up_written_down()

    async def assert_top_up_written_down(self) -> None:
        """R-DEP-3: below the low-water mark a deposit of the previous amount is waiting."""
        pending = await self.pending_top_up()
        assert pending is not None, "the balance fell below the low-water mark and no top-up was written down"
        async with self.books.db.reading() as session:
            billing = await session.get(BillingAccount, self.account)
        assert billing is not None
        assert pending.amount_minor == (billing.deposit_minor or self.books.metering.plan("plus").deposit_minor)

    async def check(self, step: Step, before: Snapshot) -> None:
        await self.books.assert_consistent(self.account)
        after = await self.snapshot()
        assert after.held >= 0
        entries = await self.new_entries(before.last_entry)
        for entry in entries:
            if entry.kind in ("deposit", "payment"):
                assert entry.amount_minor > 0
            elif entry.kind == "fee":
                # R-DEP-5: paid from the deposit only when the deposit can pay it.
                assert entry.balance_after_minor >= 0, entry.memo
            elif entry.kind == "refund":
                # R-DEP-6: only the unused part of the deposit goes back.
                assert entry.amount_minor < 0 and entry.balance_after_minor >= 0, entry.memo
            else:
                assert entry.kind in ("usage", "chargeback"), entry.kind
        if before.available >= 0 and after.available < 0:
            # Only work already done (an attempt beyond its hold, a received fax) or a
            # chargeback may take the available balance below zero.
            allowed = isinstance(step, Attempt | Inbound) or (
                isinstance(step, Cycle) and any(e.kind == "chargeback" for e in entries))
            assert allowed, (step, before, after, [(e.kind, e.amount_minor, e.memo) for e in entries])

    async def assert_books_agree_with_the_processor(self) -> None:
        """Card money in the ledger is exactly the processor's approved charges."""
        await self.books.metering.payments.reconcile()
        made = {f"card:{key}": amount for key, amount, approved in await self.books.processor.charges() if approved}
        async with self.books.db.reading() as session:
            posted = {e.idempotency_key: e.amount_minor for e in await session.scalars(
                select(LedgerEntry).where(LedgerEntry.kind.in_(("deposit", "payment"))))}
            pending = await session.scalar(select(CardCharge).where(CardCharge.state == "pending"))
        assert pending is None
        assert posted == made


async def play(template: Template, sequence: list[Step]) -> None:
    template.fresh()
    db = Database(template.settings.database.url)
    try:
        books = Books(template.settings, db, MovableClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)))
        run = Run(books, await books.account(plan="plus", card=APPROVES))
        async with db.transaction() as tx:
            await books.metering.ledger.account(tx, run.account)  # its billing row, balance 0
        for step in sequence:
            await run.run(step)
        await run.assert_books_agree_with_the_processor()
        await books.assert_consistent(run.account)
    finally:
        await db.close()


# A fee paid from a deposit that holds a fax's quote (R-DEP-5 with an open hold).
FEE_OVER_A_HOLD: list[Step] = [Send((US,), 5), Card(DECLINES), Cycle(0)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=st.lists(steps, min_size=1, max_size=30))
@example(sequence=FEE_OVER_A_HOLD)
@example(sequence=[Send((US, UK), 3), Attempt(0, 0, True, 3, 200.0, True), Attempt(0, 0, True, 3, 250.0, False),
                   Attempt(0, 1, True, 3, 400.0, False), Settle(0), Reconcile()])
def test_R_DEP_10_random_money_work_keeps_the_cached_balance_equal_to_the_ledger_and_dips_only_by_rule(
    template: Template, sequence: list[Step]
) -> None:
    asyncio.run(play(template, sequence))


def test_R_DEP_5_a_fee_paid_from_the_deposit_never_uses_money_held_for_a_fax_in_progress(template: Template) -> None:
    asyncio.run(play(template, FEE_OVER_A_HOLD))
