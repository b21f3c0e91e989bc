"""The ledger: every movement of an account's deposit, appended, never changed.

Where it sits: under metering, payments and the billing cycle, which call `post`
inside their own transaction. An entry and the cached balance it moves are written in
the same transaction (R-DEP-10: a balance is derived from the ledger), and each entry
has an idempotency key, so work that is retried after a crash posts nothing twice.
Reading a balance is one primary-key lookup, however long the ledger grows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.money.models import BillingAccount, Hold, LedgerEntry

log = logging.getLogger("bridge.money.ledger")

Clock = Callable[[], datetime]

ENTRY_KINDS = ("deposit", "payment", "usage", "fee", "overage", "refund", "chargeback", "adjustment")


@dataclass(frozen=True)
class Money:
    """Formats and parses amounts of one currency; integers of minor units only."""

    currency: str
    minor_digits: int

    def format(self, minor: int) -> str:
        """`USD 1.20`, `USD -0.30`: exactly the amount charged, no rounding."""
        sign = "-" if minor < 0 else ""
        whole, part = divmod(abs(minor), 10**self.minor_digits)
        if not self.minor_digits:
            return f"{self.currency} {sign}{whole}"
        return f"{self.currency} {sign}{whole}.{part:0{self.minor_digits}d}"

    def parse(self, text: str) -> int:
        """"25", "25.00", "USD 25.5" -> minor units; refuses fractions of a minor unit."""
        cleaned = text.strip().removeprefix(self.currency).strip()
        try:
            amount = Decimal(cleaned)
        except InvalidOperation:
            raise ValueError(f"{text!r} is not an amount") from None
        minor = amount.scaleb(self.minor_digits)
        if minor != minor.to_integral_value() or not amount.is_finite():
            raise ValueError(f"{text!r} has more than {self.minor_digits} decimal places")
        return int(minor)


class Ledger:
    def __init__(self, currency: str, clock: Clock) -> None:
        self.currency = currency
        self.clock = clock

    async def account(self, tx: AsyncSession, account_id: int) -> BillingAccount:
        """The account's billing row, created on first use, locked for this transaction
        (on SQLite the whole transaction already holds the single writer slot)."""
        row = await tx.get(BillingAccount, account_id, with_for_update=True, populate_existing=True)
        if row is None:
            row = BillingAccount(
                account_id=account_id,
                currency=self.currency,
                balance_minor=0,
                held_minor=0,
                fee_restore_minor=0,
                cycle="monthly",
                created_at=self.clock(),
            )
            tx.add(row)
            await tx.flush()
        return row

    async def accounts(self, tx: AsyncSession, account_ids: Iterable[int]) -> dict[int, BillingAccount]:
        """`account()` for several accounts, read (and locked) in one query."""
        ids = sorted(set(account_ids))
        rows = {
            row.account_id: row
            for row in await tx.scalars(
                select(BillingAccount).where(BillingAccount.account_id.in_(ids))
                .with_for_update().execution_options(populate_existing=True)
            )
        }
        for account_id in ids:
            if account_id not in rows:
                rows[account_id] = await self.account(tx, account_id)
        return rows

    async def find(self, tx: AsyncSession, key: str) -> LedgerEntry | None:
        return await tx.scalar(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))

    async def post(
        self,
        tx: AsyncSession,
        account: BillingAccount,
        *,
        kind: str,
        amount_minor: int,
        key: str,
        reference: str,
        memo: str = "",
        units: int = 0,
    ) -> LedgerEntry:
        """Append one entry and move the cached balance with it; a key already posted
        returns the entry it posted then and moves nothing (idempotent)."""
        if kind not in ENTRY_KINDS:
            raise ValueError(f"unknown ledger entry kind {kind!r}")
        if not isinstance(amount_minor, int):  # R-DEP-10: never a float
            raise TypeError(f"amount must be an int of minor units, not {type(amount_minor).__name__}")
        existing = await self.find(tx, key)
        if existing is not None:
            return existing
        balance = account.balance_minor + amount_minor
        entry = LedgerEntry(
            account_id=account.account_id,
            kind=kind,
            amount_minor=amount_minor,
            currency=account.currency,
            balance_after_minor=balance,
            idempotency_key=key,
            reference=reference,
            memo=memo[:400],
            units=units,
            created_at=self.clock(),
        )
        tx.add(entry)
        await tx.flush()
        account.balance_minor = balance
        account.last_entry_id = entry.id
        log.info("account %s: %s %+d -> %d (%s)", account.account_id, kind, amount_minor, balance, reference)
        return entry

    # --- holds: a fax's quote kept back until its calls are done ------------------------
    async def hold(self, tx: AsyncSession, account: BillingAccount, *, job_id: str, amount_minor: int) -> Hold:
        existing = await tx.scalar(select(Hold).where(Hold.job_id == job_id))
        if existing is not None:
            return existing
        hold = Hold(account_id=account.account_id, job_id=job_id, amount_minor=amount_minor, used_minor=0,
                    state="held", created_at=self.clock())
        tx.add(hold)
        account.held_minor += amount_minor
        await tx.flush()
        return hold

    async def use_hold(self, tx: AsyncSession, account: BillingAccount, *, job_id: str, amount_minor: int) -> None:
        """A charge for the job is posted: that much of its hold is no longer kept back."""
        hold = await tx.scalar(select(Hold).where(Hold.job_id == job_id, Hold.state == "held"))
        if hold is None:
            return
        used = min(hold.remaining_minor, amount_minor)
        hold.used_minor += used
        account.held_minor -= used

    async def release_hold(self, tx: AsyncSession, account: BillingAccount, *, job_id: str) -> int:
        hold = await tx.scalar(select(Hold).where(Hold.job_id == job_id, Hold.state == "held"))
        if hold is None:
            return 0
        released = hold.remaining_minor
        hold.state = "settled"
        hold.settled_at = self.clock()
        account.held_minor -= released
        return released

    @staticmethod
    async def summed(tx: AsyncSession, account_id: int) -> tuple[int, int]:
        """(sum of the ledger, sum of open holds), recomputed: the caches must equal them."""
        total = await tx.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(LedgerEntry.account_id == account_id)
        )
        held = await tx.scalar(
            select(func.coalesce(func.sum(Hold.amount_minor - Hold.used_minor), 0)).where(
                Hold.account_id == account_id, Hold.state == "held"
            )
        )
        return int(total or 0), int(held or 0)
