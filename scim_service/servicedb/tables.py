"""The service's own tables: organizations, bearer tokens and the provisioning log.

They live in the service database (``SCIM_DATABASE_URL``) whatever backend stores users and groups,
and are created and upgraded by the alembic environment in :mod:`scim_service.migrations` (this
metadata is what its migrations must produce; a test compares the two). Times are stored in UTC.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

# Explicit constraint names so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

ORG_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
"""An organization name: 1 to 64 characters of letters, digits, dot, underscore and hyphen."""

# Column lengths of the log; :meth:`ServiceStore.record` truncates to them (PostgreSQL enforces them).
LOG_PATH_MAX = 2048
LOG_DETAIL_MAX = 2000
LOG_USER_AGENT_MAX = 512
LOG_CLIENT_MAX = 255
PROFILE_MAX = 16  # an IdP profile name (scim_service.profiles), or "auto"

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("max_seats", sa.Integer, nullable=True),
    sa.Column("seat_policy", sa.String(16), nullable=False, default="all"),
    sa.Column("match_policy", sa.String(16), nullable=False, default="email"),
    # The IdP profile (scim_service.profiles) or "auto"; checked by the store, not by a constraint, so a
    # new profile needs no migration.
    sa.Column("profile", sa.String(PROFILE_MAX), nullable=False, default="auto", server_default="auto"),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("seat_policy IN ('all', 'active')", name="seat_policy"),
    sa.CheckConstraint("match_policy IN ('email', 'username')", name="match_policy"),
    sa.CheckConstraint("max_seats IS NULL OR max_seats >= 0", name="max_seats"),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "org_id",
        sa.String(36),
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("description", sa.String(255), nullable=True),
)

# No foreign keys on the log: writing a log line must never fail because of what it refers to.
provisioning_log = sa.Table(
    "provisioning_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("org_id", sa.String(36), nullable=True),
    sa.Column("token_id", sa.String(32), nullable=True),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("path", sa.String(LOG_PATH_MAX), nullable=False),
    sa.Column("resource_type", sa.String(32), nullable=True),
    sa.Column("resource_id", sa.String(255), nullable=True),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("scim_type", sa.String(32), nullable=True),
    sa.Column("detail", sa.String(LOG_DETAIL_MAX), nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=False, default=0.0),
    sa.Column("user_agent", sa.String(LOG_USER_AGENT_MAX), nullable=True),
    sa.Column("client", sa.String(LOG_CLIENT_MAX), nullable=True),
    # The IdP profile's tolerances that the request needed ("entra: capitalised_ops, string_booleans").
    sa.Column("tolerances", sa.Text, nullable=True),
    sa.Index("ix_provisioning_log_org_id_at", "org_id", "at"),
    sa.Index("ix_provisioning_log_at", "at"),
)
