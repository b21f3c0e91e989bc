"""The spine's schema: the declarative base every flow's models derive from, UTC
timestamps, and the job queue's table.

Where it sits: under every flow. Each flow keeps its own tables beside its code
(bridge/accounts/models.py, bridge/outbound/models.py, bridge/money/models.py, ...);
all share `Base.metadata`. Alembic migrations in `bridge/migrations/` create and
evolve them; `faxbridge db upgrade` applies them and `faxbridge serve` does so at
start-up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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
    # ClassVar: the one map SQLAlchemy reads off the base class, not a column.
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


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
