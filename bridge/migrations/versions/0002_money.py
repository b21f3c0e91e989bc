"""money: billing accounts, the append-only ledger, holds, cards, card charges, usage

Written by hand (issue 5). It once branched from 0001 with the label "money"; since
issue 13 the history is one line (bridge.core.schema moves old databases onto it).

Revision ID: 0002_money
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

from bridge.core.models import UTCDateTime

revision = "0002_money"
down_revision = "0001"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance_minor", sa.Integer(), nullable=False),
        sa.Column("held_minor", sa.Integer(), nullable=False),
        sa.Column("deposit_minor", sa.Integer(), nullable=True),
        sa.Column("last_entry_id", sa.Integer(), nullable=True),
        sa.Column("cycle", sa.String(10), nullable=False),
        sa.Column("activated_plan", sa.String(20), nullable=True),
        _when("period_start", True),
        _when("paid_through", True),
        sa.Column("fee_restore_minor", sa.Integer(), nullable=False),
        _when("created_at"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance_after_minor", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("memo", sa.String(400), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        _when("created_at"),
    )
    op.create_index("ix_ledger_entries_account", "ledger_entries", ["account_id", "id"])
    op.create_table(
        "money_holds",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("job_id", sa.String(40), nullable=False, unique=True),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("used_minor", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        _when("created_at"),
        _when("settled_at", True),
    )
    op.create_index("ix_money_holds_account_id", "money_holds", ["account_id"])
    op.create_table(
        "payment_methods",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("processor", sa.String(20), nullable=False),
        sa.Column("token", sa.String(100), nullable=False),
        sa.Column("brand", sa.String(20), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        _when("created_at"),
    )
    op.create_index("ix_payment_methods_account_id", "payment_methods", ["account_id"])
    op.create_table(
        "card_charges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("token", sa.String(100), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("memo", sa.String(400), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("processor_ref", sa.String(100), nullable=False),
        sa.Column("decline_reason", sa.String(200), nullable=False),
        _when("created_at"),
        _when("decided_at", True),
    )
    op.create_index("ix_card_charges_state", "card_charges", ["state", "account_id"])
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("source_key", sa.String(200), nullable=False, unique=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("number_kind", sa.String(20), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("charged_minor", sa.Integer(), nullable=False),
        _when("occurred_at"),
    )
    op.create_index("ix_usage_records_window", "usage_records", ["account_id", "occurred_at"])
    op.create_table(
        "billing_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("detail", sa.Text(), nullable=False),
        _when("created_at"),
    )
    op.create_index("ix_billing_events_account", "billing_events", ["account_id", "kind", "created_at"])


def downgrade() -> None:
    for table in (
        "billing_events", "usage_records", "card_charges", "payment_methods", "money_holds", "ledger_entries",
        "billing_accounts",
    ):
        op.drop_table(table)
