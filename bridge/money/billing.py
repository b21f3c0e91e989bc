"""The billing cycle: fees, deposits restored, chargebacks, fair use.

Where it sits: run by the money component (bridge/money/component.py) every
`money.billing_interval_seconds`, and by the CLI where an operator's change calls for
it. Each run:

  1. finishes card charges left pending (crash reconciliation, bridge/money/payments.py);
  2. takes in chargebacks the processor reports: the money is taken back from the
     deposit and the account suspended, with a notice (R-DEP-8);
  3. charges activation and monthly/annual fees in advance (R-DEP-7); a fee the card
     declines is paid from the deposit and told to the customer (R-DEP-5), or, when the
     deposit cannot pay it, the account is suspended (R-DEP-8);
  4. charges the card to restore what the deposit advanced for fees, once it works (R-DEP-5);
  5. measures fair use over the rolling window (R-USE-4..6): Free accounts over the
     limit are told and offered the upgrade; Plus/Pro usage above the line is charged
     as overage and told, with the upgrade offer.

Fees are charged to accounts that have put a card on file: an account without one has
never authorised a charge (and cannot send: the meter step refuses it). The clock is
injected, so tests move time instead of waiting for it.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.accounts.models import Account
from bridge.accounts.state import HoldReason
from bridge.core.db import Database
from bridge.mail.kinds import MailKind
from bridge.money.meter import Metering
from bridge.money.models import (
    BillingAccount,
    BillingEvent,
    CardCharge,
    LedgerEntry,
    PaymentMethod,
    UsageRecord,
)
from bridge.money.payments import active_card

if TYPE_CHECKING:
    from bridge.money.settings import PlanSettings
    from bridge.settings import Settings

log = logging.getLogger("bridge.money.billing")


def add_months(moment: datetime, months: int) -> datetime:
    """Same day of the month `months` later, clipped to the month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass
class CycleReport:
    reconciled: int = 0
    chargebacks: int = 0
    fees: list[str] = field(default_factory=list)
    restored: int = 0
    overage_units: int = 0
    notices: int = 0


class BillingCycle:
    def __init__(self, settings: Settings, db: Database, *, metering: Metering) -> None:
        self.settings = settings
        self.money_settings = settings.money
        self.db = db
        self.metering = metering
        self.ledger = metering.ledger
        self.payments = metering.payments
        self.money = metering.money
        self.clock = metering.clock
        # What the cycle tells customers and how it suspends: the same Declines that
        # the Metering's payments report every declined charge to (R-DEP-5, R-DEP-8).
        self.declines = metering.declines
        self.notices = self.declines.notices

    async def run_once(self) -> CycleReport:
        report = CycleReport()
        report.reconciled = await self.payments.reconcile()
        report.chargebacks = await self.take_chargebacks()
        report.fees = await self.charge_fees()
        report.restored = await self.restore_deposits()
        report.overage_units = await self.fair_use()
        return report

    # --- 2. chargebacks ---------------------------------------------------------------
    async def take_chargebacks(self) -> int:
        taken = 0
        for dispute in await self.metering.processor.disputes():
            async with self.db.transaction() as tx:
                charge = await tx.scalar(select(CardCharge).where(CardCharge.processor_ref == dispute.charge_reference))
                if charge is None:
                    continue
                key = f"chargeback:{dispute.charge_reference}"
                if not await self.declines.event(tx, charge.account_id, "chargeback", key, dispute.reason):
                    continue
                billing = await self.ledger.account(tx, charge.account_id)
                await self.ledger.post(
                    tx, billing, kind="chargeback", amount_minor=-dispute.amount_minor,
                    key=key, reference=f"card:{charge.idempotency_key}",
                    memo=f"chargeback of {charge.memo} ({dispute.reason})",
                )
                account = await tx.get(Account, charge.account_id)
                assert account is not None
                if self.money_settings.suspend_on_chargeback:
                    await self.declines.suspend(tx, account, HoldReason.CHARGEBACK, key=key,
                                                what=f"The charge of {self.money.format(dispute.amount_minor)} to your"
                                                     f" card ending {charge.last4} was charged back",
                                                reason=dispute.reason)
                taken += 1
        return taken

    # --- 3. fees ------------------------------------------------------------------------
    async def charge_fees(self) -> list[str]:
        now = self.clock()
        async with self.db.reading() as session:
            ids = list(await session.scalars(
                select(Account.id).where(
                    Account.state == "active",
                    Account.id.in_(select(PaymentMethod.account_id)),
                ).order_by(Account.id)
            ))
        made: list[str] = []
        for account_id in ids:
            keys: list[str] = []
            async with self.db.transaction() as tx:
                account = await tx.get(Account, account_id)
                assert account is not None
                plan = self.metering.plan(account.plan)
                billing = await self.ledger.account(tx, account_id)
                if billing.activated_plan != account.plan:
                    if plan.activation_fee_minor:
                        key = await self._fee(tx, billing, key=f"activation:{account_id}:{account.plan}",
                                              amount=plan.activation_fee_minor,
                                              memo=f"activation fee, {account.plan} plan",
                                              reference=f"plan:{account.plan}")
                        keys.append(key)
                    billing.activated_plan = account.plan
                fee = plan.annual_fee_minor if billing.cycle == "annual" else plan.monthly_fee_minor
                months = 12 if billing.cycle == "annual" else 1
                for _ in range(36):  # catch up on periods missed while the server was down
                    if not fee or (billing.paid_through is not None and billing.paid_through > now):
                        break
                    start = billing.paid_through or now
                    end = add_months(start, months)
                    keys.append(await self._fee(
                        tx, billing, key=f"fee:{account_id}:{start:%Y-%m-%dT%H:%M}", amount=fee,
                        memo=f"{billing.cycle} fee, {account.plan} plan, {start:%Y-%m-%d} to {end:%Y-%m-%d}",
                        reference=f"period:{start:%Y-%m-%d}",
                    ))
                    # R-DEP-7: paid in advance for the period.
                    billing.period_start, billing.paid_through = start, end
            for key in keys:
                await self.payments.execute(key)
            made.extend(keys)
        return made

    async def _fee(
        self, tx: AsyncSession, billing: BillingAccount, *, key: str, amount: int, memo: str, reference: str
    ) -> str:
        charge = await self.payments.request(tx, billing, purpose="fee", amount_minor=amount, key=key, memo=memo,
                                             reference=reference)
        if charge is None:  # the card was removed: the processor declines an empty token
            charge = CardCharge(account_id=billing.account_id, idempotency_key=key, purpose="fee", amount_minor=amount,
                                currency=billing.currency, token="", last4="", reference=reference, memo=memo,
                                state="pending", processor_ref="", decline_reason="", created_at=self.clock())
            tx.add(charge)
            await tx.flush()
        return key

    # --- 4. restoring the deposit (R-DEP-5) -------------------------------------------
    async def restore_deposits(self) -> int:
        async with self.db.reading() as session:
            ids = list(await session.scalars(
                select(BillingAccount.account_id).where(BillingAccount.fee_restore_minor > 0)
            ))
        restored = 0
        for account_id in ids:
            async with self.db.transaction() as tx:
                billing = await self.ledger.account(tx, account_id)
                if billing.fee_restore_minor <= 0 or await active_card(tx, account_id) is None:
                    continue
                tries = await tx.scalar(select(func.count()).select_from(CardCharge).where(
                    CardCharge.account_id == account_id, CardCharge.purpose == "restore"))
                charge = await self.payments.request(
                    tx, billing, purpose="restore", amount_minor=billing.fee_restore_minor,
                    key=f"restore:{account_id}:{int(tries or 0) + 1}",
                    memo="restores the deposit that paid a declined fee (R-DEP-5)",
                )
                assert charge is not None
                key = charge.idempotency_key
            outcome = await self.payments.execute(key)
            restored += outcome.state == "approved"
        return restored

    # --- 5. fair use (R-USE-4..6) -------------------------------------------------------
    async def fair_use(self) -> int:
        now = self.clock()
        days = self.money_settings.fair_use_window_days
        since = now - timedelta(days=days)
        charged_units = 0
        async with self.db.transaction() as tx:
            accounts = list(await tx.scalars(select(Account).where(Account.state == "active").order_by(Account.id)))
            usage_in: dict[int, int] = {}
            usage_all: dict[int, int] = {}
            rows = await tx.execute(
                select(UsageRecord.account_id, UsageRecord.direction, func.sum(UsageRecord.units))
                .where(UsageRecord.occurred_at > since, UsageRecord.occurred_at <= now)
                .group_by(UsageRecord.account_id, UsageRecord.direction)
            )
            for account_id, direction, units in rows:
                usage_all[account_id] = usage_all.get(account_id, 0) + int(units)
                if direction == "in":
                    usage_in[account_id] = usage_in.get(account_id, 0) + int(units)
            paid = [a for a in accounts if self._plan_or_none(a.plan) is not None and self.metering.plan(a.plan).paid]
            # R-USE-5: the average usage of all paid (Plus and Pro) customers in the window.
            average = Fraction(sum(usage_all.get(a.id, 0) for a in paid), len(paid)) if paid else Fraction(0)
            for account in accounts:
                plan = self._plan_or_none(account.plan)
                if plan is None:
                    continue
                if plan.fair_use_limit_units and usage_in.get(account.id, 0) > plan.fair_use_limit_units:
                    # R-USE-4: told and offered an upgrade, once per window.
                    if await self._recent_event(tx, account.id, "fair-use", since):
                        continue
                    await self.declines.event(tx, account.id, "fair-use", f"fair-use:{account.id}:{now.isoformat()}",
                                      f"{usage_in[account.id]} pages received in {days} days")
                    await self.declines.notify(tx, self.notices.fair_use_free(
                        account, units=usage_in[account.id], limit=plan.fair_use_limit_units, days=days,
                        upgrade=plan.upgrade_to or "Plus"), MailKind.FAIR_USE)
                    continue
                if not plan.fair_use_multiplier_percent:
                    continue
                usage = usage_all.get(account.id, 0)
                line = max(average * plan.fair_use_multiplier_percent / 100, Fraction(plan.fair_use_floor_units))
                if usage <= line or usage <= plan.fair_use_floor_units:
                    continue
                # R-USE-6: each unit beyond the line, counted once over overlapping windows.
                beyond = usage - int(line)  # int() floors a non-negative Fraction
                billed = await tx.scalar(
                    select(func.coalesce(func.sum(LedgerEntry.units), 0)).where(
                        LedgerEntry.account_id == account.id, LedgerEntry.kind == "overage",
                        LedgerEntry.created_at > since,
                    )
                )
                new_units = beyond - int(billed or 0)
                if new_units <= 0:
                    continue
                billing = await self.ledger.account(tx, account.id)
                rate = self.money_settings.overage_unit_minor
                amount = new_units * rate
                await self.ledger.post(
                    tx, billing, kind="overage", amount_minor=-amount,
                    key=f"overage:{account.id}:{now.isoformat()}",
                    reference=f"fair-use:{since:%Y-%m-%d}..{now:%Y-%m-%d}",
                    memo=f"fair use: {usage} units in {days} days, line {int(line)}; {new_units} unit(s) of overage"
                         f" x {self.money.format(rate)}",
                    units=new_units,
                )
                charged_units += new_units
                await self.declines.notify(tx, self.notices.overage(
                    account, units=usage, line=str(int(line)), new_units=new_units, amount=self.money.format(amount),
                    rate=self.money.format(rate), days=days, upgrade=plan.upgrade_to), MailKind.FAIR_USE_OVERAGE)
                await self.metering.top_up_if_low(tx, billing, plan)
        return charged_units

    def _plan_or_none(self, name: str) -> PlanSettings | None:
        return self.money_settings.plans.get(name)

    async def _recent_event(self, tx: AsyncSession, account_id: int, kind: str, since: datetime) -> bool:
        return await tx.scalar(select(BillingEvent.id).where(
            BillingEvent.account_id == account_id, BillingEvent.kind == kind, BillingEvent.created_at > since,
        ).limit(1)) is not None
