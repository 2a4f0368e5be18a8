"""Migrations on PostgreSQL: ``scim-service db upgrade`` upgrades a database in place, keeping its data.

Written for any number of revisions. Each alembic environment (the service tables in
``scim_service/migrations`` and the ``sql`` backend's in ``backends/scim_sql/migrations``) is brought to
the revision before its head, rows are written into every table that exists there, then the CLI
upgrades to head and every row must still be there with the same values. While an environment has a
single revision, "the revision before head" is the empty database, so that test checks base -> head,
and the populated-database test below checks that re-running the upgrade on live data is harmless.
The sample JSON documents carry emails, so a revision that derives rows from the user documents (the
``sql`` backend's 0002 fills ``scim_user_emails``) runs on real data; a dedicated test writes users at
the backend's 0001 and finds them by ``emails.value`` through the API after ``scim-service db upgrade``.
The same logical schema on SQLite and PostgreSQL, and the per-test schema isolation of the API tests'
PostgreSQL variant, are checked here too.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from api_helpers import Scim, database_url, make_app, new_org, user
from pg_support import BIN, PgDatabases, cli, service_env
from scim_sql.backend import MIGRATIONS_DIR as SQL_MIGRATIONS
from scim_sql.backend import VERSION_TABLE as SQL_VERSION_TABLE
from scim_sql.backend import SqlBackend

from scim_service.extension import get_state
from scim_service.model import Tenant
from scim_service.query.ast import ListQuery
from scim_service.query.parser import parse_filter
from scim_service.query.resolve import resolve_filter
from scim_service.schemas.definitions import USER_RESOURCE
from scim_service.servicedb.migrate import VERSION_TABLE as SERVICE_VERSION_TABLE
from scim_service.servicedb.migrate import alembic_config
from scim_service.servicedb.store import ServiceStore
from scim_service.sqlengine import make_engine, write_transaction

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class Environment:
    """One alembic environment of the project."""

    name: str
    version_table: str

    def config(self) -> Config:
        """Its alembic Config, as the code builds it."""
        if self.name == "service":
            return alembic_config()
        cfg = Config()
        cfg.set_main_option("script_location", str(SQL_MIGRATIONS))
        cfg.set_main_option("version_table", SQL_VERSION_TABLE)
        return cfg

    def revisions(self) -> tuple[str, str]:
        """(the revision before head or "base", head)."""
        script = ScriptDirectory.from_config(self.config())
        head = script.get_current_head()
        assert head is not None
        down = script.get_revision(head).down_revision
        assert not isinstance(down, tuple), "a merge revision as head: pick the branch to test"
        return (down or "base"), head


ENVIRONMENTS = [Environment("service", SERVICE_VERSION_TABLE), Environment("sql", SQL_VERSION_TABLE)]
VERSION_TABLES = {e.version_table for e in ENVIRONMENTS}


def upgrade_to(url: str, env: Environment, revision: str) -> None:
    """Run one environment's migrations up to ``revision`` on ``url``."""
    if revision == "base":
        return
    engine = make_engine(url)
    try:
        with write_transaction(engine) as conn:
            cfg = env.config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def versions(url: str) -> dict[str, str | None]:
    """The revision each environment's version table records."""
    engine = sa.create_engine(url)
    out: dict[str, str | None] = {}
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            for env in ENVIRONMENTS:
                if inspector.has_table(env.version_table):
                    out[env.name] = conn.execute(sa.text(f"SELECT version_num FROM {env.version_table}")).scalar()
                else:
                    out[env.name] = None
    finally:
        engine.dispose()
    return out


@pytest.fixture
def fresh_db(pg_databases: PgDatabases) -> Iterator[str]:
    """An empty database; dropped after the test."""
    name = pg_databases.create(tag="mig")
    yield pg_databases.url(name)
    pg_databases.drop(name)


# -- rows for any table ------------------------------------------------------------------------------

# Columns whose values a CHECK constraint restricts.
KNOWN_VALUES: dict[str, Any] = {"seat_policy": "all", "match_policy": "email"}


def _value(column: sa.Column[Any], n: int) -> Any:
    if column.name in KNOWN_VALUES:
        return KNOWN_VALUES[column.name]
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return n % 2 == 0
    if isinstance(kind, sa.Integer):
        return n + 1
    if isinstance(kind, sa.Float | sa.Numeric):
        return n + 0.5
    if isinstance(kind, sa.DateTime):
        return datetime(2024, 1, 1 + n, 12, tzinfo=UTC)
    if isinstance(kind, sa.Date):
        return date(2024, 1, 1 + n)
    if isinstance(kind, sa.JSON):
        # With emails: the sql backend's 0002 backfills its email side table from user documents.
        return {"sample": n, "userName": f"u{n}", "emails": [{"value": f"U{n}@Example.com", "type": "work"}]}
    if isinstance(kind, sa.LargeBinary):
        return bytes([n])
    if isinstance(kind, sa.String):
        text = f"{column.table.name[:8]}-{column.name[:10]}-{n}"
        return text[: kind.length] if kind.length else text
    raise AssertionError(f"add a sample value for {column.table.name}.{column.name} ({kind!r})")


def populate(url: str, rows_per_table: int = 3) -> dict[str, list[dict[str, Any]]]:
    """Write ``rows_per_table`` rows into every table (foreign keys point at the referenced table's rows)."""
    engine = sa.create_engine(url)
    written: dict[str, list[dict[str, Any]]] = {}
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.begin() as conn:
            for table in metadata.sorted_tables:
                if table.name in VERSION_TABLES:
                    continue
                rows = []
                for n in range(rows_per_table):
                    row: dict[str, Any] = {}
                    for column in table.columns:
                        if column.foreign_keys:
                            target = next(iter(column.foreign_keys)).column
                            row[column.name] = written[target.table.name][n][target.name]
                        elif column.autoincrement is True or (
                            column.primary_key and isinstance(column.type, sa.Integer) and column.server_default
                        ):
                            continue  # the database numbers it
                        else:
                            row[column.name] = _value(column, n)
                    rows.append(row)
                conn.execute(table.insert(), rows)
                written[table.name] = rows
    finally:
        engine.dispose()
    return written


# Tables a migration renamed (service revision 0004 prefixed the service's tables with ``scim_``).
RENAMED = {name: f"scim_{name}" for name in ("organizations", "tokens", "provisioning_log", "auth_failures")}


def read_back(url: str, written: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The rows of the tables written (under their new names when a migration renamed them), restricted
    to the columns written, in a stable order."""
    engine = sa.create_engine(url)
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            for name, rows in written.items():
                table = metadata.tables.get(name)
                if table is None:
                    table = metadata.tables[RENAMED[name]]
                columns = [table.c[c] for c in rows[0]] if rows else list(table.c)
                got = conn.execute(sa.select(*columns).order_by(*columns)).mappings().all()
                out[name] = [dict(r) for r in got]
    finally:
        engine.dispose()
    return out


def _sorted(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


# -- tests -------------------------------------------------------------------------------------------


# Key columns a migration recomputes from the row's own values (sql 0004: the comparison keys of names);
# the sample rows hold arbitrary text there, so the upgrade rightly rewrites them.
DERIVED = {"scim_users": {"user_name_lower", "primary_email_lower"}, "scim_groups": {"display_name_key"}}


def _without_derived(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    drop = DERIVED.get(name, set())
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


def test_db_upgrade_from_the_previous_revision_keeps_every_row(fresh_db: str) -> None:
    previous = {env.name: env.revisions()[0] for env in ENVIRONMENTS}
    heads = {env.name: env.revisions()[1] for env in ENVIRONMENTS}
    for env in ENVIRONMENTS:
        upgrade_to(fresh_db, env, previous[env.name])
    written = populate(fresh_db)
    cli(service_env(fresh_db), "db", "upgrade")
    assert versions(fresh_db) == heads
    after = read_back(fresh_db, written)
    for name, rows in written.items():
        assert _sorted(_without_derived(name, after[name])) == _sorted(_without_derived(name, rows)), name
    if "scim_users" in written and "scim_user_emails" not in written:
        # The upgrade created the email side table (sql 0002): the users written before it are found by
        # their emails. (From 0002 on, the rows written above are the side table's own, not derived.)
        found = _emails_found(fresh_db, written["scim_users"])
        assert found == {r["id"] for r in written["scim_users"] if not r["deleted"]}, found
    print(
        f"\n[migrations] {', '.join(f'{n}: {previous[n]} -> {heads[n]}' for n in heads)}; "
        f"rows written before the upgrade: {sum(len(r) for r in written.values())} in {len(written)} tables"
    )
    if written:
        return
    # Only one revision each: the revision before head is the empty database, so the above checked
    # base -> head. Check the populate/read-back machinery on the head schema (the N-1 schema of the
    # next migration), through a second, idempotent upgrade.
    engine = sa.create_engine(fresh_db)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"scim_organizations", "scim_users", "scim_groups", "scim_group_members"} <= tables, tables
    written = populate(fresh_db)
    cli(service_env(fresh_db), "db", "upgrade")
    assert versions(fresh_db) == heads
    after = read_back(fresh_db, written)
    for name, rows in written.items():
        assert _sorted(after[name]) == _sorted(rows), name
    print(f"[migrations] re-upgrade at head kept {sum(len(r) for r in written.values())} rows in {len(written)} tables")


def _emails_found(url: str, rows: list[dict[str, Any]]) -> set[str]:
    """The ids of ``rows`` (users) that an ``emails.value eq`` filter on their sample email finds."""
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": url})
    found: set[str] = set()
    try:
        for row in rows:
            value = row["data"]["emails"][0]["value"].lower()
            query = ListQuery(filter=resolve_filter(parse_filter(f'emails.value eq "{value}"'), USER_RESOURCE))
            page = backend.list_users(Tenant(id=row["tenant_id"], name=row["tenant_id"]), query)
            found.update(u.id for u in page.resources)
    finally:
        backend.close()
    return found


def test_db_upgrade_finds_users_written_at_sql_0001_by_their_emails(fresh_db: str, tmp_path: Path) -> None:
    """Users written by the sql backend's 0001 (no email side table yet) are found by emails.value filters,
    through the API, once ``scim-service db upgrade`` ran 0002 and its backfill."""
    service, sql = ENVIRONMENTS
    upgrade_to(fresh_db, service, service.revisions()[1])
    upgrade_to(fresh_db, sql, "0001")
    engine = make_engine(fresh_db)
    try:
        assert "scim_user_emails" not in sa.inspect(engine).get_table_names()
        store = ServiceStore(engine)
        tenant = store.create_org("legacy", match_policy="username")
        _token_id, token = store.create_token("legacy")
        now = datetime(2024, 5, 1, tzinfo=UTC)
        people = {
            "alice": [
                {"value": "Alice@Example.COM", "type": "work", "primary": True},
                {"value": "alice.home@example.org", "type": "home"},
            ],
            "bob": [{"value": "bob@example.com", "type": "home"}, {"value": "bob.work@example.com", "type": "work"}],
            "emile": [{"value": "ÉMILE@x.fr"}],
            "ghost": [{"value": "ghost@example.com"}],  # soft-deleted at 0001
            "nobody": None,
        }
        table = sa.Table("scim_users", sa.MetaData(), autoload_with=engine)
        ids = {name: str(uuid.uuid4()) for name in people}
        with engine.begin() as conn:
            for name, emails in people.items():
                data: dict[str, Any] = {"userName": name, "active": True}
                if emails is not None:
                    data["emails"] = emails
                conn.execute(
                    table.insert().values(
                        id=ids[name],
                        tenant_id=tenant.id,
                        user_name=name,
                        user_name_lower=name,
                        primary_email_lower=emails[0]["value"].lower() if emails else None,
                        external_id=None,
                        display_name=None,
                        active=name != "ghost",
                        deleted=name == "ghost",
                        data=data,
                        created=now,
                        last_modified=now,
                        deactivated_at=now if name == "ghost" else None,
                        version=1,
                    )
                )
    finally:
        engine.dispose()

    cli(service_env(fresh_db), "db", "upgrade")
    assert versions(fresh_db) == {e.name: e.revisions()[1] for e in ENVIRONMENTS}

    app = make_app(tmp_path, SCIM_DATABASE_URL=fresh_db)
    scim = Scim(app.test_client(), token)

    def found(text: str) -> list[str]:
        response = scim.get("/Users", query_string={"filter": text})
        assert response.status_code == 200, response.get_json()
        return sorted(r["userName"] for r in response.get_json()["Resources"])

    assert found('emails.value eq "alice@example.com"') == ["alice"]
    assert found('emails.value eq "ALICE.HOME@example.org"') == ["alice"]  # not only the primary
    assert found('emails.value eq "émile@X.FR"') == ["emile"]
    assert found('emails.value sw "BOB"') == ["bob"]
    assert found('emails[type eq "work" and value eq "bob@example.com"]') == []  # type and value of one element
    assert found('emails[type eq "home" and value eq "bob@example.com"]') == ["bob"]
    assert found('emails.value eq "ghost@example.com"') == []  # soft-deleted users never match
    assert found('emails.value ne "bob@example.com"') == ["alice", "emile", "nobody"]
    engine = sa.create_engine(fresh_db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT user_id, value_lower FROM scim_user_emails")).all()
    finally:
        engine.dispose()
    assert sorted(v for _u, v in rows) == sorted(
        e["value"].lower() for emails in people.values() if emails for e in emails
    )
    get_state(app).close()


def test_db_upgrade_on_a_populated_database_at_head_changes_nothing(fresh_db: str, tmp_path: Path) -> None:
    app = make_app(tmp_path, SCIM_DATABASE_URL=fresh_db)
    state = get_state(app)
    scim = Scim(app.test_client(), new_org(state, "kept", max_seats=10))
    alice = scim.create_user("alice", email="alice@example.com", displayName="Alice")
    bob = scim.create_user("bob", active=False)
    group = scim.create_group("staff", [alice["id"], bob["id"]])
    before = {path: scim.get(path).get_json() for path in ("/Users", "/Groups", f"/Users/{alice['id']}")}
    heads = versions(fresh_db)
    state.close()

    for _ in range(2):
        cli(service_env(fresh_db), "db", "upgrade")

    assert versions(fresh_db) == heads
    app = make_app(tmp_path, SCIM_DATABASE_URL=fresh_db)
    scim = Scim(app.test_client(), scim.token)  # the token still authenticates
    after = {path: scim.get(path).get_json() for path in before}
    assert after == before
    assert scim.get(f"/Groups/{group['id']}").status_code == 200
    get_state(app).close()


def test_concurrent_upgrades_of_an_empty_database_all_succeed_once(fresh_db: str) -> None:
    env = service_env(fresh_db)

    def upgrade(_: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "scim-service"), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
        )

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(upgrade, range(4)))
    assert [r.returncode for r in results] == [0] * 4, [r.stderr for r in results]
    assert versions(fresh_db) == {env_.name: env_.revisions()[1] for env_ in ENVIRONMENTS}


def _shape(url: str) -> dict[str, Any]:
    """Tables, columns (nullability, primary key) and indexes (columns, uniqueness), dialect-neutral."""
    engine = make_engine(url)
    try:
        inspector = sa.inspect(engine)
        shape: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            pk = set(inspector.get_pk_constraint(table)["constrained_columns"])
            columns = {c["name"]: (bool(c["nullable"]) and c["name"] not in pk) for c in inspector.get_columns(table)}
            indexes = {
                i["name"]: (tuple(c or "<expr>" for c in i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
                if not i.get("duplicates_constraint")  # PostgreSQL lists a unique constraint's index too
            }
            uniques = sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table))
            shape[table] = {"columns": columns, "pk": sorted(pk), "indexes": indexes, "uniques": uniques}
        return shape
    finally:
        engine.dispose()


def test_sqlite_and_postgresql_get_the_same_logical_schema(fresh_db: str, tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path}/shape.db"
    for url in (sqlite_url, fresh_db):
        cli(service_env(url), "db", "upgrade")
    sqlite, postgres = _shape(sqlite_url), _shape(fresh_db)
    assert sorted(sqlite) == sorted(postgres)
    for table in sqlite:
        assert sqlite[table]["columns"] == postgres[table]["columns"], table
        assert sqlite[table]["pk"] == postgres[table]["pk"], table
        assert sqlite[table]["indexes"] == postgres[table]["indexes"], table
        assert sqlite[table]["uniques"] == postgres[table]["uniques"], table


def test_the_api_tests_postgres_variant_gives_each_folder_its_own_schema(
    api_database: str, tmp_path: Path, pg_databases: PgDatabases
) -> None:
    """The fixture under the whole HTTP suite: folder -> schema, tables in it, nothing shared."""
    from api_helpers import using_databases
    from pg_support import FolderSchemas

    name = pg_databases.create(tag="iso")
    chooser = FolderSchemas(pg_databases, name)
    try:
        with using_databases(chooser):
            first, again, other = (
                database_url(tmp_path / "a"),
                database_url(tmp_path / "a"),
                database_url(tmp_path / "b"),
            )
            assert first == again != other
            app_a, app_b = make_app(tmp_path / "a"), make_app(tmp_path / "b")
            Scim(app_a.test_client(), new_org(get_state(app_a), "same-name")).create_user("x")
            token_b = new_org(get_state(app_b), "same-name")  # no clash: another schema
            assert Scim(app_b.test_client(), token_b).get("/Users").get_json()["totalResults"] == 0
            for app in (app_a, app_b):
                get_state(app).close()
        engine = sa.create_engine(pg_databases.url(name))
        with engine.connect() as conn:
            public = conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar()
            schemas = dict(
                conn.execute(
                    sa.text("SELECT schemaname, count(*) FROM pg_tables WHERE tablename = 'scim_users' GROUP BY 1")
                ).all()
            )
        engine.dispose()
        assert public == 0 and sorted(schemas) == sorted(chooser.by_folder.values())
        assert user("x")["userName"] == "x"
    finally:
        chooser.drop_all()
        pg_databases.drop(name)
