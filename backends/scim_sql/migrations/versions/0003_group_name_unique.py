"""A group's displayName is unique per tenant, case-insensitively: ``scim_groups.display_name_key``
holds ``display_name.lower()`` and a unique index on (tenant, key) refuses a second group of that name
even when two writers race.

The keys are derived in Python with ``str.lower()``, exactly as the backend does on every write (SQL
``lower()`` folds only ASCII on SQLite). Groups written before this revision may already share a name:
then the upgrade stops before creating the index, names the tenants and groups, and changes nothing
(the transaction is rolled back); rename or delete the duplicates and run it again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import context, op
from alembic.util import CommandError

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _prefix() -> str:
    """The table prefix (``SCIM_TABLE_PREFIX``) env.py hands the revisions; ``scim_`` by default."""
    return str(context.config.attributes.get("table_prefix") or "scim_")


BATCH = 2000
NAME_MAX = 512


def _backfill(conn: sa.Connection) -> None:
    groups = sa.table(
        f"{_prefix()}groups",
        sa.column("id", sa.String(36)),
        sa.column("tenant_id", sa.String(64)),
        sa.column("display_name", sa.String(NAME_MAX)),
        sa.column("display_name_key", sa.String(NAME_MAX)),
    )
    seen: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    last: str | None = None
    while True:
        stmt = sa.select(groups.c.id, groups.c.tenant_id, groups.c.display_name).order_by(groups.c.id).limit(BATCH)
        if last is not None:
            stmt = stmt.where(groups.c.id > last)
        batch = conn.execute(stmt).all()
        if not batch:
            break
        rows = []
        for group in batch:
            if group.display_name is None:
                continue
            key = group.display_name.lower()
            seen[(group.tenant_id, key)].append((group.id, group.display_name))
            rows.append({"gid": group.id, "key": key})
        if rows:
            conn.execute(
                groups.update().where(groups.c.id == sa.bindparam("gid")).values(display_name_key=sa.bindparam("key")),
                rows,
            )
        last = batch[-1].id
    duplicates = {k: v for k, v in seen.items() if len(v) > 1}
    if duplicates:
        named = [
            f"tenant {tenant}: " + ", ".join(f"{name!r} (id {gid})" for gid, name in holders)
            for (tenant, _key), holders in sorted(duplicates.items())[:20]
        ]
        more = f"; and {len(duplicates) - 20} more" if len(duplicates) > 20 else ""
        # One line: the command line shows it as its error.
        raise CommandError(
            "cannot make group displayNames unique, these groups share a name (compared case-insensitively): "
            + "; ".join(named)
            + more
            + ". Rename or delete all but one of each, then run `scim-service db upgrade` again; nothing was changed."
        )


def upgrade() -> None:
    """Add ``display_name_key``, fill it, and index it uniquely per tenant."""
    op.add_column(f"{_prefix()}groups", sa.Column("display_name_key", sa.String(NAME_MAX), nullable=True))
    _backfill(op.get_bind())
    op.create_index(
        f"uq_{_prefix()}groups_tenant_display_name_key",
        f"{_prefix()}groups",
        ["tenant_id", "display_name_key"],
        unique=True,
    )


def downgrade() -> None:
    """Drop the index and the column (groups may share names again)."""
    op.drop_index(f"uq_{_prefix()}groups_tenant_display_name_key", table_name=f"{_prefix()}groups")
    # A plain DROP COLUMN (SQLite 3.35+ and PostgreSQL): a batch copy of scim_groups would drop the table,
    # and with SQLite's foreign keys on that cascades into scim_group_members.
    op.execute(f'ALTER TABLE "{_prefix()}groups" DROP COLUMN display_name_key')
