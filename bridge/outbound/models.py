"""What the outbound flow writes down: accepted submissions and call attempts.

Where it sits: `Submission` is written by the durable intake (bridge.outbound.intake)
before the 250; `CallAttempt` by the call runner (bridge.outbound.transmit) with the
job's progress, and is the billing event metering charges (R-USE-3).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bridge.core.models import Base, utcnow


class CallAttempt(Base):
    """One dialling of one number for one fax job, as the fax line reported it.

    Written by the transmit runner in the same transaction as the job's progress; an
    attempt in which the far end answered is the billing event of R-USE-3, which
    metering turns into a charge keyed by the attempt's id (charged once, ever).
    """

    __tablename__ = "call_attempts"
    __table_args__ = (Index("ix_call_attempts_job", "job_id", "number", "attempt", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    number: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(30))
    answered: Mapped[bool] = mapped_column(default=False)
    pages_sent: Mapped[int] = mapped_column(Integer, default=0)
    line_seconds: Mapped[float] = mapped_column(default=0.0)
    bit_rate: Mapped[int] = mapped_column(Integer, default=0)
    ecm: Mapped[bool] = mapped_column(default=False)
    remote_station_id: Mapped[str] = mapped_column(String(40), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)

class Submission(Base):
    """One message accepted over SMTP, recorded in the same transaction as its job."""

    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_dedup", "dedup_key", "received_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[Any]] = mapped_column(default=list)
    from_header: Mapped[str] = mapped_column(String(320), default="")
    message_id: Mapped[str] = mapped_column(String(998), default="")
    # sha256 of the message without the trace fields relays prepend (intake.content_fingerprint)
    content_sha256: Mapped[str] = mapped_column(String(64))
    # sha256 of sender, Message-ID and content: a resubmission within the window is
    # acknowledged and not processed again.
    dedup_key: Mapped[str | None] = mapped_column(String(64), default=None)
    size: Mapped[int] = mapped_column(Integer)
    spool_path: Mapped[str] = mapped_column(Text)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), default=None)
    peer: Mapped[str] = mapped_column(String(100), default="")
    listener: Mapped[str] = mapped_column(String(100), default="")
    auth_login: Mapped[str | None] = mapped_column(String(320), default=None)
