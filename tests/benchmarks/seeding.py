"""Fast seeding of the sql backend's tables for the benchmarks (not a test module: pytest skips it).

Rows go straight into the backend's tables, the email side table included (rows derived by
``scim_sql.tables.email_rows``, as the backend's own writes do), so a million users take a minute, not
hours of API calls. SQLite gets multi-row inserts in one transaction; PostgreSQL gets ``COPY``.
User ``i`` of a seed is called ``user{i:07d}`` with the primary email ``User{i:07d}@Example.com``,
so a benchmark can name any of them without reading the database.
"""

from __future__ import annotations

import io
import json
import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from scim_sql import tables
from sqlalchemy.engine import Connection, Engine

BATCH = 20_000  # rows per insert on SQLite, per COPY buffer flush on PostgreSQL


def user_name(i: int) -> str:
    """The userName of the ``i``-th seeded user."""
    return f"user{i:07d}"


def user_row(tenant_id: str, user_id: str, i: int, now: datetime) -> dict[str, Any]:
    """The ``scim_users`` row of the ``i``-th seeded user (active, two emails, an externalId)."""
    name = user_name(i)
    return {
        "id": user_id,
        "tenant_id": tenant_id,
        "user_name": name,
        "user_name_lower": name,
        "primary_email_lower": f"{name}@example.com",
        "external_id": f"ext-{i}",
        "display_name": f"User {i}",
        "active": True,
        "deleted": False,
        "data": {
            "userName": name,
            "active": True,
            "externalId": f"ext-{i}",
            "displayName": f"User {i}",
            "name": {"givenName": "User", "familyName": f"{i:07d}"},
            "emails": [
                {"value": f"User{i:07d}@Example.com", "type": "work", "primary": True},
                {"value": f"u{i}@home.example.org", "type": "home"},
            ],
        },
        "created": now,
        "last_modified": now,
        "deactivated_at": None,
        "version": 1,
    }


def _chunks(count: int, size: int = BATCH) -> Iterator[range]:
    for start in range(0, count, size):
        yield range(start, min(count, start + size))


def seed_users(engine: Engine, tenant_id: str, count: int, *, first: int = 0) -> list[str]:
    """Insert ``count`` users (numbered from ``first``) into the tenant; return their ids in order."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for chunk in _chunks(count):
            rows = [user_row(tenant_id, ids[k], first + k, now) for k in chunk]
            emails = [e for row in rows for e in tables.email_rows(tenant_id, row["id"], row["data"])]
            _insert(conn, tables.users, rows)
            _insert(conn, tables.user_emails, emails)
    return ids


def seed_group(engine: Engine, tenant_id: str, display_name: str, member_ids: Sequence[str]) -> str:
    """Insert a group holding ``member_ids`` (users); return its id."""
    group_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    with engine.begin() as conn:
        group = {
            "id": group_id,
            "tenant_id": tenant_id,
            "display_name": display_name,
            "external_id": None,
            "data": {"displayName": display_name},
            "created": now,
            "last_modified": now,
            "version": 1,
        }
        conn.execute(sa.insert(tables.groups), [group])
        for chunk in _chunks(len(member_ids)):
            _insert(
                conn,
                tables.group_members,
                [
                    {
                        "tenant_id": tenant_id,
                        "group_id": group_id,
                        "member_id": member_ids[k],
                        "member_type": "User",
                        "display": f"User {k}",
                    }
                    for k in chunk
                ],
            )
    return group_id


def analyze(engine: Engine) -> None:
    """Refresh the planner's statistics after a bulk load (both databases plan by them). PostgreSQL
    also gets a VACUUM, so that autovacuum does not wake up on the fresh rows in the middle of a run."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        return
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def _insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, table, rows)
    else:
        conn.execute(sa.insert(table), rows)


def _copy(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY in text format: an order of magnitude faster than batched INSERTs."""
    columns = [c.name for c in table.columns]
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_copy_text(row[name]) for name in columns))
        buffer.write("\n")
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def _copy_text(value: Any) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"))
    return _escape(str(value))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def sample(ids: Sequence[str], size: int, *, seed: int = 12) -> list[str]:
    """A reproducible random sample of ``ids`` (all of them when there are fewer)."""
    if len(ids) <= size:
        return list(ids)
    return random.Random(seed).sample(list(ids), size)
