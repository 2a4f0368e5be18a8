"""Operations: token expiry, prefix and rotation; request ids and aggregated failures in the log;
the per-address counter of failed authentications.

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    """Add the new columns (existing rows keep their values: old tokens have no prefix and never
    expire, old log entries count once) and create ``auth_failures``."""
    # Plain ADD COLUMN (SQLite supports it): a batch copy of tokens or organizations could cascade.
    op.add_column("tokens", sa.Column("prefix", sa.String(16), nullable=True))
    op.add_column("tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tokens", sa.Column("replaced_by", sa.String(32), nullable=True))
    op.create_index("ix_tokens_prefix", "tokens", ["prefix"])
    op.add_column("provisioning_log", sa.Column("request_id", sa.String(64), nullable=True))
    op.add_column("provisioning_log", sa.Column("user_name", sa.String(255), nullable=True))
    op.add_column(
        "provisioning_log", sa.Column("repeat_count", sa.Integer, nullable=False, server_default=sa.text("1"))
    )
    op.add_column("provisioning_log", sa.Column("last_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_provisioning_log_request_id", "provisioning_log", ["request_id"])
    op.create_table(
        "auth_failures",
        sa.Column("client", sa.String(255), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("log_id", sa.Integer, nullable=True),
        sa.Column("log_key", sa.String(64), nullable=True),
        sa.Column("limited_log_id", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("client", name="pk_auth_failures"),
    )
    op.create_index("ix_auth_failures_window_start", "auth_failures", ["window_start"])


def downgrade() -> None:
    """Drop what ``upgrade`` added."""
    op.drop_index("ix_auth_failures_window_start", table_name="auth_failures")
    op.drop_table("auth_failures")
    op.drop_index("ix_provisioning_log_request_id", table_name="provisioning_log")
    with op.batch_alter_table("provisioning_log") as batch:
        for column in ("last_at", "repeat_count", "user_name", "request_id"):
            batch.drop_column(column)
    op.drop_index("ix_tokens_prefix", table_name="tokens")
    with op.batch_alter_table("tokens") as batch:
        for column in ("replaced_by", "expires_at", "prefix"):
            batch.drop_column(column)
