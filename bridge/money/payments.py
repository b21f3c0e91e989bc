"""Card charges: written down first, asked of the processor second, recorded third.

Where it sits: between the ledger and the payment processor. Metering, the billing
cycle and the CLI never call the processor inside a database transaction (a slow bank
must not hold SQLite's single writer slot, and a rolled-back transaction must not
leave money taken). Instead:

  1. `request(tx, ...)` adds a `card_charges` row, state `pending`, with an idempotency
     key, in the caller's transaction;
  2. after the commit, `execute(key)` asks the processor, passing that key;
  3. the outcome, its ledger entries and the cached balance commit together.

A crash after 2 and before 3 leaves the row pending; `reconcile()` (run at start-up
and by every billing cycle) asks the processor again with the same key and gets the
charge that was already made, so it is recorded once and never charged twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.core.db import Database
from bridge.money.ledger import Ledger, Money
from bridge.money.models import BillingAccount, CardCharge, PaymentMethod
from bridge.money.processor import CardToken, ChargeResult, PaymentProcessor

log = logging.getLogger("bridge.money.payments")

PENDING, APPROVED, DECLINED = "pending", "approved", "declined"
# Charges that put money into the deposit.
DEPOSIT_PURPOSES = ("deposit", "topup", "restore")

# Called in the transaction that records a declined charge (R-DEP-5, R-DEP-8).
DeclineHandler = Callable[[AsyncSession, CardCharge, BillingAccount], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    key: str
    state: str
    amount_minor: int
    decline_reason: str
    last4: str


async def put_card_on_file(
    tx: AsyncSession, *, account_id: int, processor_name: str, token: CardToken, at: datetime
) -> PaymentMethod:
    """Make `token` the account's one active card; earlier cards stay, marked removed."""
    for old in await tx.scalars(
        select(PaymentMethod).where(PaymentMethod.account_id == account_id, PaymentMethod.state == "active")
    ):
        old.state = "removed"
    method = PaymentMethod(
        account_id=account_id, processor=processor_name, token=token.token,
        brand=token.brand, last4=token.last4, state="active", created_at=at,
    )
    tx.add(method)
    return method


async def active_card(tx: AsyncSession, account_id: int) -> PaymentMethod | None:
    return await tx.scalar(
        select(PaymentMethod)
        .where(PaymentMethod.account_id == account_id, PaymentMethod.state == "active")
        .order_by(PaymentMethod.id.desc())
        .limit(1)
    )


class Payments:
    def __init__(
        self,
        db: Database,
        processor: PaymentProcessor,
        ledger: Ledger,
        money: Money,
        *,
        on_declined: DeclineHandler | None = None,
    ) -> None:
        self.db = db
        self.processor = processor
        self.ledger = ledger
        self.money = money
        self.on_declined = on_declined

    async def request(
        self,
        tx: AsyncSession,
        account: BillingAccount,
        *,
        purpose: str,
        amount_minor: int,
        key: str,
        memo: str,
        reference: str = "",
    ) -> CardCharge | None:
        """Write down a charge to make after `tx` commits; None when there is no card
        on file (refunds need none: they go back to the charge's own card)."""
        existing = await tx.scalar(select(CardCharge).where(CardCharge.idempotency_key == key))
        if existing is not None:
            return existing
        token, last4 = "", ""
        if purpose != "refund":
            card = await active_card(tx, account.account_id)
            if card is None:
                return None
            token, last4 = card.token, card.last4
        charge = CardCharge(
            account_id=account.account_id,
            idempotency_key=key,
            purpose=purpose,
            amount_minor=amount_minor,
            currency=account.currency,
            token=token,
            last4=last4,
            reference=reference,
            memo=memo,
            state=PENDING,
            processor_ref="",
            decline_reason="",
            created_at=self.ledger.clock(),
        )
        tx.add(charge)
        await tx.flush()
        return charge

    async def pending_deposit(self, tx: AsyncSession, account_id: int) -> CardCharge | None:
        return await tx.scalar(
            select(CardCharge).where(
                CardCharge.account_id == account_id,
                CardCharge.state == PENDING,
                CardCharge.purpose.in_(("deposit", "topup")),
            )
        )

    async def next_deposit_key(self, tx: AsyncSession, account_id: int) -> str:
        """A fresh key for the account's next deposit: one per attempt, declined or not."""
        count = await tx.scalar(
            select(func.count()).select_from(CardCharge).where(
                CardCharge.account_id == account_id, CardCharge.purpose.in_(("deposit", "topup"))
            )
        )
        return f"deposit:{account_id}:{int(count or 0) + 1}"

    async def execute(self, key: str) -> Outcome:
        """Ask the processor for the written-down charge `key` and record the answer."""
        async with self.db.reading() as session:
            charge = await session.scalar(select(CardCharge).where(CardCharge.idempotency_key == key))
        if charge is None:
            raise KeyError(f"no card charge {key}")
        if charge.state != PENDING:
            return self._outcome(charge)
        if charge.purpose == "refund":
            result = await self.processor.refund(
                charge.reference, charge.amount_minor, charge.currency, idempotency_key=key
            )
        else:
            result = await self.processor.charge(
                charge.token, charge.amount_minor, charge.currency, idempotency_key=key, description=charge.memo
            )
        return await self.record(key, result)

    async def record(self, key: str, result: ChargeResult) -> Outcome:
        """Step 3: the processor's answer, its ledger entries and the balance, at once."""
        async with self.db.transaction() as tx:
            charge = await tx.scalar(
                select(CardCharge).where(CardCharge.idempotency_key == key).with_for_update()
            )
            assert charge is not None
            if charge.state != PENDING:  # recorded already (a concurrent reconcile)
                return self._outcome(charge)
            account = await self.ledger.account(tx, charge.account_id)
            charge.processor_ref = result.reference
            charge.decided_at = self.ledger.clock()
            if not result.approved:
                charge.state = DECLINED
                charge.decline_reason = result.decline_reason
                log.warning("account %s: %s of %s declined: %s", charge.account_id, charge.purpose,
                            self.money.format(charge.amount_minor), result.decline_reason)
                if self.on_declined is not None:
                    await self.on_declined(tx, charge, account)
                return self._outcome(charge)
            charge.state = APPROVED
            await self._post_approved(tx, charge, account)
            return self._outcome(charge)

    async def _post_approved(self, tx: AsyncSession, charge: CardCharge, account: BillingAccount) -> None:
        amount = charge.amount_minor
        key = f"card:{charge.idempotency_key}"
        ending = f" (card ending {charge.last4})" if charge.last4 else ""
        if charge.purpose in DEPOSIT_PURPOSES:
            await self.ledger.post(tx, account, kind="deposit", amount_minor=amount, key=key,
                                   reference=key, memo=charge.memo + ending)
            if charge.purpose == "restore":
                # R-DEP-5: the card now pays back what the deposit advanced for fees.
                account.fee_restore_minor = max(0, account.fee_restore_minor - amount)
            else:
                # R-DEP-3: the next top-up is of the same amount as this deposit.
                account.deposit_minor = amount
        elif charge.purpose == "fee":
            # Paid by card: in and straight out again, so the statement shows both.
            await self.ledger.post(tx, account, kind="payment", amount_minor=amount, key=key,
                                   reference=key, memo=f"card payment{ending}")
            await self.ledger.post(tx, account, kind="fee", amount_minor=-amount, key=f"fee:{charge.idempotency_key}",
                                   reference=charge.reference or key, memo=charge.memo)
        elif charge.purpose == "refund":
            await self.ledger.post(tx, account, kind="refund", amount_minor=-amount, key=key,
                                   reference=charge.reference, memo=charge.memo)
        else:
            raise ValueError(f"unknown card charge purpose {charge.purpose!r}")

    async def reconcile(self) -> int:
        """Finish every charge left pending (a crash, or a call still to make): the
        processor answers a key it has seen with the charge it made then."""
        async with self.db.reading() as session:
            keys = list(
                await session.scalars(
                    select(CardCharge.idempotency_key).where(CardCharge.state == PENDING).order_by(CardCharge.id)
                )
            )
        for key in keys:
            outcome = await self.execute(key)
            log.info("reconciled card charge %s: %s", key, outcome.state)
        return len(keys)

    @staticmethod
    def _outcome(charge: CardCharge) -> Outcome:
        return Outcome(charge.idempotency_key, charge.state, charge.amount_minor, charge.decline_reason, charge.last4)
