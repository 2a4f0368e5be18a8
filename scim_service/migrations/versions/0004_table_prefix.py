"""Prefix the service's tables with ``scim_`` (or the ``SCIM_TABLE_PREFIX`` chosen): scim_organizations,
scim_tokens, scim_provisioning_log, scim_auth_failures, so they can live in a host application's own
database beside its tables (a host often has an ``organizations`` or ``tokens`` table of its own).
The prefix comes from env.py in ``context.config.attributes["table_prefix"]``.

The tables are created under their new names, the rows copied, and the old tables dropped, in one
transaction on PostgreSQL (SQLite's ALTER TABLE RENAME would keep the old names inside the indexes and
constraints). The ``sql`` backend's tables already carry the prefix.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

# In the order they are created and copied (tokens refer to organizations).
TABLES = ("organizations", "tokens", "provisioning_log", "auth_failures")


def _create(p: str) -> None:
    """Create the four tables as revision 0003 left them, named with prefix ``p`` ("" or the table prefix)."""
    org, tok, log, fail = (p + name for name in TABLES)
    op.create_table(
        org,
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("max_seats", sa.Integer, nullable=True),
        sa.Column("seat_policy", sa.String(16), nullable=False),
        sa.Column("match_policy", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("profile", sa.String(16), nullable=False, server_default="auto"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{org}"),
        sa.UniqueConstraint("name", name=f"uq_{org}_name"),
        sa.CheckConstraint("seat_policy IN ('all', 'active')", name=f"ck_{org}_seat_policy"),
        sa.CheckConstraint("match_policy IN ('email', 'username')", name=f"ck_{org}_match_policy"),
        sa.CheckConstraint("max_seats IS NULL OR max_seats >= 0", name=f"ck_{org}_max_seats"),
    )
    op.create_table(
        tok,
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("description", sa.String(255), nullable=True),
        sa.Column("prefix", sa.String(16), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaced_by", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=f"pk_{tok}"),
        sa.UniqueConstraint("token_hash", name=f"uq_{tok}_token_hash"),
        sa.ForeignKeyConstraint(["org_id"], [f"{org}.id"], name=f"fk_{tok}_org_id_{org}", ondelete="CASCADE"),
    )
    op.create_index(f"ix_{tok}_org_id", tok, ["org_id"])
    op.create_index(f"ix_{tok}_prefix", tok, ["prefix"])
    op.create_table(
        log,
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
        sa.Column("tolerances", sa.Text, nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("user_name", sa.String(255), nullable=True),
        sa.Column("repeat_count", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=f"pk_{log}"),
    )
    op.create_index(f"ix_{log}_org_id_at", log, ["org_id", "at"])
    op.create_index(f"ix_{log}_at", log, ["at"])
    op.create_index(f"ix_{log}_request_id", log, ["request_id"])
    op.create_table(
        fail,
        sa.Column("client", sa.String(255), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("log_id", sa.Integer, nullable=True),
        sa.Column("log_key", sa.String(64), nullable=True),
        sa.Column("limited_log_id", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("client", name=f"pk_{fail}"),
    )
    op.create_index(f"ix_{fail}_window_start", fail, ["window_start"])


def _move(src: str, dst: str) -> None:
    """Copy every row of the tables prefixed ``src`` into those prefixed ``dst``, then drop the former."""
    bind = op.get_bind()
    for name in TABLES:
        columns = [c["name"] for c in sa.inspect(bind).get_columns(src + name)]
        listed = ", ".join(f'"{c}"' for c in columns)
        op.execute(f'INSERT INTO "{dst}{name}" ({listed}) SELECT {listed} FROM "{src}{name}"')
    if bind.dialect.name == "postgresql":
        # The copied ids came with the rows: the new table's sequence continues after them.
        log = f"{dst}provisioning_log"
        op.execute(
            f"SELECT setval(pg_get_serial_sequence('{log}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM \"{log}\""
        )
    for name in reversed(TABLES):
        op.drop_table(src + name)  # their indexes go with them


def _prefix() -> str:
    return str(context.config.attributes.get("table_prefix") or "scim_")


def upgrade() -> None:
    """Create the prefixed tables, copy the rows, drop the unprefixed tables."""
    _create(_prefix())
    _move("", _prefix())


def downgrade() -> None:
    """Back to the unprefixed names of revision 0003."""
    _create("")
    _move(_prefix(), "")
