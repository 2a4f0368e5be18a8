"""The migrations under a host-chosen table prefix (``SCIM_TABLE_PREFIX``) and, on PostgreSQL, in a schema
of their own (``SCIM_DB_SCHEMA``): every revision of both alembic histories, up and down, names its
tables with the prefix, and ends where the prefix's table definitions say (the end-to-end host tests are
in test_host_database.py)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from pg_support import PgDatabases
from scim_sql.backend import MIGRATIONS_DIR, SqlBackend
from scim_sql.tables import tables_for as sql_tables_for
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from scim_service.model import Member, Tenant
from scim_service.servicedb.migrate import alembic_config, current_revision, head_revision, upgrade_service_db
from scim_service.servicedb.store import LogEntry, ServiceStore, hash_token
from scim_service.servicedb.tables import tables_for
from scim_service.sqlengine import engine_schema, make_engine, use_schema, write_transaction

PREFIX = "idp_"
RELEVANT = ("add_table", "remove_table", "add_column", "remove_column", "add_index", "remove_index")


@pytest.fixture(params=["sqlite", pytest.param("postgres-schema", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty database: a SQLite file, or a fresh PostgreSQL database with SCIM_DB_SCHEMA=scim_x."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'prefix.db'}")
    else:
        databases: PgDatabases = request.getfixturevalue("pg_databases")
        eng = make_engine(databases.url(databases.create(tag="prefix")), {"SCIM_DB_SCHEMA": "scim_x"})
    yield eng
    eng.dispose()


def table_names(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names(schema=engine_schema(engine)))


def relevant_diff(engine: sa.Engine, metadata: sa.MetaData, version_table: str) -> list[object]:
    """What autogenerate would change to make the database match ``metadata`` (tables, columns, indexes)."""
    with engine.begin() as conn:
        use_schema(conn)  # reflection sees the engine's schema (SET LOCAL: the pooled connection is unchanged)
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    return [d for d in diff if isinstance(d, tuple) and d[0] in RELEVANT and d[1].name != version_table]


def run_service(engine: sa.Engine, verb: str, revision: str) -> None:
    """``alembic upgrade|downgrade`` of the service's history with the prefix, in the engine's schema."""
    config = alembic_config(PREFIX)
    with write_transaction(engine) as conn:
        use_schema(conn)
        config.attributes["connection"] = conn
        getattr(command, verb)(config, revision)


def test_service_history_under_a_prefix_ends_in_the_prefixs_tables(engine: sa.Engine) -> None:
    run_service(engine, "upgrade", "head")  # every revision from the first: 0004 moves them under idp_
    tables = tables_for(PREFIX)
    assert relevant_diff(engine, tables.metadata, tables.version_table) == []
    assert {n for n in table_names(engine) if not n.startswith(PREFIX)} == set()
    assert current_revision(engine, PREFIX) == head_revision()
    run_service(engine, "downgrade", "base")
    assert table_names(engine) == {tables.version_table}


def test_service_upgrade_from_0001_with_data_moves_it_under_the_prefix(engine: sa.Engine) -> None:
    run_service(engine, "upgrade", "0001")  # the unprefixed tables of the first revision
    t0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    schema = engine_schema(engine)
    q = f'"{schema}".' if schema else ""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO {q}organizations (id, name, max_seats, seat_policy, match_policy, created) "
                "VALUES ('o1', 'acme', 5, 'all', 'email', :t)"
            ),
            {"t": t0},
        )
        conn.execute(
            sa.text(f"INSERT INTO {q}tokens (id, org_id, token_hash, created) VALUES ('t1', 'o1', :h, :t)"),
            {"h": hash_token("scim_oldtoken"), "t": t0},
        )
        conn.execute(
            sa.text(
                f"INSERT INTO {q}provisioning_log (at, org_id, method, path, status, duration_ms) "
                "VALUES (:t, 'o1', 'POST', '/scim/v2/Users', 201, 1.0)"
            ),
            {"t": t0},
        )
    assert upgrade_service_db(engine, PREFIX) == ("0001", head_revision())
    assert "organizations" not in table_names(engine)
    store = ServiceStore(engine, tables=tables_for(PREFIX))
    acme = store.get_org("acme")
    assert store.authenticate("scim_oldtoken") == (acme, "t1")
    (old,) = store.recent_log("acme")
    assert store.record(LogEntry("GET", "/scim/v2/Users", 200, org_id=acme.id)) > old.id  # the sequence moved on
    assert upgrade_service_db(engine, PREFIX) == (head_revision(), head_revision())


def sql_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", sql_tables_for(PREFIX).version_table)
    config.attributes["table_prefix"] = PREFIX
    return config


def test_sql_backend_history_under_a_prefix(engine: sa.Engine) -> None:
    backend = SqlBackend(engine, table_prefix=PREFIX)
    backend.migrate()
    tables = sql_tables_for(PREFIX)
    assert relevant_diff(engine, tables.metadata, tables.version_table) == []
    assert all(n.startswith(PREFIX) for n in table_names(engine))
    tenant = Tenant(id="t1", name="t1")
    alice = backend.create_user(tenant, {"userName": "alice", "emails": [{"value": "a@example.com"}]})
    group = backend.create_group(tenant, {"displayName": "Eng"}, [Member(alice.id)])
    # Down through 0003 (a plain ALTER TABLE of the prefixed groups table) and up again, members kept.
    config = sql_config()
    with write_transaction(engine) as conn:
        use_schema(conn)
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    backend.migrate()
    assert [m.value for m in backend.get_group(tenant, group.id).members or ()] == [alice.id]
    with write_transaction(engine) as conn:
        use_schema(conn)
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert table_names(engine) == {tables.version_table}


REVISION_DIRS = [
    Path(alembic_config().get_main_option("script_location") or "") / "versions",
    MIGRATIONS_DIR / "versions",
]


@pytest.mark.parametrize("path", [p for d in REVISION_DIRS for p in sorted(d.glob("0*.py"))], ids=lambda p: p.name)
def test_no_revision_names_a_table_with_a_literal_prefix(path: Path) -> None:
    """Every revision takes the prefix from ``_prefix()`` (env.py's ``table_prefix``): a literal
    ``"scim_events"`` would put a new table outside a host's chosen prefix."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    literals = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and "scim_" in node.value
        and node.value not in {"scim_", "scim_type"}  # _prefix()'s default; a column of the log
    ]
    assert literals == [], f"{path.name}: use f'{{_prefix()}}...' instead of {literals}"


def test_the_longest_prefix_keeps_every_name_within_postgresqls_63_characters() -> None:
    """PostgreSQL cuts longer identifiers, so a name the migrations create would not be the one the
    metadata expects; the prefix rule (16 characters) and the longest derived name must fit together."""
    longest = "p" * 16
    tables_for(longest)  # a valid prefix
    with pytest.raises(ValueError, match="invalid table prefix"):
        tables_for(longest + "x")
    dialect = postgresql.dialect()
    for metadata in (tables_for(longest).metadata, sql_tables_for(longest).metadata):
        for table in metadata.tables.values():
            ddl = [str(CreateTable(table).compile(dialect=dialect))]
            ddl += [str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes]
            names = [table.name]
            for statement in ddl:
                names += re.findall(r"(?:CONSTRAINT|INDEX) (\S+)", statement)
            for name in names:
                assert len(name) <= 63 and "_" + longest in "_" + name.strip('"'), name
