"""The inbound tables: received faxes, mail tokens, delivery-address health, events,
and the per-account junk filter.

Where it sits: beside bridge/models.py (same `Base`), created by migration
0003_inbound. `inbound_faxes` is the message center (R-STORE-1): one row per fax
received on a service number, whatever became of it; its files are removed by the
retention purge (R-STORE-2) and the row records when.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bridge.core.models import Base, utcnow

# inbound_faxes.state
QUEUED, DELIVERED, UNROUTED, BLOCKED, UNDELIVERABLE = "queued", "delivered", "unrouted", "blocked", "undeliverable"


class InboundFaxRecord(Base):
    """A fax received on one of the service's numbers."""

    __tablename__ = "inbound_faxes"
    __table_args__ = (Index("ix_inbound_faxes_account", "account_id", "received_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # The holder of the number when the fax came in; None when it had none.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    to_number: Mapped[str] = mapped_column(String(20))
    number_kind: Mapped[str] = mapped_column(String(20), default="")
    caller_number: Mapped[str] = mapped_column(String(20), default="")
    remote_station_id: Mapped[str] = mapped_column(String(40), default="")
    pages: Mapped[int] = mapped_column(Integer)
    line_seconds: Mapped[float] = mapped_column(default=0.0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # queued | delivered | unrouted | blocked | undeliverable
    state: Mapped[str] = mapped_column(String(20), default=QUEUED)
    detail: Mapped[str] = mapped_column(Text, default="")
    tiff_path: Mapped[str] = mapped_column(Text, default="")
    pdf_path: Mapped[str] = mapped_column(Text, default="")
    charged_minor: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    # R-STORE-2: set when the retention purge removed the files.
    purged_at: Mapped[datetime | None] = mapped_column(default=None)


class MailToken(Base):
    """An unguessable token bound to one account (and for bounces one address): the
    TOKEN of `unsubscribe+TOKEN@`, `/u/TOKEN` and `bounces+TOKEN@`."""

    __tablename__ = "mail_tokens"
    __table_args__ = (Index("ix_mail_tokens_owner", "purpose", "account_id", "address", unique=True),)

    token: Mapped[str] = mapped_column(String(80), primary_key=True)
    # unsubscribe | bounce
    purpose: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryHealth(Base):
    """How mail to one delivery address fares (R-ACCT-5 (ii))."""

    __tablename__ = "delivery_health"
    __table_args__ = (Index("ix_delivery_health_address", "account_id", "address", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))
    hard_bounces: Mapped[int] = mapped_column(Integer, default=0)
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0)
    failing: Mapped[bool] = mapped_column(default=False)
    last_status: Mapped[str] = mapped_column(String(200), default="")
    last_bounce_at: Mapped[datetime | None] = mapped_column(default=None)


class MailEvent(Base):
    """Something a customer's mail did to their account: an opt-out, a bounce, a
    closing. Written in the transaction that acted on it, before the 250 or 200."""

    __tablename__ = "mail_events"
    __table_args__ = (Index("ix_mail_events_account", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # opt-out | bounce | closed
    kind: Mapped[str] = mapped_column(String(20))
    via: Mapped[str] = mapped_column(String(40), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BlockedSender(Base):
    """The junk filter: a caller ID or station ID whose faxes an account does not want;
    they are neither delivered nor counted as usage."""

    __tablename__ = "blocked_senders"
    __table_args__ = (Index("ix_blocked_senders_account", "account_id", "kind", "value", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # caller | station
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
