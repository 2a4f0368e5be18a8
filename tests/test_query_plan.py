"""Filtering 100,000 users by the attributes IdPs query uses an index: the store's own query plan says so.

The users are bulk-inserted through the backend's tables at migration 0001 (one executemany in one
transaction), then the backend is upgraded to head, so migration 0002 backfills the email side table
from those 100,000 documents (its time is printed); the statistics are refreshed (ANALYZE), and the
exact statements :meth:`SqlBackend.list_users` issues for ``userName eq "..."``, ``externalId eq`` and
``emails.value eq`` / ``sw`` / ``emails[type eq "work" and value eq ...]`` are captured with
SQLAlchemy's ``before_cursor_execute`` event and explained by the store (EXPLAIN QUERY PLAN on SQLite,
EXPLAIN on PostgreSQL). The test asserts on the plan only; the timings it prints (``pytest -s``) are for
the notes, never asserted. For ``emails.value`` it also times the same filter compiled through the JSON
document (``json_each`` / ``jsonb_array_elements`` over every row of the tenant, as before the side
table) to show what the index saves.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from scim_sql.backend import SqlBackend
from scim_sql.filters import FilterCompiler
from scim_sql.tables import users

from scim_service.model import Tenant
from scim_service.query.ast import ListQuery
from scim_service.query.parser import parse_filter
from scim_service.query.resolve import resolve_filter
from scim_service.schemas.definitions import USER_RESOURCE

pytestmark = pytest.mark.slow

ROWS = 100_000


def bulk_load(backend: SqlBackend, tenant: Tenant, rows: int = ROWS) -> float:
    """Insert ``rows`` users of ``tenant`` (and a few of another tenant) in one transaction; the seconds it took.

    Only the users table is written: run it at migration 0001, and let 0002 fill the email side table.
    """
    now = datetime.now(UTC)
    started = time.perf_counter()

    def row(i: int, tenant_id: str) -> dict[str, Any]:
        name = f"user{i:06d}"
        email = f"{name}@example.com"
        data = {
            "userName": name,
            "externalId": f"ext-{i}",
            "emails": [{"value": email, "type": "work", "primary": True}],
            "active": True,
        }
        return {
            "id": str(uuid.uuid4()),
            "tenant_id": tenant_id,
            "user_name": name,
            "user_name_lower": name,
            "primary_email_lower": email,
            "external_id": f"ext-{i}",
            "display_name": None,
            "active": True,
            "deleted": False,
            "data": data,
            "created": now,
            "last_modified": now,
            "deactivated_at": None,
            "version": 1,
        }

    with backend.engine.begin() as conn:
        conn.execute(users.insert(), [row(i, tenant.id) for i in range(rows)])
        conn.execute(users.insert(), [row(i, "another-tenant") for i in range(50)])
    return time.perf_counter() - started


def analyze(backend: SqlBackend) -> None:
    with backend.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def captured(backend: SqlBackend, tenant: Tenant, text: str) -> tuple[list[tuple[str, Any]], float, int]:
    """The statements (with parameters) list_users runs for ``text``, the seconds it took, the total."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    query = ListQuery(filter=resolve_filter(parse_filter(text), USER_RESOURCE), count=10)
    backend.list_users(tenant, query)  # warm the statement cache and the pages
    sa.event.listen(backend.engine, "before_cursor_execute", record)
    try:
        started = time.perf_counter()
        page = backend.list_users(tenant, query)
        elapsed = time.perf_counter() - started
    finally:
        sa.event.remove(backend.engine, "before_cursor_execute", record)
    scim_statements = [(s, p) for s, p in statements if "scim_users" in s and s.lstrip().upper().startswith("SELECT")]
    assert scim_statements, statements
    return scim_statements, elapsed, page.total_results


def explain(backend: SqlBackend, statement: str, parameters: Any) -> list[str]:
    prefix = "EXPLAIN QUERY PLAN " if backend.engine.dialect.name == "sqlite" else "EXPLAIN "
    with backend.engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()
    return [str(r[-1]) for r in rows]


def full_scan_seconds(backend: SqlBackend, tenant: Tenant, name: str) -> float:
    """The same match done without any index: a comparison on the JSON document of every row."""
    if backend.engine.dialect.name == "sqlite":
        sql = "SELECT count(*) FROM scim_users WHERE tenant_id = ? AND lower(json_extract(data, '$.userName')) = ?"
        params: Any = (tenant.id, name)
    else:
        sql = "SELECT count(*) FROM scim_users WHERE tenant_id = %(t)s AND lower(data->>'userName') = %(n)s"
        params = {"t": tenant.id, "n": name}
    with backend.engine.connect() as conn:
        started = time.perf_counter()
        assert conn.exec_driver_sql(sql, params).scalar_one() == 1
        return time.perf_counter() - started


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SqlBackend, Tenant, float]]:
    """A backend holding 100,000 users of one tenant, analysed."""
    if request.param == "postgres":
        databases = request.getfixturevalue("pg_databases")  # skips, or fails under CI=true, without a server
        url = databases.url(databases.create(tag="plan"))
    else:
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('plan')) / 'scim.db'}"
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": url})
    backend.migrate("0001")
    tenant = Tenant(id="plan-tenant", name="plan-tenant")
    seconds = bulk_load(backend, tenant)
    started = time.perf_counter()
    backend.migrate()  # 0002: the email side table, backfilled from the 100,050 documents
    upgrade = time.perf_counter() - started
    analyze(backend)
    print(
        f"\n[{request.param}] bulk-loaded {ROWS} users at 0001 in {seconds:.2f} s; "
        f"upgrade to head (email backfill + index) {upgrade:.2f} s"
    )
    try:
        yield backend, tenant, seconds
    finally:
        backend.close()


def _uses_index(plan: list[str], index: str, dialect: str) -> bool:
    if dialect == "sqlite":
        return any(index in line and ("SEARCH" in line) for line in plan)
    return any(index in line and ("Index" in line) for line in plan)


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ('userName eq "USER050000"', "ux_scim_users_tenant_user_name"),
        ('externalId eq "ext-50000"', "ix_scim_users_tenant_external_id"),
    ],
)
def test_filter_uses_the_index(loaded: tuple[SqlBackend, Tenant, float], text: str, index: str) -> None:
    backend, tenant, _ = loaded
    dialect = backend.engine.dialect.name
    statements, elapsed, total = captured(backend, tenant, text)
    assert total == 1
    scan = full_scan_seconds(backend, tenant, "user050000")
    print(
        f"\n[{dialect}] {text}: list_users {elapsed * 1000:.2f} ms (count + page); JSON full scan {scan * 1000:.2f} ms"
    )
    for statement, parameters in statements:
        plan = explain(backend, statement, parameters)
        print("  " + " ".join(statement.split())[:160])
        for line in plan:
            print(f"    {line}")
        assert _uses_index(plan, index, dialect), f"{text}: the plan does not use {index}:\n" + "\n".join(plan)
        assert not any(line.startswith("SCAN scim_users") for line in plan), plan


def json_path_seconds(backend: SqlBackend, tenant: Tenant, text: str) -> tuple[float, int, list[str]]:
    """The count of ``text`` compiled without the email side table (through the JSON document): the
    seconds it takes, its result and its plan."""
    compiler = FilterCompiler(
        "User", backend.engine.dialect.name, lower_collation=backend._lower_collation(), email_index=False
    )
    query = ListQuery(filter=resolve_filter(parse_filter(text), USER_RESOURCE))
    stmt = (
        sa.select(sa.func.count())
        .select_from(users)
        .where(users.c.tenant_id == tenant.id, users.c.deleted.is_(sa.false()), compiler.where(query.filter))
    )
    with backend.engine.connect() as conn:
        conn.execute(stmt).scalar_one()  # warm
        started = time.perf_counter()
        total = int(conn.execute(stmt).scalar_one())
        elapsed = time.perf_counter() - started
        compiled = stmt.compile(dialect=backend.engine.dialect)
    plan = explain(backend, str(compiled), _positional(backend, compiled))
    return elapsed, total, plan


def _positional(backend: SqlBackend, compiled: Any) -> Any:
    if backend.engine.dialect.name == "sqlite":
        return tuple(compiled.params[name] for name in compiled.positiontup)
    return compiled.params


EMAIL_INDEX = "ix_scim_user_emails_tenant_value"  # sw: lower-cased values
EMAIL_KEY_INDEX = "ix_scim_user_emails_tenant_key"  # eq: comparison keys (revision 0004)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('emails.value eq "USER050000@example.com"', 1),
        ('emails.value sw "user05000"', 10),
        ('emails[type eq "work" and value eq "user050000@EXAMPLE.com"]', 1),
    ],
)
def test_emails_value_uses_the_email_index(loaded: tuple[SqlBackend, Tenant, float], text: str, expected: int) -> None:
    """emails.value eq / sw go through the email side table's index, not every row's JSON emails."""
    backend, tenant, _ = loaded
    dialect = backend.engine.dialect.name
    index = EMAIL_INDEX if " sw " in text else EMAIL_KEY_INDEX
    statements, elapsed, total = captured(backend, tenant, text)
    assert total == expected
    before, before_total, before_plan = json_path_seconds(backend, tenant, text)
    assert before_total == expected
    print(
        f"\n[{dialect}] {text}: list_users {elapsed * 1000:.2f} ms (count + page) with the email index; "
        f"count through the JSON documents (before 0002) {before * 1000:.2f} ms"
    )
    # The JSON path really is the slow one the index replaces: it reads every row of the tenant. (An
    # eq compares comparison keys, which only the side table holds: it has no JSON path since 0004.)
    if " sw " not in text:
        pass
    elif dialect == "sqlite":
        assert any("json_each" in line.lower() or "VIRTUAL TABLE" in line for line in before_plan), before_plan
    else:
        assert not any(index in line for line in before_plan), before_plan
    for statement, parameters in statements:
        plan = explain(backend, statement, parameters)
        print("  " + " ".join(statement.split())[:160])
        for line in plan:
            print(f"    {line}")
        assert _uses_index(plan, index, dialect), f"{text}: the plan does not use {index}:\n" + "\n".join(plan)
        assert not any(line.startswith("SCAN scim_users") for line in plan), plan
        assert not any("Seq Scan on scim_users" in line for line in plan), plan
