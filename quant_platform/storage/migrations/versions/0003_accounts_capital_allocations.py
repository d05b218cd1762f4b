"""Accounts: current capital, status, capital history, strategy allocations.

Revision ID: 0003
Revises: 0002

Spelled out in full (no model imports) so this revision keeps building the same schema forever.
Existing accounts start `active` with their current capital equal to their initial cash.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPTS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(
        name, sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"), nullable=nullable
    )


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:  # SQLite: table rebuilt to add the CHECKs
        batch.add_column(sa.Column("current_capital", sa.Double(), server_default="0", nullable=False))
        batch.add_column(sa.Column("status", sa.String(length=16), server_default="active", nullable=False))
        batch.add_column(_ts("status_changed_at", nullable=True))
        batch.create_check_constraint(
            op.f("ck_accounts_status"), "status IN ('active', 'inactive', 'suspended')"
        )
        batch.create_check_constraint(op.f("ck_accounts_capital_non_negative"), "current_capital >= 0")
    op.execute("UPDATE accounts SET current_capital = initial_cash WHERE initial_cash >= 0")
    op.create_table(
        "account_capital_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("previous", sa.Double(), nullable=False),
        sa.Column("capital", sa.Double(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_capital_changes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_capital_changes")),
        **_OPTS,
    )
    op.create_index(
        op.f("ix_account_capital_changes_account_id_id"), "account_capital_changes", ["account_id", "id"]
    )
    op.create_table(
        "account_allocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("strategy_id", sa.Integer(), nullable=False),
        sa.Column("allocated_capital", sa.Double(), nullable=False),
        sa.Column("risk_limit", sa.Double(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "allocated_capital >= 0", name=op.f("ck_account_allocations_allocated_non_negative")
        ),
        sa.CheckConstraint(
            "risk_limit > 0 AND risk_limit <= 1", name=op.f("ck_account_allocations_risk_limit_range")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_allocations_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["strategy_id"],
            ["strategies.id"],
            name=op.f("fk_account_allocations_strategy_id_strategies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_allocations")),
        sa.UniqueConstraint(
            "account_id", "strategy_id", name=op.f("uq_account_allocations_account_id_strategy_id")
        ),
        **_OPTS,
    )
    op.create_index(op.f("ix_account_allocations_strategy_id"), "account_allocations", ["strategy_id"])


def downgrade() -> None:
    op.drop_table("account_allocations")
    op.drop_table("account_capital_changes")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint(op.f("ck_accounts_capital_non_negative"), type_="check")
        batch.drop_constraint(op.f("ck_accounts_status"), type_="check")
        batch.drop_column("status_changed_at")
        batch.drop_column("status")
        batch.drop_column("current_capital")
