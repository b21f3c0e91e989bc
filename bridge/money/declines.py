"""What happens when a card says no, and how money tells and suspends (R-DEP-5, R-DEP-8).

Where it sits: built by the app's one Metering (bridge.money.meter) and handed to its
Payments at construction, so every declined charge, whoever asked for it (the billing
cycle's fees, a top-up the meter step, the call runner or inbound delivery wrote down,
a charge found pending at start-up), comes here inside the transaction that records
it. The billing cycle (bridge.money.billing) uses the same `notify`, `event` and
`suspend` for chargebacks and fair use.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.accounts.models import Account
from bridge.accounts.state import AccountState, HoldReason, place_hold
from bridge.mail.kinds import MailKind
from bridge.mail.outbox import Outbox
from bridge.money.ledger import Clock, Ledger, Money
from bridge.money.models import BillingAccount, BillingEvent, CardCharge
from bridge.money.notices import MoneyNotices

if TYPE_CHECKING:
    from bridge.settings import Settings

log = logging.getLogger("bridge.money.declines")


class Declines:
    def __init__(self, settings: Settings, outbox: Outbox | None, ledger: Ledger, money: Money, clock: Clock) -> None:
        self.money_settings = settings.money
        self.outbox = outbox
        self.ledger = ledger
        self.money = money
        self.clock = clock
        self.notices = MoneyNotices(settings)

    async def notify(self, tx: AsyncSession, message: EmailMessage, kind: MailKind) -> None:
        if self.outbox is None:
            log.warning("no outbox: %s notice not sent", kind)
            return
        await self.outbox.enqueue(tx, message, kind=kind)

    async def event(self, tx: AsyncSession, account_id: int, kind: str, key: str, detail: str) -> bool:
        """Record that something happened once; False when it already had."""
        if await tx.scalar(select(BillingEvent.id).where(BillingEvent.idempotency_key == key)) is not None:
            return False
        tx.add(BillingEvent(account_id=account_id, kind=kind, idempotency_key=key, detail=detail,
                            created_at=self.clock()))
        await tx.flush()
        return True

    async def suspend(
        self, tx: AsyncSession, account: Account, hold: HoldReason, *, key: str, what: str, reason: str
    ) -> None:
        """R-DEP-8: suspended after a declined charge or a chargeback, and told.

        The hold is placed even when something else (an abuse case, an operator) has
        suspended the account already, so that lifting that one leaves this one; the
        customer is told when the account becomes suspended."""
        if account.state == AccountState.CLOSED:
            return
        if not await self.event(tx, account.id, "suspended", f"suspend:{key}", f"{what} ({reason})"):
            return
        was = account.state
        await place_hold(tx, account, hold, rule="R-DEP-8", ref=key, by="billing", note=f"{what} ({reason})")
        log.warning("account %s held (%s): %s (%s)", account.id, hold, what, reason)
        if was == AccountState.ACTIVE:
            await self.notify(tx, self.notices.suspended(account, what=what, reason=reason), MailKind.ACCOUNT_SUSPENDED)

    async def on_declined(self, tx: AsyncSession, charge: CardCharge, billing: BillingAccount) -> None:
        """Payments report every declined card charge here, inside its transaction."""
        account = await tx.get(Account, charge.account_id)
        assert account is not None
        amount = self.money.format(charge.amount_minor)
        last4 = charge.last4 or "(none on file)"
        if charge.purpose == "fee":
            # R-DEP-5 pays the fee from the deposit, but never with money held for a fax
            # in progress (that fax would then overdraw the deposit, R-DEP-9).
            if billing.balance_minor - billing.held_minor >= charge.amount_minor:
                # R-DEP-5: the deposit pays the fee until the card can be charged.
                await self.ledger.post(
                    tx, billing, kind="fee", amount_minor=-charge.amount_minor, key=f"fee:{charge.idempotency_key}",
                    reference=charge.reference or f"card:{charge.idempotency_key}",
                    memo=f"{charge.memo} (paid from the deposit: card declined)",
                )
                billing.fee_restore_minor += charge.amount_minor
                await self.notify(tx, self.notices.fee_paid_from_deposit(
                    account, fee=amount, reason=charge.decline_reason, last4=last4), MailKind.FEE_DECLINED)
            elif self.money_settings.suspend_on_decline:
                await self.suspend(tx, account, HoldReason.DECLINED_FEE, key=charge.idempotency_key,
                                    what=f"We could not charge your fee of {amount} to your card ending {last4},"
                                         " and your deposit cannot cover it", reason=charge.decline_reason)
        elif charge.purpose == "topup" or (charge.purpose == "deposit" and not charge.reference.startswith("job:")):
            # R-DEP-8: a failed charge is told; money already owed may suspend.
            await self.notify(tx, self.notices.charge_declined(
                account, amount=amount, purpose=charge.memo, reason=charge.decline_reason, last4=last4),
                MailKind.CHARGE_DECLINED)
            if billing.balance_minor < 0 and self.money_settings.suspend_on_decline:
                # Money owed that the card will not pay: held like a fee the deposit cannot cover.
                await self.suspend(tx, account, HoldReason.DECLINED_FEE, key=charge.idempotency_key,
                                    what=f"We could not charge a deposit of {amount} to your card ending {last4},"
                                         f" and your account owes {self.money.format(-billing.balance_minor)}",
                                    reason=charge.decline_reason)
        # A declined restore (R-DEP-5) is simply tried again at the next cycle; a declined
        # first deposit at intake was told to the sender in the fax's rejection.
