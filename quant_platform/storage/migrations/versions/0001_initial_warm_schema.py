"""Initial warm schema: accounts, strategies, parameter versions, backtests, runs, grid requests.

Revision ID: 0001
Revises:

Spelled out in full (no model imports) so this revision keeps building the same schema forever.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS_CHECK = "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')"
_OPTS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _ts(name: str, nullable: bool = False) -> sa.Column:
    """Naive-UTC timestamp with microseconds on MySQL (plain DATETIME would truncate to seconds)."""
    return sa.Column(
        name, sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("broker", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("initial_cash", sa.Double(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_accounts_name")),
        **_OPTS,
    )
    op.create_table(
        "strategies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategies")),
        sa.UniqueConstraint("name", name=op.f("uq_strategies_name")),
        **_OPTS,
    )
    op.create_table(
        "strategy_params",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("strategy_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        # TRUE or NULL: the unique (strategy_id, is_active) index then allows one active version only.
        sa.Column("is_active", sa.Boolean(), nullable=True),
        _ts("created_at"),
        _ts("activated_at", nullable=True),
        sa.CheckConstraint(
            "is_active IS NULL OR is_active = 1", name=op.f("ck_strategy_params_active_true_or_null")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_strategy_params_version_positive")),
        sa.ForeignKeyConstraint(
            ["strategy_id"],
            ["strategies.id"],
            name=op.f("fk_strategy_params_strategy_id_strategies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_params")),
        sa.UniqueConstraint(
            "strategy_id", "is_active", name=op.f("uq_strategy_params_strategy_id_is_active")
        ),
        sa.UniqueConstraint("strategy_id", "version", name=op.f("uq_strategy_params_strategy_id_version")),
        **_OPTS,
    )
    op.create_table(
        "backtests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("strategy_id", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["strategy_id"], ["strategies.id"], name=op.f("fk_backtests_strategy_id_strategies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtests")),
        **_OPTS,
    )
    op.create_index(op.f("ix_backtests_strategy_id"), "backtests", ["strategy_id"])
    op.create_table(
        "grid_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("best_params", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.CheckConstraint(_STATUS_CHECK, name=op.f("ck_grid_requests_status")),
        sa.CheckConstraint("progress >= 0 AND progress <= 100", name=op.f("ck_grid_requests_progress_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_requests")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_grid_requests_idempotency_key")),
        **_OPTS,
    )
    op.create_index(op.f("ix_grid_requests_status_created_at"), "grid_requests", ["status", "created_at"])
    op.create_table(
        "backtest_runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("strategy_id", sa.Integer(), nullable=False),
        sa.Column("backtest_id", sa.Integer(), nullable=True),
        sa.Column("grid_request_id", sa.String(length=64), nullable=True),
        sa.Column("param_version", sa.Integer(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=True),
        sa.Column("data_version", sa.String(length=64), nullable=True),
        sa.Column("code_version", sa.String(length=64), nullable=True),
        sa.Column("result_hash", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.CheckConstraint(_STATUS_CHECK, name=op.f("ck_backtest_runs_status")),
        sa.ForeignKeyConstraint(
            ["backtest_id"], ["backtests.id"], name=op.f("fk_backtest_runs_backtest_id_backtests")
        ),
        sa.ForeignKeyConstraint(
            ["grid_request_id"],
            ["grid_requests.id"],
            name=op.f("fk_backtest_runs_grid_request_id_grid_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["strategy_id"], ["strategies.id"], name=op.f("fk_backtest_runs_strategy_id_strategies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtest_runs")),
        **_OPTS,
    )
    op.create_index(op.f("ix_backtest_runs_backtest_id"), "backtest_runs", ["backtest_id"])
    op.create_index(op.f("ix_backtest_runs_grid_request_id"), "backtest_runs", ["grid_request_id"])
    op.create_index(op.f("ix_backtest_runs_status"), "backtest_runs", ["status"])
    op.create_index(
        op.f("ix_backtest_runs_strategy_id_created_at"), "backtest_runs", ["strategy_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("backtest_runs")
    op.drop_table("grid_requests")
    op.drop_table("backtests")
    op.drop_table("strategy_params")
    op.drop_table("strategies")
    op.drop_table("accounts")
