"""abuse mailbox: cursor, reports and cases (R-ABUSE, issue 7)

It once branched from 0001; since issue 13 it follows 0003_inbound on the one line.

Revision ID: 0004_abuse
Revises: 0003_inbound
"""

import sqlalchemy as sa
from alembic import op

import bridge.core.models

revision = "0004_abuse"
down_revision = "0003_inbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "abuse_mailboxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=200), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", bridge.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mailbox"),
    )
    op.create_table(
        "abuse_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("numbers", sa.JSON(), nullable=False),
        sa.Column("reporters", sa.JSON(), nullable=False),
        sa.Column("report_count", sa.Integer(), nullable=False),
        sa.Column("opened_at", bridge.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", bridge.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", bridge.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_abuse_cases_account", "abuse_cases", ["account_id", "state"])
    op.create_table(
        "abuse_reports",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("mailbox", sa.String(length=200), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("received_at", bridge.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reporter", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("numbers_found", sa.JSON(), nullable=False),
        sa.Column("numbers_ours", sa.JSON(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("filed_in", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["abuse_cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_abuse_reports_uid", "abuse_reports", ["mailbox", "uidvalidity", "uid"], unique=True)
    op.create_index("ix_abuse_reports_sha256", "abuse_reports", ["sha256"])
    op.create_index("ix_abuse_reports_account", "abuse_reports", ["account_id", "received_at"])


def downgrade() -> None:
    op.drop_table("abuse_reports")
    op.drop_table("abuse_cases")
    op.drop_table("abuse_mailboxes")
