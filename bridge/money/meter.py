"""Metering: what a fax costs, holding it back, charging each attempt and reception.

Where it sits: the `meter` step (handlers/meter.py) calls `authorise(job)` after
render, before the job is queued for sending; the call runner (bridge/transmit.py)
calls `charge_attempt` in the transaction that records each CallAttempt and `settle`
when every number is done; inbound delivery calls `charge_receptions` for each batch
of received faxes. Money moves only inside those transactions, through the ledger; card charges
(first deposit, top-ups) are written down there and made after the commit
(bridge/money/payments.py), so no transaction waits on a bank and nothing is charged
twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Table, event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.accounts.models import Account
from bridge.core.component import ServiceKey
from bridge.core.db import Database
from bridge.core.models import utcnow
from bridge.core.refusal import Refusal
from bridge.mail.outbox import Outbox
from bridge.money.declines import Declines
from bridge.money.ledger import Clock, Ledger, Money
from bridge.money.models import BillingAccount, Hold, UsageRecord
from bridge.money.payments import Payments, active_card
from bridge.money.processor import PaymentProcessor, build_processor
from bridge.money.settings import MoneySettings, PlanSettings
from bridge.outbound.jobs import FaxJob
from bridge.outbound.models import CallAttempt

if TYPE_CHECKING:
    from bridge.settings import Settings

log = logging.getLogger("bridge.meter")

SECONDS_PER_INTERVAL = 60


def billed_units(pages: int, line_seconds: float) -> int:
    """R-USE-2: max(actual pages, whole or partial 60-second intervals of line time).

    3 pages in 200 s bill 4; 3 pages in 100 s bill 3. `Fraction` reads the float line
    time exactly, so 120.0 s is two intervals, never three by rounding.
    """
    intervals = math.ceil(Fraction(line_seconds) / SECONDS_PER_INTERVAL) if line_seconds > 0 else 0
    return max(pages, intervals)


class PaymentRefused(Refusal):
    """The work cannot be paid for (R-DEP-9); `reason` is the sentence the customer reads."""

    default_rule = "R-DEP-9"


@dataclass(frozen=True)
class Reception:
    """A received fax, as metering charges it (R-USE-1)."""

    account_id: int
    fax_id: str
    pages: int
    line_seconds: float
    number_kind: str  # "toll-free" numbers pay per unit, outside the allowance (R-PLAN-3)


@dataclass(frozen=True)
class QuoteLine:
    number: str
    pages: int
    rate_minor: int

    @property
    def amount_minor(self) -> int:
        return self.pages * self.rate_minor


@dataclass(frozen=True)
class Quote:
    lines: tuple[QuoteLine, ...]

    @property
    def total_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)

    def describe(self, money: Money) -> str:
        """"USD 0.60 (3 pages x USD 0.10 to +12125550100, 3 pages x USD 0.10 to ...)"."""
        parts = ", ".join(
            f"{line.pages} page{'s' if line.pages != 1 else ''} x {money.format(line.rate_minor)} to {line.number}"
            for line in self.lines
        )
        return f"{money.format(self.total_minor)} ({parts})"


class Metering:
    """Quotes, holds and charges; constructed from the settings and the database.

    One per app: the composition root builds it and hands it to every component that
    meters (the intake's meter step, the call runner, inbound delivery, the billing
    cycle) under METERING, so a top-up any of them writes down wakes the one loop that
    makes card charges (R-DEP-3).
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        processor: PaymentProcessor | None = None,
        clock: Clock = utcnow,
        outbox: Outbox | None = None,
    ) -> None:
        self.settings: MoneySettings = settings.money
        self.db = db
        self.clock = clock
        self.money = Money(self.settings.currency, self.settings.minor_digits)
        self.ledger = Ledger(self.settings.currency, clock)
        books = Path(self.settings.offline_processor_path or settings.paths.var_dir / "offline-processor.sqlite")
        self.processor = processor or build_processor(books, self.settings.processor)
        # Every declined charge is handled the same way, whoever asked for it; without
        # an outbox (a command that only reads) the notices are logged, not sent.
        self.declines = Declines(settings, outbox, self.ledger, self.money, clock)
        self.payments = Payments(db, self.processor, self.ledger, self.money, on_declined=self.declines.on_declined)
        # Set when a committed transaction wrote down a card charge to make (a top-up):
        # the money component's loop makes it at once instead of at its next cycle.
        self.card_work = asyncio.Event()

    def format_money(self, minor: int) -> str:
        return self.money.format(minor)

    def plan(self, name: str) -> PlanSettings:
        return self.settings.plan(name)

    def quote(self, plan: PlanSettings, recipients: Sequence[str], pages: int) -> Quote:
        """Pages x rate for each destination (R-DEP-2: the standard rates)."""
        return Quote(tuple(QuoteLine(number, pages, plan.send_rate(number)) for number in recipients))

    # --- before sending: the meter step -----------------------------------------------
    async def authorise(self, job: FaxJob) -> Quote:
        """Hold the job's quote against the deposit, charging the first deposit or a
        top-up first when needed (R-DEP-1, R-DEP-3); `PaymentRefused` when it cannot be
        paid (R-DEP-9). Safe to run again for the same job: the hold is kept once."""
        if job.rendered is None:
            raise RuntimeError("the meter step runs after render: the job has no page count")
        pages = job.rendered.page_count
        for attempt in (1, 2):
            async with self.db.transaction() as tx:
                account = await tx.get(Account, job.account_id)
                if account is None:
                    raise PaymentRefused("Your account no longer exists, so we cannot send faxes for it.")
                plan = self.plan(account.plan)
                quote = self.quote(plan, job.recipients, pages)
                self._check_may_send(account, plan, quote, job)
                billing = await self.ledger.account(tx, account.id)
                if await tx.scalar(select(Hold).where(Hold.job_id == job.id)) is not None:
                    return quote
                available = billing.balance_minor - billing.held_minor
                if billing.deposit_minor is not None and available >= quote.total_minor:
                    await self.ledger.hold(tx, billing, job_id=job.id, amount_minor=quote.total_minor)
                    log.info("held %s for %d page(s)", self.money.format(quote.total_minor), pages)
                    return quote
                if attempt == 2:
                    raise PaymentRefused(self._too_little_reason(quote, billing))
                deposit = billing.deposit_minor or plan.deposit_minor
                if available + deposit < quote.total_minor:
                    raise PaymentRefused(self._too_little_reason(quote, billing, deposit=deposit))
                card = await active_card(tx, account.id)
                if card is None:
                    raise PaymentRefused(
                        f"This fax would cost {quote.describe(self.money)}. Faxes are paid from a prepaid"
                        f" deposit of {self.money.format(deposit)}, charged to your card the first time you"
                        " send (R-DEP-1), but there is no card on your account. Add a card to your account,"
                        " then send the fax again."
                    )
                pending = await self.payments.pending_deposit(tx, account.id)
                if pending is None:
                    # R-DEP-1 the first deposit; R-DEP-3 later ones, of the previous amount.
                    first = billing.deposit_minor is None
                    pending = await self.payments.request(
                        tx, billing, purpose="deposit" if first else "topup", amount_minor=deposit,
                        key=await self.payments.next_deposit_key(tx, account.id),
                        memo="first deposit" if first else "deposit top-up", reference=f"job:{job.id}",
                    )
                assert pending is not None
                key = pending.idempotency_key
            outcome = await self.payments.execute(key)
            if outcome.state != "approved":
                raise PaymentRefused(
                    f"This fax would cost {quote.describe(self.money)}, paid from your prepaid deposit."
                    f" We tried to charge the deposit of {self.money.format(outcome.amount_minor)} to your"
                    f" card ending {outcome.last4}, but it was declined ({outcome.decline_reason})."
                    " Please update your card or use another one, then send the fax again."
                )
        raise AssertionError("unreachable")

    def _check_may_send(self, account: Account, plan: PlanSettings, quote: Quote, job: FaxJob) -> None:
        if account.state != "active":
            raise PaymentRefused(
                f"Your account is {account.state}, so we cannot send faxes from it; this fax would have"
                f" cost {quote.describe(self.money)}. Please contact support to settle what is owed and"
                " reactivate the account, then send the fax again."
            )
        if not plan.can_send:
            # R-PLAN-1: Free plans receive only. Quote at the upgrade's rates.
            upgrade = plan.upgrade_to or "a paid plan"
            better = (self.quote(self.plan(plan.upgrade_to), job.recipients, quote.lines[0].pages)
                      if plan.upgrade_to else quote)
            raise PaymentRefused(
                f"Your {account.plan.capitalize()} plan receives faxes by email but cannot send them."
                f" On the {upgrade.capitalize()} plan this fax would cost {better.describe(self.money)},"
                f" paid from a prepaid deposit. Upgrade your account to {upgrade.capitalize()} to send"
                " faxes by email, then send this message again."
            )

    def _too_little_reason(self, quote: Quote, billing: BillingAccount, *, deposit: int | None = None) -> str:
        available = billing.balance_minor - billing.held_minor
        extra = f" even after a new deposit of {self.money.format(deposit)}" if deposit else ""
        return (
            f"This fax would cost {quote.describe(self.money)}, more than your deposit can cover"
            f"{extra}: {self.money.format(max(available, 0))} is available. Raise your deposit amount"
            " (R-DEP-4) or send fewer pages or numbers, then send the fax again."
        )

    # --- after each attempt: the call runner ------------------------------------------
    async def charge_attempt(self, tx: AsyncSession, *, job: FaxJob, attempt: CallAttempt) -> int:
        """Charge one attempt (R-USE-2, R-USE-3) once, keyed by the attempt's id."""
        if attempt.id is None:
            await tx.flush()
        if not attempt.answered:
            return 0  # R-USE-3: busy, no answer and invalid numbers cost nothing
        source = f"attempt:{attempt.id}"
        done = await tx.scalar(select(UsageRecord).where(UsageRecord.source_key == source))
        if done is not None:
            return done.charged_minor
        account = await tx.get(Account, job.account_id)
        assert account is not None
        plan = self.plan(account.plan)
        billing = await self.ledger.account(tx, job.account_id)
        units = billed_units(attempt.pages_sent, attempt.line_seconds)
        rate = plan.send_rate(attempt.number)
        amount = units * rate
        if amount:
            seconds = round(attempt.line_seconds)
            await self.ledger.post(
                tx, billing, kind="usage", amount_minor=-amount, key=f"usage:{source}", reference=source,
                memo=(f"fax {job.id} to {attempt.number}, attempt {attempt.attempt}: {units} page(s)"
                      f" ({attempt.pages_sent} sent, {seconds // 60}:{seconds % 60:02d} on the line)"
                      f" x {self.money.format(rate)}"),
                units=units,
            )
            await self.ledger.use_hold(tx, billing, job_id=job.id, amount_minor=amount)
        tx.add(UsageRecord(account_id=account.id, source_key=source, direction="out", number_kind="",
                           units=units, charged_minor=amount, occurred_at=self.clock()))
        await self.top_up_if_low(tx, billing, plan)
        return amount

    async def settle(self, tx: AsyncSession, *, job: FaxJob) -> None:
        """Every number is done: release what was held and not used (R-DEP-2)."""
        billing = await self.ledger.account(tx, job.account_id)
        released = await self.ledger.release_hold(tx, billing, job_id=job.id)
        if released:
            log.info("released %s not used by %s", self.money.format(released), job.id)

    # --- received faxes: inbound delivery ---------------------------------------------
    async def charge_receptions(self, tx: AsyncSession, receptions: Sequence[Reception]) -> dict[str, int]:
        """Charge received faxes, each once, keyed by its id: each page a unit (R-USE-1,
        with R-USE-2's line-time minimum); the plan's monthly allowance first (R-PLAN-2);
        every unit on a toll-free number pays the toll-free fee (R-PLAN-3) and uses none
        of it. Returns the amount charged per fax id.

        Inbound delivery commits faxes in batches (bridge.inbound.pipeline): the books
        of a whole batch are read in three queries instead of five per fax. The result
        is that of charging the faxes one after the other, in the order given."""
        sources = {r.fax_id: f"inbound:{r.fax_id}" for r in receptions}
        earlier = {
            record.source_key: record.charged_minor
            for record in await tx.scalars(select(UsageRecord).where(UsageRecord.source_key.in_(sources.values())))
        }
        charged = {r.fax_id: earlier[sources[r.fax_id]] for r in receptions if sources[r.fax_id] in earlier}
        todo = [r for r in receptions if r.fax_id not in charged]
        if not todo:
            return charged
        now = self.clock()
        plans: dict[int, PlanSettings] = {}
        for account_id in {r.account_id for r in todo}:
            account = await tx.get(Account, account_id)
            assert account is not None
            plans[account_id] = self.plan(account.plan)
        books = await self.ledger.accounts(tx, plans)
        used = await self._allowance_used(tx, books, [r.account_id for r in todo if r.number_kind != "toll-free"], now)
        usage: list[dict[str, object]] = []  # the batch's usage records, written in one statement
        for r in todo:
            plan, billing = plans[r.account_id], books[r.account_id]
            source = sources[r.fax_id]
            units = billed_units(r.pages, r.line_seconds)
            if r.number_kind == "toll-free":
                charged_units, rate, what = units, plan.toll_free_unit_minor, "toll-free usage"
            else:
                free = max(0, plan.inbound_allowance_units - used[r.account_id])
                used[r.account_id] += units
                charged_units, rate = max(0, units - free), plan.inbound_unit_minor
                what = "inbound units beyond the allowance"
            amount = charged_units * rate
            usage.append(dict(account_id=r.account_id, source_key=source, direction="in", number_kind=r.number_kind,
                              units=units, charged_minor=amount, occurred_at=now))
            if amount:
                await self.ledger.post(
                    tx, billing, kind="usage", amount_minor=-amount, key=f"usage:{source}", reference=source,
                    memo=f"fax {r.fax_id} received: {charged_units} {what} x {self.money.format(rate)}",
                    units=charged_units,
                )
                await self.top_up_if_low(tx, billing, plan)
            charged[r.fax_id] = amount
        # A Core multi-row INSERT: the ORM would insert these one statement each, to
        # read back ids nothing here needs.
        # The declarative typing calls __table__ a FromClause; a model with a __tablename__
        # is mapped to a Table, which is what insert() is given.
        table = UsageRecord.__table__
        assert isinstance(table, Table)
        await tx.execute(insert(table), usage)
        return charged

    @staticmethod
    async def _allowance_used(
        tx: AsyncSession, books: dict[int, BillingAccount], account_ids: Sequence[int], now: datetime
    ) -> defaultdict[int, int]:
        """Inbound units each account used of its allowance this period (R-PLAN-2)."""
        used: defaultdict[int, int] = defaultdict(int)
        if not account_ids:
            return used
        # Accounts whose period starts at the same moment (most: the same month) share
        # one query, whose shape (an IN list) the statement cache keeps.
        by_start: defaultdict[datetime, list[int]] = defaultdict(list)
        for account_id in sorted(set(account_ids)):
            billing = books[account_id]
            start = billing.period_start if billing.period_start and billing.period_start <= now else _month_start(now)
            by_start[start].append(account_id)
        for start, ids in by_start.items():
            rows = await tx.execute(
                select(UsageRecord.account_id, func.coalesce(func.sum(UsageRecord.units), 0))
                .where(
                    UsageRecord.account_id.in_(ids),
                    UsageRecord.direction == "in",
                    UsageRecord.number_kind != "toll-free",
                    UsageRecord.occurred_at >= start,
                )
                .group_by(UsageRecord.account_id)
            )
            for account_id, units in rows:
                used[account_id] = int(units or 0)
        return used

    # --- keeping the deposit up ---------------------------------------------------------
    async def top_up_if_low(self, tx: AsyncSession, billing: BillingAccount, plan: PlanSettings) -> None:
        """R-DEP-3 (and R-DEP-1 for usage before any deposit): below the low-water mark,
        write down a new deposit of the previous amount, made once `tx` commits."""
        if billing.balance_minor >= plan.low_water_minor:
            return
        if await self.payments.pending_deposit(tx, billing.account_id) is not None:
            return
        amount = billing.deposit_minor or plan.deposit_minor
        if not amount:
            return
        charge = await self.payments.request(
            tx, billing, purpose="topup" if billing.deposit_minor else "deposit", amount_minor=amount,
            key=await self.payments.next_deposit_key(tx, billing.account_id),
            memo=f"deposit top-up: balance {self.money.format(billing.balance_minor)} fell below"
                 f" {self.money.format(plan.low_water_minor)}",
        )
        if charge is None:
            log.warning("account %s: deposit below %s and no card on file", billing.account_id,
                        self.money.format(plan.low_water_minor))
            return
        event.listen(tx.sync_session, "after_commit", lambda _session: self.card_work.set(), once=True)


def _month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


# The app's one Metering, as the composition root hands it over (bridge.core.component).
METERING: ServiceKey[Metering] = ServiceKey("metering")
