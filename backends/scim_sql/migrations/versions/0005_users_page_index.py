"""An index on ``scim_users`` (``<prefix>users``) (tenant, deleted, id): the plain list of a tenant's users (every IdP's
full sync pages through it) and its exact total.

Without it, ``count(*) ... WHERE tenant_id = ? AND deleted = false`` read every row of the tenant
(the documents included), and a page ordered by id sorted all of them to keep 100; with it the count
reads the index only and a page reads its own rows in index order (docs/performance.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import context, op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _prefix() -> str:
    """The table prefix (``SCIM_TABLE_PREFIX``) env.py hands the revisions; ``scim_`` by default."""
    return str(context.config.attributes.get("table_prefix") or "scim_")


def upgrade() -> None:
    op.create_index(f"ix_{_prefix()}users_tenant_deleted_id", f"{_prefix()}users", ["tenant_id", "deleted", "id"])


def downgrade() -> None:
    op.drop_index(f"ix_{_prefix()}users_tenant_deleted_id", table_name=f"{_prefix()}users")
