"""account holds and the record of account state changes (issue 13, STYLE 13)

Revision ID: 0005_account_holds
Revises: 0004_abuse

An account suspended today has no recorded reason: it gets an open `operator` hold,
so it stays suspended until an operator resumes it (`faxbridge account resume ID`).
"""

import sqlalchemy as sa
from alembic import op

import bridge.core.models

revision = "0005_account_holds"
down_revision = "0004_abuse"
branch_labels = None
depends_on = None

UNRECORDED = "suspended before holds were recorded"


def upgrade() -> None:
    op.create_table(
        "account_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("placed_at", bridge.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("placed_by", sa.String(length=40), nullable=False),
        sa.Column("lifted_at", bridge.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=40), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_account_holds_open", "account_holds", ["account_id", "reason", "ref"], unique=True,
        sqlite_where=sa.text("lifted_at IS NULL"), postgresql_where=sa.text("lifted_at IS NULL"),
    )
    op.create_table(
        "account_state_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("at", bridge.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=40), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=False),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_account_state_changes_account", "account_state_changes", ["account_id", "at"])

    # Suspended accounts keep their suspension, now with a hold an operator can lift.
    now = sa.literal(bridge.core.models.utcnow(), bridge.core.models.UTCDateTime(timezone=True))
    accounts = sa.table("accounts", sa.column("id", sa.Integer()), sa.column("state", sa.String()))
    suspended = accounts.c.state == "suspended"
    _insert_from(
        "account_holds",
        {"account_id": accounts.c.id, "reason": "operator", "rule": "", "ref": "", "placed_at": now,
         "placed_by": "migration", "note": UNRECORDED},
        suspended,
    )
    _insert_from(
        "account_state_changes",
        {"account_id": accounts.c.id, "at": now, "by": "migration", "from_state": "suspended", "to_state": "suspended",
         "reason": "operator", "rule": "", "ref": "", "note": UNRECORDED},
        suspended,
    )


def _insert_from(table: str, values: dict[str, object], where: sa.ColumnElement[bool]) -> None:
    """INSERT INTO table (...) SELECT ... FROM accounts WHERE ...: one row per account."""
    columns = [
        value if isinstance(value, sa.ColumnElement) else sa.literal(value) for value in values.values()
    ]
    target = sa.table(table, *(sa.column(name) for name in values))
    op.execute(target.insert().from_select(list(values), sa.select(*columns).where(where)))


def downgrade() -> None:
    op.drop_table("account_state_changes")
    op.drop_table("account_holds")
