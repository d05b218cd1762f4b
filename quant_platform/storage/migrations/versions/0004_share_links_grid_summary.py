"""Share links of runs, and the summary of a finished grid request (overfitting statistics, counts).

Revision ID: 0004
Revises: 0003

Spelled out in full (no model imports) so this revision keeps building the same schema forever.
A share link is a row so that it can be revoked; its URL carries only the link id and an HMAC.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPTS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(
        name, sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"), nullable=nullable
    )


def upgrade() -> None:
    with op.batch_alter_table("grid_requests") as batch:
        batch.add_column(sa.Column("summary", sa.JSON(), nullable=True))
    op.create_table(
        "share_links",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["backtest_runs.id"],
            name=op.f("fk_share_links_run_id_backtest_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_share_links_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_links")),
        **_OPTS,
    )
    op.create_index(op.f("ix_share_links_run_id"), "share_links", ["run_id"])
    op.create_index(op.f("ix_share_links_user_id"), "share_links", ["user_id"])


def downgrade() -> None:
    op.drop_table("share_links")
    with op.batch_alter_table("grid_requests") as batch:
        batch.drop_column("summary")
