"""Revision 0004: names compared by their Unicode comparison key (rules.comparison_key) on SQLite and
PostgreSQL. The downgrade recomputes ``lower()`` keys; the upgrade recomputes the comparison keys,
fills the email side table's ``value_key``, and stops, changing nothing, when two names of a tenant
would become one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from pg_support import PgDatabases
from scim_sql.backend import MIGRATIONS_DIR, VERSION_TABLE, SqlBackend

from scim_service.errors import UniquenessConflict
from scim_service.model import Tenant
from scim_service.query.ast import ListQuery
from scim_service.query.parser import parse_filter
from scim_service.query.resolve import resolve_filter
from scim_service.schemas.definitions import GROUP_RESOURCE, USER_RESOURCE
from scim_service.sqlengine import write_transaction

NFC, NFD = "caf\u00e9", "cafe\u0301"
FULLWIDTH_JOE = "\uff2a\uff4f\uff45"  # "Joe" in fullwidth letters


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlBackend]:
    """A backend on an empty database (a SQLite file, or a fresh PostgreSQL database), not migrated."""
    if request.param == "postgres":
        databases: PgDatabases = request.getfixturevalue("pg_databases")
        name = databases.create(tag="unikeys")
        backend = SqlBackend.from_config({"SCIM_DATABASE_URL": databases.url(name)})
        yield backend
        backend.close()
        databases.drop(name)
        return
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/keys.db"})
    yield backend
    backend.close()


def _downgrade(backend: SqlBackend, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    with write_transaction(backend.engine) as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def _rows(backend: SqlBackend, sql: str) -> list[Any]:
    with backend.engine.connect() as conn:
        return list(conn.execute(sa.text(sql)).all())


def _version(backend: SqlBackend) -> str:
    return str(_rows(backend, f"SELECT version_num FROM {VERSION_TABLE}")[0][0])


def _users(backend: SqlBackend, tenant: Tenant, text: str) -> list[str]:
    query = ListQuery(filter=resolve_filter(parse_filter(text), USER_RESOURCE))
    return [u.user_name for u in backend.list_users(tenant, query).resources]


def _groups(backend: SqlBackend, tenant: Tenant, text: str) -> list[str | None]:
    query = ListQuery(filter=resolve_filter(parse_filter(text), GROUP_RESOURCE))
    return [g.display_name for g in backend.list_groups(tenant, query).resources]


def _copy_user(backend: SqlBackend, user_id: str, new_id: str, user_name: str) -> None:
    """A second row at revision 0003 like ``user_id``'s, named ``user_name`` (its key: ``lower()``, as 0003 did)."""
    with write_transaction(backend.engine) as conn:
        table = sa.Table("scim_users", sa.MetaData(), autoload_with=conn)
        row = dict(conn.execute(sa.select(table).where(table.c.id == user_id)).mappings().one())
        row.update(id=new_id, user_name=user_name, user_name_lower=user_name.lower())
        conn.execute(table.insert().values(**row))


def test_0004_downgrade_upgrade_and_stop_on_names_that_become_one(empty_backend: SqlBackend) -> None:
    backend = empty_backend
    backend.migrate()
    t1, t2 = Tenant(id="t1", name="t1"), Tenant(id="t2", name="t2")
    cafe = backend.create_user(t1, {"userName": NFC, "emails": [{"value": FULLWIDTH_JOE + "@X.org", "primary": True}]})
    bob = backend.create_user(t1, {"userName": "bob"})
    backend.create_user(t2, {"userName": NFD})  # another tenant: no collision
    backend.create_group(t1, {"displayName": "\ufb01nance"}, [])

    # Down to 0003: every key is lower() again, value_key is gone.
    _downgrade(backend, "0003")
    assert _version(backend) == "0003"
    keys = dict(_rows(backend, "SELECT user_name, user_name_lower FROM scim_users"))
    assert keys == {NFC: NFC, "bob": "bob", NFD: NFD}
    assert _rows(
        backend, "SELECT primary_email_lower FROM scim_users WHERE id = :id".replace(":id", f"'{cafe.id}'")
    ) == [((FULLWIDTH_JOE + "@X.org").lower(),)]
    assert _rows(backend, "SELECT display_name_key FROM scim_groups") == [("\ufb01nance",)]
    with backend.engine.connect() as conn:
        assert "value_key" not in {c["name"] for c in sa.inspect(conn).get_columns("scim_user_emails")}

    # Written at 0003 (lower() keys): "bob\u00a0" beside "bob" in t1. The new rule makes them one name.
    _copy_user(backend, bob.id, "nbsp-bob", "bob\u00a0")
    with pytest.raises(CommandError, match="would become equal") as refused:
        backend.migrate()
    message = str(refused.value)
    assert "\n" not in message
    assert "users of tenant t1: 'bob' (id " in message and "'bob\\xa0' (id nbsp-bob)" in message, message
    assert NFD not in message  # t2's café is alone in its tenant
    assert _version(backend) == "0003"  # nothing changed
    assert dict(_rows(backend, "SELECT id, user_name_lower FROM scim_users"))["nbsp-bob"] == "bob\u00a0"

    with write_transaction(backend.engine) as conn:
        conn.execute(sa.text("DELETE FROM scim_users WHERE id = 'nbsp-bob'"))
    backend.migrate()
    assert _version(backend) == "0004"
    keys = dict(_rows(backend, "SELECT user_name, user_name_lower FROM scim_users"))
    assert keys == {NFC: NFC, "bob": "bob", NFD: NFC}  # NFD's key is the composed form
    assert _rows(backend, "SELECT value_key FROM scim_user_emails") == [("joe@x.org",)]
    assert _rows(backend, "SELECT display_name_key FROM scim_groups") == [("finance",)]
    # Stored values are kept as sent; the keys find them.
    assert _users(backend, t1, f'userName eq "{NFD}"') == [NFC]
    assert _users(backend, t1, 'emails.value eq "JOE@x.org "') == [NFC]
    assert _users(backend, t1, 'emails[value eq "joe@x.org"]') == [NFC]
    assert _groups(backend, t1, 'displayName eq "FINANCE"') == ["\ufb01nance"]
    with pytest.raises(UniquenessConflict):
        backend.create_user(t1, {"userName": "\uff42\uff4f\uff42"})  # fullwidth "bob"
    with pytest.raises(UniquenessConflict):
        backend.create_group(t1, {"displayName": "Finance\u200b"}, [])


def test_0004_stops_on_group_names_that_become_one(empty_backend: SqlBackend) -> None:
    backend = empty_backend
    backend.migrate("0003")
    with write_transaction(backend.engine) as conn:
        table = sa.Table("scim_groups", sa.MetaData(), autoload_with=conn)
        for gid, name in (("g1", "Sales"), ("g2", "Sales\u200b"), ("g3", "Ops")):
            conn.execute(
                table.insert().values(
                    id=gid,
                    tenant_id="t1",
                    display_name=name,
                    display_name_key=name.lower(),
                    data={"displayName": name},
                    created=sa.func.current_timestamp(),
                    last_modified=sa.func.current_timestamp(),
                    version=1,
                )
            )
    with pytest.raises(CommandError, match=r"groups of tenant t1: 'Sales' \(id g1\), 'Sales\\u200b' \(id g2\)"):
        backend.migrate()
    assert _version(backend) == "0003"
    assert sorted(_rows(backend, "SELECT display_name_key FROM scim_groups")) == [
        ("ops",),
        ("sales",),
        ("sales\u200b",),
    ]
