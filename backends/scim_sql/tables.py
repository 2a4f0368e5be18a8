"""The tables of the ``sql`` backend (SQLAlchemy Core), shared by the queries and the tests.

The schema itself is created by the backend's own alembic migrations (``scim_sql/migrations``);
these definitions must stay equal to what the migrations build (a test compares them).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from scim_service.query.evaluator import get_ci
from scim_service.rules import comparison_key
from scim_service.servicedb.hostdb import TABLE_PREFIX, check_table_prefix

EMAIL_MAX = 512  # characters of a lower-cased email value the side table keeps


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp that sorts and compares correctly on SQLite and PostgreSQL.

    PostgreSQL stores ``timestamptz``. SQLite has no timestamp type: SQLAlchemy stores a fixed-width
    ``YYYY-MM-DD HH:MM:SS.ffffff`` string there, which sorts like the instant only when every value is
    in the same zone, so values are converted to naive UTC before they are written.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC (naive on SQLite); a naive input is taken as UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Always hand back an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> sa.types.TypeEngine[Any]:
    """JSON on SQLite (text with the JSON1 functions), JSONB on PostgreSQL."""
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


@dataclass(frozen=True)
class SqlTables:
    """The backend's tables named with one prefix (``SCIM_TABLE_PREFIX``), in their own metadata.

    The one place that names them: the backend, its filter compiler and its migrations follow the prefix.
    """

    prefix: str
    metadata: sa.MetaData
    users: sa.Table
    groups: sa.Table
    group_members: sa.Table
    tenant_state: sa.Table
    user_emails: sa.Table

    @property
    def version_table(self) -> str:
        """The alembic version table of the backend's migrations (``scim_sql_alembic_version``)."""
        return f"{self.prefix}sql_alembic_version"


def tables_for(prefix: str = TABLE_PREFIX) -> SqlTables:
    """The backend's tables under ``prefix``, built once per prefix (every backend of a process with the
    same prefix shares the Table objects and SQLAlchemy's statement cache)."""
    return _cached(check_table_prefix(prefix))


@functools.cache  # keyed on the prefix itself, so tables_for() and tables_for("scim_") are the same objects
def _cached(prefix: str) -> SqlTables:
    return _build(prefix)


def _build(prefix: str) -> SqlTables:
    metadata = sa.MetaData()
    users = sa.Table(
        f"{prefix}users",
        metadata,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(512), nullable=False),
        sa.Column("user_name_lower", sa.String(512), nullable=False),
        sa.Column("primary_email_lower", sa.String(512), nullable=True),
        sa.Column("external_id", sa.String(512), nullable=True),
        sa.Column("display_name", sa.String(512), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("data", json_type(), nullable=False),
        sa.Column("created", UtcDateTime(), nullable=False),
        sa.Column("last_modified", UtcDateTime(), nullable=False),
        sa.Column("deactivated_at", UtcDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Index(f"ux_{prefix}users_tenant_user_name", "tenant_id", "user_name_lower", unique=True),
        sa.Index(f"ix_{prefix}users_tenant_email", "tenant_id", "primary_email_lower"),
        sa.Index(f"ix_{prefix}users_tenant_external_id", "tenant_id", "external_id"),
        sa.Index(f"ix_{prefix}users_tenant_display_name", "tenant_id", "display_name"),
        sa.Index(f"ix_{prefix}users_tenant_last_modified", "tenant_id", "last_modified"),
        # A tenant's plain list and its total: the count reads the index alone, a page its rows in id
        # order (revision 0005).
        sa.Index(f"ix_{prefix}users_tenant_deleted_id", "tenant_id", "deleted", "id"),
    )

    groups = sa.Table(
        f"{prefix}groups",
        metadata,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(512), nullable=True),
        sa.Column("external_id", sa.String(512), nullable=True),
        sa.Column("data", json_type(), nullable=False),
        sa.Column("created", UtcDateTime(), nullable=False),
        sa.Column("last_modified", UtcDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        # rules.group_name_key(display_name): the unique index makes a group's name unique per tenant,
        # by its comparison key, even when two writers race (revisions 0003 and 0004).
        sa.Column("display_name_key", sa.String(512), nullable=True),
        sa.Index(f"ix_{prefix}groups_tenant_display_name", "tenant_id", "display_name"),
        sa.Index(f"uq_{prefix}groups_tenant_display_name_key", "tenant_id", "display_name_key", unique=True),
        sa.Index(f"ix_{prefix}groups_tenant_external_id", "tenant_id", "external_id"),
    )

    group_members = sa.Table(
        f"{prefix}group_members",
        metadata,
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column(
            "group_id",
            sa.String(36),
            sa.ForeignKey(f"{prefix}groups.id", ondelete="CASCADE", name=f"fk_{prefix}group_members_group"),
            primary_key=True,
        ),
        sa.Column("member_id", sa.String(36), primary_key=True),
        sa.Column("member_type", sa.String(16), nullable=False),
        sa.Column("display", sa.String(512), nullable=True),
        sa.Index(f"ix_{prefix}group_members_tenant_member", "tenant_id", "member_id"),
    )

    # One row per tenant that has written users: the row a seat or email check locks on PostgreSQL.
    tenant_state = sa.Table(
        f"{prefix}tenant_state",
        metadata,
        sa.Column("tenant_id", sa.String(64), primary_key=True),
    )

    # One row per string ``value`` of a user's ``emails`` elements, lower-cased with ``str.lower()`` and cut
    # to EMAIL_MAX characters (``value_lower``: the index behind ``emails.value sw``), and its comparison key
    # (``value_key``, rules.comparison_key, cut the same way: the index behind ``eq``; revision 0004). Kept in
    # step with the document by every user write (see ``email_values``); the rows of a soft-deleted user stay (the user
    # rows' ``deleted`` flag hides it from every filter). On PostgreSQL the column sorts in the ``C``
    # collation (code point order), so a prefix becomes an index range that means the same as in Python.
    user_emails = sa.Table(
        f"{prefix}user_emails",
        metadata,
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey(f"{prefix}users.id", ondelete="CASCADE", name=f"fk_{prefix}user_emails_user"),
            primary_key=True,
        ),
        sa.Column("ordinal", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column(
            "value_lower",
            sa.String(EMAIL_MAX).with_variant(sa.String(EMAIL_MAX, collation="C"), "postgresql"),
            nullable=False,
        ),
        # Nullable only because revision 0004 adds it to filled tables; every write sets it.
        sa.Column("value_key", sa.String(EMAIL_MAX), nullable=True),
        sa.Index(f"ix_{prefix}user_emails_tenant_value", "tenant_id", "value_lower", "user_id"),
        sa.Index(f"ix_{prefix}user_emails_tenant_key", "tenant_id", "value_key", "user_id"),
    )
    return SqlTables(prefix, metadata, users, groups, group_members, tenant_state, user_emails)


# The default prefix's tables, under the names older code and tests import.
_DEFAULT = tables_for(TABLE_PREFIX)
metadata = _DEFAULT.metadata
users = _DEFAULT.users
groups = _DEFAULT.groups
group_members = _DEFAULT.group_members
tenant_state = _DEFAULT.tenant_state
user_emails = _DEFAULT.user_emails


def email_values(data: Mapping[str, Any]) -> list[tuple[int, str, str]]:
    """The side-table rows of a user document: (position of the element, lower-cased value, comparison
    key), the two texts cut to EMAIL_MAX.

    Exactly the values the reference evaluator reaches through ``emails.value`` and through
    ``emails[value ...]``: ``emails`` is a list (or a single complex value), and every element that is
    an object with a string ``value`` (keys compared case-insensitively) contributes it, ``""`` included.
    """
    top = get_ci(data, "emails")
    elements = top if isinstance(top, list | tuple) else [top]
    out: list[tuple[int, str, str]] = []
    for position, element in enumerate(elements):
        if isinstance(element, Mapping):
            value = get_ci(element, "value")
            if isinstance(value, str):
                out.append((position, value.lower()[:EMAIL_MAX], comparison_key(value)[:EMAIL_MAX]))
    return out


def email_rows(tenant_id: str, user_id: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``scim_user_emails`` rows of one user, ready for an insert."""
    return [
        {"user_id": user_id, "ordinal": position, "tenant_id": tenant_id, "value_lower": value, "value_key": key}
        for position, value, key in email_values(data)
    ]
