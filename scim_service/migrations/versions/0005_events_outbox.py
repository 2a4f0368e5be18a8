"""The change-event outbox ``scim_events``: each change event is written here after the backend stored
the change, then delivered to the hook implementations; undelivered events are retried in order. The
table is named with the table prefix (``SCIM_TABLE_PREFIX``) env.py hands the revisions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def _prefix() -> str:
    """The table prefix (``SCIM_TABLE_PREFIX``) env.py hands the revisions; ``scim_`` by default."""
    return str(context.config.attributes.get("table_prefix") or "scim_")


def upgrade() -> None:
    """Create the outbox table and its indexes."""
    table = f"{_prefix()}events"
    op.create_table(
        table,
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_id", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.Column("delivered_to", sa.Text, nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    )
    op.create_index(f"ix_{table}_delivered_at_id", table, ["delivered_at", "id"])
    op.create_index(
        f"ix_{table}_org_id_resource_type_resource_id_id", table, ["org_id", "resource_type", "resource_id", "id"]
    )
    op.create_index(f"ix_{table}_created", table, ["created"])


def downgrade() -> None:
    """Drop the outbox (undelivered events are lost with it)."""
    op.drop_table(f"{_prefix()}events")  # its indexes go with it
