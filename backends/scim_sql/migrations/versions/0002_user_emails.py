"""An indexed side table of the users' email values, filled from the documents already stored.

``scim_user_emails`` holds one row per string ``value`` of a user's ``emails`` elements, lower-cased
and cut to 512 characters, with an index on (tenant, value, user): ``emails.value eq`` and ``sw``
filters use it instead of reading every user's JSON document.

The backfill reads the users in batches in primary-key order (keyset, so each batch is one index
range) and inserts each batch's rows with one executemany. The values are derived in Python with
``str.lower()``, exactly as the backend does on every write: SQL ``lower()`` folds only ASCII on
SQLite and follows the database collation on PostgreSQL, and a row derived differently would make the
index disagree with the documents.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-15
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _prefix() -> str:
    """The table prefix (``SCIM_TABLE_PREFIX``) env.py hands the revisions; ``scim_`` by default."""
    return str(context.config.attributes.get("table_prefix") or "scim_")


EMAIL_MAX = 512
BATCH = 2000  # users read per batch: bounded memory, few round trips


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _value_type() -> sa.types.TypeEngine[Any]:
    # C collation on PostgreSQL: code point order, so a prefix is an index range (see scim_sql.tables).
    return sa.String(EMAIL_MAX).with_variant(sa.String(EMAIL_MAX, collation="C"), "postgresql")


# Frozen copies of the live code (a migration must not import it): scim_sql.tables.email_values and
# scim_service.query.evaluator.get_ci as of this revision.
def _get_ci(mapping: Mapping[str, Any], key: str) -> Any:
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def _email_values(data: Any) -> list[tuple[int, str]]:
    if not isinstance(data, Mapping):
        return []
    top = _get_ci(data, "emails")
    elements = top if isinstance(top, list | tuple) else [top]
    out: list[tuple[int, str]] = []
    for position, element in enumerate(elements):
        if isinstance(element, Mapping):
            value = _get_ci(element, "value")
            if isinstance(value, str):
                out.append((position, value.lower()[:EMAIL_MAX]))
    return out


def _backfill(conn: sa.Connection) -> None:
    users = sa.table(
        f"{_prefix()}users",
        sa.column("id", sa.String(36)),
        sa.column("tenant_id", sa.String(64)),
        sa.column("data", _json()),
    )
    emails = sa.table(
        f"{_prefix()}user_emails",
        sa.column("user_id", sa.String(36)),
        sa.column("ordinal", sa.Integer()),
        sa.column("tenant_id", sa.String(64)),
        sa.column("value_lower", _value_type()),
    )
    last: str | None = None
    while True:
        stmt = sa.select(users.c.id, users.c.tenant_id, users.c.data).order_by(users.c.id).limit(BATCH)
        if last is not None:
            stmt = stmt.where(users.c.id > last)
        batch = conn.execute(stmt).all()
        if not batch:
            return
        rows = [
            {"user_id": user.id, "ordinal": position, "tenant_id": user.tenant_id, "value_lower": value}
            for user in batch
            for position, value in _email_values(user.data)
        ]
        if rows:
            conn.execute(emails.insert(), rows)
        last = batch[-1].id


def upgrade() -> None:
    """Create ``scim_user_emails`` and its index, then fill it from every stored user."""
    op.create_table(
        f"{_prefix()}user_emails",
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey(f"{_prefix()}users.id", ondelete="CASCADE", name=f"fk_{_prefix()}user_emails_user"),
            primary_key=True,
        ),
        sa.Column("ordinal", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("value_lower", _value_type(), nullable=False),
    )
    _backfill(op.get_bind())
    # After the rows: one index build is faster than maintaining the index row by row.
    op.create_index(
        f"ix_{_prefix()}user_emails_tenant_value", f"{_prefix()}user_emails", ["tenant_id", "value_lower", "user_id"]
    )


def downgrade() -> None:
    """Drop the side table (the documents still hold every email)."""
    op.drop_index(f"ix_{_prefix()}user_emails_tenant_value", table_name=f"{_prefix()}user_emails")
    op.drop_table(f"{_prefix()}user_emails")
