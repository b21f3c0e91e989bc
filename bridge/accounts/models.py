"""Accounts, their addresses and the fax numbers licensed to them.

Where it sits: the tables behind bridge.accounts (who may send, R-ACCT-3; whose number
a fax arrived on, R-NUM-1). Every flow that bills or delivers reads them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bridge.core.models import Base, utcnow


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    plan: Mapped[str] = mapped_column(String(20))
    # active | suspended | closed
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
