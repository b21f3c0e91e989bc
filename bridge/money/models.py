"""The money tables: billing state per account, the ledger, holds, cards, card charges,
usage and billing events.

Where it sits: beside bridge/models.py (same `Base`), created by migration 0002_money.
`ledger_entries` is append-only (R-DEP-10): rows are inserted, never updated or
deleted, and `billing_accounts.balance_minor` caches their sum, written in the same
transaction as each entry. The other tables carry state that does change (a hold is
used up, a card charge is decided), and none of them is money by itself.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bridge.core.models import Base, utcnow


class BillingAccount(Base):
    """Money state of one account; one row, created on first use and locked while
    money moves."""

    __tablename__ = "billing_accounts"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    # Cache of SUM(ledger_entries.amount_minor) for the account (R-DEP-10).
    balance_minor: Mapped[int] = mapped_column(Integer, default=0)
    # Cache of what open holds still keep back (quotes of faxes not yet sent).
    held_minor: Mapped[int] = mapped_column(Integer, default=0)
    # The most recent deposit amount: R-DEP-3 tops up by it; None until the first.
    deposit_minor: Mapped[int | None] = mapped_column(Integer, default=None)
    last_entry_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # "monthly" or "annual" fees (R-DEP-7).
    cycle: Mapped[str] = mapped_column(String(10), default="monthly")
    activated_plan: Mapped[str | None] = mapped_column(String(20), default=None)
    period_start: Mapped[datetime | None] = mapped_column(default=None)
    paid_through: Mapped[datetime | None] = mapped_column(default=None)
    # R-DEP-5: fees the deposit paid because the card declined, to charge back to the
    # card when it works again.
    fee_restore_minor: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    """One movement of the deposit balance. Inserted only; never updated or deleted.

    kinds: deposit (card -> deposit), payment (card paid a fee), usage, fee, overage,
    refund (deposit -> card), chargeback, adjustment. `amount_minor` is signed: credits
    to the deposit are positive.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_account", "account_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    balance_after_minor: Mapped[int] = mapped_column(Integer)
    # What made the entry, once: a second post with the same key is a no-op.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    # What caused it: "attempt:12", "card:KEY", "inbound:FAXID", "job:ID", ...
    reference: Mapped[str] = mapped_column(String(200))
    memo: Mapped[str] = mapped_column(String(400), default="")
    units: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Hold(Base):
    """A fax's quote kept back from the deposit until its calls are done (R-DEP-2)."""

    __tablename__ = "money_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    job_id: Mapped[str] = mapped_column(String(40), unique=True)
    amount_minor: Mapped[int] = mapped_column(Integer)
    used_minor: Mapped[int] = mapped_column(Integer, default=0)
    # held | settled
    state: Mapped[str] = mapped_column(String(10), default="held")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def remaining_minor(self) -> int:
        return max(0, self.amount_minor - self.used_minor) if self.state == "held" else 0


class PaymentMethod(Base):
    """A card on file: the processor's token and the last four digits, never the number."""

    __tablename__ = "payment_methods"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    processor: Mapped[str] = mapped_column(String(20))
    token: Mapped[str] = mapped_column(String(100))
    brand: Mapped[str] = mapped_column(String(20), default="")
    last4: Mapped[str] = mapped_column(String(4), default="")
    # active | removed (replaced, or the authorisation withdrawn: R-DEP-6)
    state: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CardCharge(Base):
    """A charge (or refund) to ask of the processor, written before it is asked.

    The row commits first with state `pending`; then the processor is called with
    `idempotency_key`; then the outcome and its ledger entries commit together. A crash
    in between leaves the row pending, and reconciliation asks the processor again with
    the same key: the processor answers with the charge it already made, never a new one.
    """

    __tablename__ = "card_charges"
    __table_args__ = (Index("ix_card_charges_state", "state", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    # deposit | topup | fee | restore | refund
    purpose: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    token: Mapped[str] = mapped_column(String(100), default="")
    last4: Mapped[str] = mapped_column(String(4), default="")
    # For refunds: the processor reference of the charge refunded. For fees: what for.
    reference: Mapped[str] = mapped_column(String(200), default="")
    memo: Mapped[str] = mapped_column(String(400), default="")
    # pending | approved | declined
    state: Mapped[str] = mapped_column(String(10), default="pending")
    processor_ref: Mapped[str] = mapped_column(String(100), default="")
    decline_reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)


class UsageRecord(Base):
    """Usage units (R-USE-1) of one transmission or reception, for allowances and
    fair use; one per billing event, keyed by what caused it."""

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_records_window", "account_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    # in | out
    direction: Mapped[str] = mapped_column(String(3))
    number_kind: Mapped[str] = mapped_column(String(20), default="")
    units: Mapped[int] = mapped_column(Integer)
    charged_minor: Mapped[int] = mapped_column(Integer, default=0)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class BillingEvent(Base):
    """Something the billing cycle did once: a notice sent, a suspension, a chargeback
    taken in. The key makes each happen once."""

    __tablename__ = "billing_events"
    __table_args__ = (Index("ix_billing_events_account", "account_id", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(30))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
