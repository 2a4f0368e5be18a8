"""Names are compared by their Unicode comparison key (docs/rules.md), not by ``str.lower()``.

Recomputes, in Python, every key the backend compares names by: ``scim_users.user_name_lower`` (the
unique index per tenant), ``scim_users.primary_email_lower``, ``scim_groups.display_name_key`` (the
unique index per tenant), and adds ``scim_user_emails.value_key`` (indexed; ``value_lower`` stays
``str.lower()`` for ``sw``). The key is NFKC, casefold, NFKC again, then U+200B, U+2060 and U+FEFF
removed everywhere and whitespace and zero-width characters removed at both ends (a frozen copy of
``scim_service.rules.comparison_key`` below: a migration must not import live code).

Two users of a tenant whose userNames were different under ``lower()`` may share a key (``café`` in
NFC and NFD, ``bob`` and ``bob\\u00a0``, fullwidth ``bob``), and so may two groups' displayNames.
The upgrade reads everything first and then stops with one line naming the colliding values, before
changing anything; rename or delete all but one of each and run it again. Primary emails never stop it
(they are not unique in the database: a tenant matching by userName only may share them).

Rows are read in batches in primary-key order. The unique indexes are dropped while the keys are
rewritten and built again after (a row's new key may equal another row's old key mid-way).

The downgrade recomputes every key with ``str.lower()`` and drops ``value_key``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from alembic.util import CommandError
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _prefix() -> str:
    """The table prefix (``SCIM_TABLE_PREFIX``) env.py hands the revisions; ``scim_`` by default."""
    return str(context.config.attributes.get("table_prefix") or "scim_")


BATCH = 2000
TEXT_MAX = 512
EMAIL_MAX = 512
SHOWN = 20  # collisions named in the error line

# -- frozen copies of the live rules as of this revision --------------------------------------------

_REMOVED_ANYWHERE = str.maketrans(dict.fromkeys("\u200b\u2060\ufeff"))
_EDGES = re.compile(r"^[\s\u200b\u200c\u200d\u2060\ufeff]+|[\s\u200b\u200c\u200d\u2060\ufeff]+$")


def _key(text: str) -> str:
    """scim_service.rules.comparison_key."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _EDGES.sub("", folded.translate(_REMOVED_ANYWHERE))


def _lower(text: str) -> str:
    """The rule before this revision."""
    return text.lower()


def _primary_email(data: Any) -> str | None:
    """scim_service.model.primary_email: the value marked primary, else the first one, as sent."""
    emails = data.get("emails") if isinstance(data, Mapping) else None
    if not isinstance(emails, list):
        return None
    candidates = [e for e in emails if isinstance(e, Mapping) and isinstance(e.get("value"), str) and e["value"]]
    chosen = next((e for e in candidates if e.get("primary") is True), candidates[0] if candidates else None)
    return None if chosen is None else str(chosen["value"])


def _get_ci(mapping: Mapping[str, Any], key: str) -> Any:
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def _email_keys(data: Any) -> list[tuple[int, str]]:
    """scim_sql.tables.email_values: (position, key cut to EMAIL_MAX) of every string emails value."""
    if not isinstance(data, Mapping):
        return []
    top = _get_ci(data, "emails")
    elements = top if isinstance(top, list | tuple) else [top]
    return [
        (position, _key(value)[:EMAIL_MAX])
        for position, element in enumerate(elements)
        if isinstance(element, Mapping) and isinstance(value := _get_ci(element, "value"), str)
    ]


# -- tables ---------------------------------------------------------------------------------------------


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _users() -> sa.TableClause:
    return sa.table(
        f"{_prefix()}users",
        sa.column("id", sa.String(36)),
        sa.column("tenant_id", sa.String(64)),
        sa.column("user_name", sa.String(TEXT_MAX)),
        sa.column("user_name_lower", sa.String(TEXT_MAX)),
        sa.column("primary_email_lower", sa.String(TEXT_MAX)),
        sa.column("data", _json()),
    )


def _groups() -> sa.TableClause:
    return sa.table(
        f"{_prefix()}groups",
        sa.column("id", sa.String(36)),
        sa.column("tenant_id", sa.String(64)),
        sa.column("display_name", sa.String(TEXT_MAX)),
        sa.column("display_name_key", sa.String(TEXT_MAX)),
    )


def _emails() -> sa.TableClause:
    return sa.table(
        f"{_prefix()}user_emails",
        sa.column("user_id", sa.String(36)),
        sa.column("ordinal", sa.Integer()),
        sa.column("value_key", sa.String(EMAIL_MAX)),
    )


def _batches(conn: sa.Connection, table: Any, *columns: Any) -> Iterator[list[Any]]:
    """Every row of ``table`` in id order, BATCH at a time (keyset: each batch is one index range)."""
    last: str | None = None
    while True:
        stmt = sa.select(table.c.id, *columns).order_by(table.c.id).limit(BATCH)
        if last is not None:
            stmt = stmt.where(table.c.id > last)
        batch = conn.execute(stmt).all()
        if not batch:
            return
        yield batch
        last = batch[-1].id


def _collisions(conn: sa.Connection, key: Callable[[str], str]) -> list[str]:
    """The userNames and group displayNames that share a key within a tenant, described for the error."""
    found: list[str] = []
    users, groups = _users(), _groups()
    for what, table, name in (("users", users, users.c.user_name), ("groups", groups, groups.c.display_name)):
        seen: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for batch in _batches(conn, table, table.c.tenant_id, name):
            for row in batch:
                value = row[2]
                if value is not None:
                    seen[(row.tenant_id, key(value))].append((row.id, value))
        for (tenant, _k), holders in sorted(seen.items()):
            if len(holders) > 1:
                found.append(f"{what} of tenant {tenant}: " + ", ".join(f"{v!r} (id {i})" for i, v in holders))
    return found


def _rewrite(conn: sa.Connection, key: Callable[[str], str], with_email_keys: bool) -> None:
    """Recompute every key column with ``key`` (and the side table's value_key when asked)."""
    users, groups, emails = _users(), _groups(), _emails()
    for batch in _batches(conn, users, users.c.user_name, users.c.data):
        rows = []
        email_rows = []
        for user in batch:
            email = _primary_email(user.data)
            rows.append({"uid": user.id, "k": key(user.user_name), "e": (key(email) or None) if email else None})
            if with_email_keys:
                email_rows += [{"uid": user.id, "pos": pos, "k": k} for pos, k in _email_keys(user.data)]
        conn.execute(
            users.update()
            .where(users.c.id == sa.bindparam("uid"))
            .values(user_name_lower=sa.bindparam("k"), primary_email_lower=sa.bindparam("e")),
            rows,
        )
        if email_rows:
            conn.execute(
                emails.update()
                .where(emails.c.user_id == sa.bindparam("uid"), emails.c.ordinal == sa.bindparam("pos"))
                .values(value_key=sa.bindparam("k")),
                email_rows,
            )
    for batch in _batches(conn, groups, groups.c.display_name):
        rows = [{"gid": g.id, "k": key(g.display_name)} for g in batch if g.display_name is not None]
        if rows:
            conn.execute(
                groups.update().where(groups.c.id == sa.bindparam("gid")).values(display_name_key=sa.bindparam("k")),
                rows,
            )


def _drop_unique_indexes() -> None:
    op.drop_index(f"ux_{_prefix()}users_tenant_user_name", table_name=f"{_prefix()}users")
    op.drop_index(f"uq_{_prefix()}groups_tenant_display_name_key", table_name=f"{_prefix()}groups")


def _create_unique_indexes() -> None:
    op.create_index(
        f"ux_{_prefix()}users_tenant_user_name", f"{_prefix()}users", ["tenant_id", "user_name_lower"], unique=True
    )
    op.create_index(
        f"uq_{_prefix()}groups_tenant_display_name_key",
        f"{_prefix()}groups",
        ["tenant_id", "display_name_key"],
        unique=True,
    )


def upgrade() -> None:
    """Stop on names the new key makes equal; else recompute every key and add ``value_key``."""
    conn = op.get_bind()
    collisions = _collisions(conn, _key)
    if collisions:
        more = f"; and {len(collisions) - SHOWN} more" if len(collisions) > SHOWN else ""
        # One line: the command line shows it as its error.
        raise CommandError(
            "cannot compare names by their Unicode key (case, Unicode form, surrounding spaces and "
            "zero-width characters ignored), these names would become equal: "
            + "; ".join(collisions[:SHOWN])
            + more
            + ". Rename or delete all but one of each, then run `scim-service db upgrade` again; nothing was changed."
        )
    op.add_column(f"{_prefix()}user_emails", sa.Column("value_key", sa.String(EMAIL_MAX), nullable=True))
    _drop_unique_indexes()
    _rewrite(conn, _key, with_email_keys=True)
    _create_unique_indexes()
    # After the rows: one index build is faster than maintaining the index row by row.
    op.create_index(
        f"ix_{_prefix()}user_emails_tenant_key", f"{_prefix()}user_emails", ["tenant_id", "value_key", "user_id"]
    )


def downgrade() -> None:
    """Recompute every key with ``str.lower()`` and drop ``value_key``."""
    op.drop_index(f"ix_{_prefix()}user_emails_tenant_key", table_name=f"{_prefix()}user_emails")
    # A plain DROP COLUMN (SQLite 3.35+ and PostgreSQL), as in 0003: no batch copy of the table.
    op.execute(f'ALTER TABLE "{_prefix()}user_emails" DROP COLUMN value_key')
    _drop_unique_indexes()
    _rewrite(op.get_bind(), _lower, with_email_keys=False)
    _create_unique_indexes()
