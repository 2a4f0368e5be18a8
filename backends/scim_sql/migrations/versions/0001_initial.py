"""The initial tables of the sql backend: users, groups, memberships and tenant state.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _prefix() -> str:
    """The table prefix (``SCIM_TABLE_PREFIX``) env.py hands the revisions; ``scim_`` by default."""
    return str(context.config.attributes.get("table_prefix") or "scim_")


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts() -> sa.types.TypeEngine:
    # Frozen copy of scim_sql.tables.UtcDateTime's storage type (a migration must not import live code).
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the four tables and their indexes."""
    op.create_table(
        f"{_prefix()}users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(512), nullable=False),
        sa.Column("user_name_lower", sa.String(512), nullable=False),
        sa.Column("primary_email_lower", sa.String(512), nullable=True),
        sa.Column("external_id", sa.String(512), nullable=True),
        sa.Column("display_name", sa.String(512), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.Column("created", _ts(), nullable=False),
        sa.Column("last_modified", _ts(), nullable=False),
        sa.Column("deactivated_at", _ts(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index(
        f"ux_{_prefix()}users_tenant_user_name", f"{_prefix()}users", ["tenant_id", "user_name_lower"], unique=True
    )
    op.create_index(f"ix_{_prefix()}users_tenant_email", f"{_prefix()}users", ["tenant_id", "primary_email_lower"])
    op.create_index(f"ix_{_prefix()}users_tenant_external_id", f"{_prefix()}users", ["tenant_id", "external_id"])
    op.create_index(f"ix_{_prefix()}users_tenant_display_name", f"{_prefix()}users", ["tenant_id", "display_name"])
    op.create_index(f"ix_{_prefix()}users_tenant_last_modified", f"{_prefix()}users", ["tenant_id", "last_modified"])

    op.create_table(
        f"{_prefix()}groups",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(512), nullable=True),
        sa.Column("external_id", sa.String(512), nullable=True),
        sa.Column("data", _json(), nullable=False),
        sa.Column("created", _ts(), nullable=False),
        sa.Column("last_modified", _ts(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index(f"ix_{_prefix()}groups_tenant_display_name", f"{_prefix()}groups", ["tenant_id", "display_name"])
    op.create_index(f"ix_{_prefix()}groups_tenant_external_id", f"{_prefix()}groups", ["tenant_id", "external_id"])

    op.create_table(
        f"{_prefix()}group_members",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column(
            "group_id",
            sa.String(36),
            sa.ForeignKey(f"{_prefix()}groups.id", ondelete="CASCADE", name=f"fk_{_prefix()}group_members_group"),
            primary_key=True,
        ),
        sa.Column("member_id", sa.String(36), primary_key=True),
        sa.Column("member_type", sa.String(16), nullable=False),
        sa.Column("display", sa.String(512), nullable=True),
    )
    op.create_index(
        f"ix_{_prefix()}group_members_tenant_member", f"{_prefix()}group_members", ["tenant_id", "member_id"]
    )

    op.create_table(
        f"{_prefix()}tenant_state",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
    )


def downgrade() -> None:
    """Drop everything this revision created."""
    op.drop_table(f"{_prefix()}tenant_state")
    op.drop_table(f"{_prefix()}group_members")
    op.drop_table(f"{_prefix()}groups")
    op.drop_table(f"{_prefix()}users")
