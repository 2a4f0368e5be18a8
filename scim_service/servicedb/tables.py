"""The service's own tables: organizations, bearer tokens, the provisioning log and the failed-login counter.

Every name starts with ``SCIM_TABLE_PREFIX`` (``scim_`` by default; revision 0004), so the tables can share a
host application's database: :func:`tables_for` builds them for a prefix.

They live in the service database (``SCIM_DATABASE_URL``) whatever backend stores users and groups,
and are created and upgraded by the alembic environment in :mod:`scim_service.migrations` (this
metadata is what its migrations must produce; a test compares the two). Times are stored in UTC.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import sqlalchemy as sa

from scim_service.servicedb.hostdb import TABLE_PREFIX, check_table_prefix

# Explicit constraint names so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ORG_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
"""An organization name: 1 to 64 characters of letters, digits, dot, underscore and hyphen."""

# Column lengths of the log; :meth:`ServiceStore.record` truncates to them (PostgreSQL enforces them).
LOG_PATH_MAX = 2048
LOG_DETAIL_MAX = 2000
LOG_USER_AGENT_MAX = 512
LOG_CLIENT_MAX = 255
LOG_REQUEST_ID_MAX = 64
TOKEN_PREFIX_MAX = 16
PROFILE_MAX = 16  # an IdP profile name (scim_service.profiles), or "auto"
EVENT_NAME_MAX = 64
EVENT_ERROR_MAX = 1000


@dataclass(frozen=True)
class ServiceTables:
    """The service's tables named with one prefix (``SCIM_TABLE_PREFIX``), in their own metadata.

    The one place that names them: a new table is added to :func:`_build` and to these fields, and the
    store, the migrations and a host's ``include_object`` follow the prefix.
    """

    prefix: str
    metadata: sa.MetaData
    organizations: sa.Table
    tokens: sa.Table
    provisioning_log: sa.Table
    auth_failures: sa.Table
    events: sa.Table

    @property
    def version_table(self) -> str:
        """The alembic version table of the service's migrations (``scim_service_alembic_version``)."""
        return f"{self.prefix}service_alembic_version"


def tables_for(prefix: str = TABLE_PREFIX) -> ServiceTables:
    """The service's tables under ``prefix``: built once per prefix, so every app of a process that uses
    the same prefix shares the same Table objects (and SQLAlchemy's statement cache)."""
    return _cached(check_table_prefix(prefix))


@functools.cache  # keyed on the prefix itself, so tables_for() and tables_for("scim_") are the same objects
def _cached(prefix: str) -> ServiceTables:
    return _build(prefix)


def _build(prefix: str) -> ServiceTables:
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    organizations = sa.Table(
        f"{prefix}organizations",
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
        f"{prefix}tokens",
        metadata,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "org_id",
            sa.String(36),
            sa.ForeignKey(f"{prefix}organizations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("description", sa.String(255), nullable=True),
        # The token's first characters ("scim_" and 8 random ones): not secret, shown so people can tell
        # tokens apart. None for tokens made before revision 0003.
        sa.Column("prefix", sa.String(TOKEN_PREFIX_MAX), nullable=True, index=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),  # None: never expires
        # Set by `tokens rotate`: the token that replaces this one (whose revoked_at is then the end of the grace).
        sa.Column("replaced_by", sa.String(32), nullable=True),
    )

    # No foreign keys on the log: writing a log line must never fail because of what it refers to.
    provisioning_log = sa.Table(
        f"{prefix}provisioning_log",
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
        # The request id (X-Request-Id), also on the service's log line of the request.
        sa.Column("request_id", sa.String(LOG_REQUEST_ID_MAX), nullable=True, index=True),
        # The userName the request was about (from its body or its answer), for `scim-service log --user`.
        sa.Column("user_name", sa.String(255), nullable=True),
        # Failed authentications from one address within a window share one entry: how many there were,
        # and when the last one came (``at`` is the first).
        sa.Column("repeat_count", sa.Integer, nullable=False, default=1, server_default=sa.text("1")),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index(f"ix_{prefix}provisioning_log_org_id_at", "org_id", "at"),
        sa.Index(f"ix_{prefix}provisioning_log_at", "at"),
    )

    # Failed authentications per client address in the current window: the rate limit's counter, shared
    # by every worker and host through the database, and the log entries the window's failures are added to.
    auth_failures = sa.Table(
        f"{prefix}auth_failures",
        metadata,
        sa.Column("client", sa.String(LOG_CLIENT_MAX), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("log_id", sa.Integer, nullable=True),  # the entry that counts this window's 401s
        sa.Column("log_key", sa.String(64), nullable=True),  # what that entry is about (status, token, detail)
        sa.Column("limited_log_id", sa.Integer, nullable=True),  # the entry that counts this window's 429s
    )

    # The change-event outbox (revision 0005): every change event, in the order it happened (``id``), kept
    # until delivered to every hook implementation and then for the retention. No foreign keys: writing an
    # event must not fail because of what it refers to, and an event outlives nothing it names.
    events = sa.Table(
        f"{prefix}events",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("org_id", sa.String(36), nullable=False),
        sa.Column("event", sa.String(EVENT_NAME_MAX), nullable=False),  # the hook's name: scim_user_created, ...
        sa.Column("resource_type", sa.String(32), nullable=False),  # User or Group
        sa.Column("resource_id", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),  # the hook's arguments as JSON (scim_service.outbox)
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),  # every implementation succeeded
        sa.Column("attempts", sa.Integer, nullable=False, default=0, server_default=sa.text("0")),
        sa.Column("last_error", sa.String(EVENT_ERROR_MAX), nullable=True),
        # The plugins whose implementation of the hook succeeded (a JSON list): a retry calls only the others.
        sa.Column("delivered_to", sa.Text, nullable=True),
        # A deliverer's claim: nobody else delivers the event before this time (a crashed one's claim expires).
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        # After a failure, the background retry waits until this time (doubling backoff).
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index(f"ix_{prefix}events_delivered_at_id", "delivered_at", "id"),
        sa.Index(
            f"ix_{prefix}events_org_id_resource_type_resource_id_id", "org_id", "resource_type", "resource_id", "id"
        ),
        sa.Index(f"ix_{prefix}events_created", "created"),
    )
    return ServiceTables(prefix, metadata, organizations, tokens, provisioning_log, auth_failures, events)


# The default prefix's tables, under the names older code and tests import.
_DEFAULT = tables_for(TABLE_PREFIX)
metadata = _DEFAULT.metadata
organizations = _DEFAULT.organizations
tokens = _DEFAULT.tokens
provisioning_log = _DEFAULT.provisioning_log
auth_failures = _DEFAULT.auth_failures
events = _DEFAULT.events
