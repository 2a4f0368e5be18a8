"""IdP profiles: organizations.profile and the tolerances of each provisioning log entry.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    """Add organizations.profile (existing organizations get ``auto``) and provisioning_log.tolerances."""
    # A plain ADD COLUMN (SQLite supports it): a batch copy of organizations could cascade into tokens.
    op.add_column("organizations", sa.Column("profile", sa.String(16), nullable=False, server_default="auto"))
    op.add_column("provisioning_log", sa.Column("tolerances", sa.Text, nullable=True))


def downgrade() -> None:
    """Drop the two columns."""
    with op.batch_alter_table("provisioning_log") as batch:
        batch.drop_column("tolerances")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("profile")
