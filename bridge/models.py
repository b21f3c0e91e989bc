"""The schema: accounts and their addresses, fax numbers, submissions and the job queue.

Where it sits: the tables behind `bridge.accounts` (who may send), `bridge.intake`
(what was accepted, stored before the 250) and `bridge.queue` (the durable work every
runner claims). Alembic migrations in `bridge/migrations/` create and evolve them;
`faxbridge db upgrade` applies them and `faxbridge serve` does so at start-up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always read back timezone-aware (SQLite drops tz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


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


class Job(Base):
    """A unit of durable work on a named queue (intake, transmit, mail, ...).

    States: queued -> running -> done | rejected | failed. `running` carries a lease; a
    job whose lease ran out (its worker died) is claimed again. `payload` is the typed
    job object of that queue, serialised by its pydantic model.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "queue", "state", "not_before"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    queue: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), default="queued")
    submission_id: Mapped[str | None] = mapped_column(
        ForeignKey("submissions.id"), default=None, index=True
    )
    parent_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The step the job is in, or the step where it stopped (failed/rejected).
    stage: Mapped[str] = mapped_column(String(60), default="")
    steps_done: Mapped[list[Any]] = mapped_column(default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    # For rejected jobs the customer-facing reason; for failed ones the traceback.
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    rule: Mapped[str | None] = mapped_column(String(20), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
