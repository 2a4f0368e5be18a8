"""The service tables: organizations, tokens and the provisioning log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    """Create the three tables and their indexes."""
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("max_seats", sa.Integer, nullable=True),
        sa.Column("seat_policy", sa.String(16), nullable=False),
        sa.Column("match_policy", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
        sa.UniqueConstraint("name", name="uq_organizations_name"),
        sa.CheckConstraint("seat_policy IN ('all', 'active')", name="ck_organizations_seat_policy"),
        sa.CheckConstraint("match_policy IN ('email', 'username')", name="ck_organizations_match_policy"),
        sa.CheckConstraint("max_seats IS NULL OR max_seats >= 0", name="ck_organizations_max_seats"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("description", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name="fk_tokens_org_id_organizations", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_tokens_org_id", "tokens", ["org_id"])
    op.create_table(
        "provisioning_log",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=True),
        sa.Column("token_id", sa.String(32), nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.String(2048), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=True),
        sa.Column("resource_id", sa.String(255), nullable=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("scim_type", sa.String(32), nullable=True),
        sa.Column("detail", sa.String(2000), nullable=True),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("client", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_provisioning_log"),
    )
    op.create_index("ix_provisioning_log_org_id_at", "provisioning_log", ["org_id", "at"])
    op.create_index("ix_provisioning_log_at", "provisioning_log", ["at"])


def downgrade() -> None:
    """Drop the three tables."""
    op.drop_index("ix_provisioning_log_at", table_name="provisioning_log")
    op.drop_index("ix_provisioning_log_org_id_at", table_name="provisioning_log")
    op.drop_table("provisioning_log")
    op.drop_index("ix_tokens_org_id", table_name="tokens")
    op.drop_table("tokens")
    op.drop_table("organizations")
