"""The abuse area's tables: where the mailbox cursor, every report and every case live.

Where it sits: written by the abuse pipeline's act step (bridge.abuse.cases) in the
same transaction as the mail it sends; read by `faxbridge abuse ...`. Migration
bridge/migrations/versions/0004_abuse.py creates them.

Exactly-once (issue 7): a report row is keyed by (mailbox, UIDVALIDITY, UID) and by
the sha256 of the message, and is committed before the message is moved out of the
mailbox; a message seen again (a crash before the move, a Dovecot restart, a new
UIDVALIDITY) is only moved, never processed twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bridge.core.models import Base, utcnow

# Report kinds, as classify names them.
KIND_ARF = "arf"  # RFC 5965 feedback report
KIND_ATTACHED = "attached"  # spam forwarded as a message/rfc822 attachment
KIND_INLINE = "inline"  # spam forwarded inline
KIND_JUNK_FAX = "junk-fax"  # a fax received, attached as PDF or TIFF (R-ABUSE-1/2)
KIND_COMPLAINT = "complaint"  # only the reporter's own words

# Case kinds by rule.
CASE_DROP_BOX = "drop-box"  # R-ABUSE-3
CASE_JUNK_FAX = "junk-fax"  # R-ABUSE-1

# Report outcomes.
MATCHED = "matched"
NOT_OURS = "not-ours"  # numbers found, none of them the service's
NO_NUMBER = "no-number"
QUARANTINED = "quarantined"

# Case states.
OPEN = "open"
SUSPENDED = "suspended"
DISMISSED = "dismissed"
CASE_STATES = (OPEN, SUSPENDED, DISMISSED)


class AbuseMailbox(Base):
    """How far the poller has read one mailbox, per UIDVALIDITY."""

    __tablename__ = "abuse_mailboxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200), unique=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)  # 32-bit unsigned in IMAP
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AbuseCase(Base):
    """What the service knows against one account; extended by each new report."""

    __tablename__ = "abuse_cases"
    __table_args__ = (Index("ix_abuse_cases_account", "account_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    state: Mapped[str] = mapped_column(String(20), default=OPEN)
    # CASE_DROP_BOX and/or CASE_JUNK_FAX, in the order they were first reported.
    kinds: Mapped[list[Any]] = mapped_column(default=list)
    numbers: Mapped[list[Any]] = mapped_column(default=list)
    reporters: Mapped[list[Any]] = mapped_column(default=list)
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Who suspended or dismissed it and why ("automatic: 3 reporters in 30 days").
    resolution: Mapped[str] = mapped_column(Text, default="")


class AbuseReport(Base):
    """One message read from the abuse mailbox, and what came of it."""

    __tablename__ = "abuse_reports"
    __table_args__ = (
        Index("ix_abuse_reports_uid", "mailbox", "uidvalidity", "uid", unique=True),
        Index("ix_abuse_reports_sha256", "sha256"),
        Index("ix_abuse_reports_account", "account_id", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)  # 32-bit unsigned in IMAP
    uid: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    reporter: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(998), default="")
    message_id: Mapped[str] = mapped_column(String(998), default="")
    kind: Mapped[str] = mapped_column(String(20), default="")
    outcome: Mapped[str] = mapped_column(String(20))
    # Why it was quarantined, in words an operator can act on.
    reason: Mapped[str] = mapped_column(Text, default="")
    numbers_found: Mapped[list[Any]] = mapped_column(default=list)
    numbers_ours: Mapped[list[Any]] = mapped_column(default=list)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("abuse_cases.id"), default=None)
    # The lines of the report that named the numbers (shown to the account holder).
    evidence: Mapped[str] = mapped_column(Text, default="")
    # Folder the message was moved to; empty until the move is done.
    filed_in: Mapped[str] = mapped_column(String(200), default="")
