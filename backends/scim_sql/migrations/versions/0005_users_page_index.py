"""An index on ``scim_users`` (tenant, deleted, id): the plain list of a tenant's users (every IdP's
full sync pages through it) and its exact total.

Without it, ``count(*) ... WHERE tenant_id = ? AND deleted = false`` read every row of the tenant
(the documents included), and a page ordered by id sorted all of them to keep 100; with it the count
reads the index only and a page reads its own rows in index order (docs/performance.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_scim_users_tenant_deleted_id", "scim_users", ["tenant_id", "deleted", "id"])


def downgrade() -> None:
    op.drop_index("ix_scim_users_tenant_deleted_id", table_name="scim_users")
