"""Accounts, their addresses and the fax numbers licensed to them.

Where it sits: the tables behind bridge.accounts (who may send, R-ACCT-3; whose number
a fax arrived on, R-NUM-1). Every flow that bills or delivers reads them.

`Account.state` is a stored summary that every flow reads; bridge.accounts.state alone
writes it, from the account's open holds (`AccountHold`), and records each change with
who and why (`AccountStateChange`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bridge.core.models import Base, utcnow


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    plan: Mapped[str] = mapped_column(String(20))
    # active | suspended | closed, derived from the open holds (bridge.accounts.state
    # writes it, nothing else): suspended while any hold remains, closed for good.
    state: Mapped[str] = mapped_column(String(20), default="active")
    # R-ACCT-2: only a slow salted hash (scrypt) of the PIN is kept.
    pin_hash: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # R-MAIL-1: Free accounts are opted in to promotional mail by default.
    promo_opt_in: Mapped[bool] = mapped_column(default=True)
    # "a4" or "letter": the paper the account's faxes are rendered on.
    paper_size: Mapped[str] = mapped_column(String(10), default="a4")
    # IANA zone for times shown to the customer (received faxes, statements).
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    # How inbound faxes are attached: "pdf" (default) or "tiff".
    inbound_format: Mapped[str] = mapped_column(String(10), default="pdf")

    addresses: Mapped[list[AccountAddress]] = relationship(
        back_populates="account", cascade="all, delete-orphan", lazy="selectin"
    )
    numbers: Mapped[list[FaxNumber]] = relationship(back_populates="account", lazy="selectin")

    def sender_addresses(self) -> list[str]:
        return [a.address for a in self.addresses if a.kind == "sender"]

    def delivery_addresses(self) -> list[str]:
        return [a.address for a in self.addresses if a.kind == "delivery"]

class AccountAddress(Base):
    """An email address of an account: `sender` may fax from it (R-ACCT-3), `delivery`
    receives inbound faxes."""

    __tablename__ = "account_addresses"
    __table_args__ = (Index("ix_account_addresses_unique", "address", "kind", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))  # stored lower-cased
    kind: Mapped[str] = mapped_column(String(20))

    account: Mapped[Account] = relationship(back_populates="addresses")

class FaxNumber(Base):
    """A fax number the service owns (R-NUM-1), licensed to at most one account."""

    __tablename__ = "fax_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    # local | toll-free | remote | non-geographic
    kind: Mapped[str] = mapped_column(String(20), default="local")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    # available | assigned | suspended
    state: Mapped[str] = mapped_column(String(20), default="available")

    account: Mapped[Account | None] = relationship(back_populates="numbers")


class AccountHold(Base):
    """One reason an account is suspended: a chargeback, a declined fee, an abuse case,
    an operator... (STYLE 13). Open while `lifted_at` is None; lifting it leaves the
    account's other holds in place."""

    __tablename__ = "account_holds"
    __table_args__ = (
        # One open hold per (reason, ref): placing it again changes nothing. Lifted holds
        # stay as the record, so the same reason can be placed again later.
        Index(
            "ix_account_holds_open", "account_id", "reason", "ref", unique=True,
            sqlite_where=text("lifted_at IS NULL"), postgresql_where=text("lifted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    # A bridge.accounts.state.HoldReason value.
    reason: Mapped[str] = mapped_column(String(20))
    # The rule the hold is placed under ("R-DEP-8"), if any.
    rule: Mapped[str] = mapped_column(String(40), default="")
    # What it is about: the charge's key, the abuse case's id; "" for the operator's.
    ref: Mapped[str] = mapped_column(String(200), default="")
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    placed_by: Mapped[str] = mapped_column(String(40))
    lifted_at: Mapped[datetime | None] = mapped_column(default=None)
    lifted_by: Mapped[str | None] = mapped_column(String(40), default=None)
    note: Mapped[str] = mapped_column(Text, default="")


class AccountStateChange(Base):
    """Every hold placed or lifted and every closing, with who and why; `from_state`
    and `to_state` are equal when a hold was added to (or lifted from) an account that
    other holds keep suspended."""

    __tablename__ = "account_state_changes"
    __table_args__ = (Index("ix_account_state_changes_account", "account_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who: "billing", "abuse", "operator", "inbound", "migration".
    by: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    # The hold's reason, or why the account was closed.
    reason: Mapped[str] = mapped_column(Text, default="")
    rule: Mapped[str] = mapped_column(String(40), default="")
    ref: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")
