"""inbound: received faxes (message center), mail tokens, delivery health, mail events,
blocked senders

Written by hand (issue 6). It once branched from 0001 with the label "inbound"; since
issue 13 it follows 0002_money on the one line.

Revision ID: 0003_inbound
Revises: 0002_money
"""
import sqlalchemy as sa
from alembic import op

from bridge.core.models import UTCDateTime

revision = "0003_inbound"
down_revision = "0002_money"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "inbound_faxes",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("to_number", sa.String(20), nullable=False),
        sa.Column("number_kind", sa.String(20), nullable=False),
        sa.Column("caller_number", sa.String(20), nullable=False),
        sa.Column("remote_station_id", sa.String(40), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("line_seconds", sa.Float(), nullable=False),
        _when("received_at"),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("tiff_path", sa.Text(), nullable=False),
        sa.Column("pdf_path", sa.Text(), nullable=False),
        sa.Column("charged_minor", sa.Integer(), nullable=False),
        _when("delivered_at", True),
        _when("purged_at", True),
    )
    op.create_index("ix_inbound_faxes_account", "inbound_faxes", ["account_id", "received_at"])
    op.create_table(
        "mail_tokens",
        sa.Column("token", sa.String(80), primary_key=True),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        _when("created_at"),
    )
    op.create_index("ix_mail_tokens_owner", "mail_tokens", ["purpose", "account_id", "address"], unique=True)
    op.create_table(
        "delivery_health",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("hard_bounces", sa.Integer(), nullable=False),
        sa.Column("soft_bounces", sa.Integer(), nullable=False),
        sa.Column("failing", sa.Boolean(), nullable=False),
        sa.Column("last_status", sa.String(200), nullable=False),
        _when("last_bounce_at", True),
    )
    op.create_index("ix_delivery_health_address", "delivery_health", ["account_id", "address"], unique=True)
    op.create_table(
        "mail_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("via", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        _when("created_at"),
    )
    op.create_index("ix_mail_events_account", "mail_events", ["account_id", "created_at"])
    op.create_table(
        "blocked_senders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("value", sa.String(40), nullable=False),
        _when("created_at"),
    )
    op.create_index("ix_blocked_senders_account", "blocked_senders", ["account_id", "kind", "value"], unique=True)


def downgrade() -> None:
    for table in ("blocked_senders", "mail_events", "delivery_health", "mail_tokens", "inbound_faxes"):
        op.drop_table(table)
