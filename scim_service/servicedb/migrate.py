"""Create or upgrade the service's own tables by running its alembic migrations programmatically."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from scim_service.servicedb.hostdb import TABLE_PREFIX
from scim_service.servicedb.tables import tables_for
from scim_service.sqlengine import (
    engine_schema,
    lift_timeouts,
    make_engine,
    read_transaction,
    use_schema,
    write_transaction,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = tables_for().version_table  # of the default prefix
_PG_LOCK_KEY = 0x5C1E5E41  # an arbitrary constant naming "the service tables' migration" lock


def alembic_config(prefix: str = TABLE_PREFIX) -> Config:
    """An alembic Config pointing at the ``scim_service/migrations`` folder (no ini file needed); the
    migrations name the tables with ``prefix`` (``config.attributes["table_prefix"]``, read by env.py)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["table_prefix"] = prefix
    return config


def _version_opts(prefix: str, engine: Engine | Connection) -> dict[str, str | None]:
    return {"version_table": tables_for(prefix).version_table, "version_table_schema": engine_schema(engine)}


def head_revision() -> str:
    """The newest migration revision shipped with this version of the package."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine, prefix: str = TABLE_PREFIX) -> str | None:
    """The revision the database is at, or None when the service tables were never created."""
    with read_transaction(engine) as conn:
        context = MigrationContext.configure(conn, opts=_version_opts(prefix, conn))
        return context.get_current_revision()


def upgrade_service_db(engine_or_url: Engine | str, prefix: str = TABLE_PREFIX) -> tuple[str | None, str]:
    """Bring the service tables to the newest revision; return (revision before, revision after).

    A database without the service's version table gets the current tables directly (the migrations'
    history is for upgrading existing databases; a test checks both end in the same schema).

    Runs in one write transaction holding a lock (SQLite's write lock, a PostgreSQL advisory lock), so
    two processes starting together upgrade once and the second finds the work done. An URL gets a temporary engine.
    The tables are named with ``prefix`` (``SCIM_TABLE_PREFIX``) and live in the engine's schema
    (``SCIM_DB_SCHEMA``, created if missing).
    """
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        config = alembic_config(prefix)
        with write_transaction(engine) as conn:
            lift_timeouts(conn)  # it may wait for another host's upgrade and rewrite large tables
            if conn.dialect.name == "postgresql":
                # SQLite's write lock serialises concurrent upgrades; PostgreSQL needs an explicit lock.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            use_schema(conn)
            before = MigrationContext.configure(conn, opts=_version_opts(prefix, conn)).get_current_revision()
            config.attributes["connection"] = conn
            if before is None:
                # A new database: create the tables as they are now and record the head revision. Running
                # the history instead would create the unprefixed tables of revisions 0001 to 0003 first,
                # which fails in a host's database that has an ``organizations`` table of its own.
                tables_for(prefix).metadata.create_all(conn)
                command.stamp(config, "head")
            else:
                command.upgrade(config, "head")
        return before, current_revision(engine, prefix) or head_revision()
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


def service_tables_exist(engine: Engine, prefix: str = TABLE_PREFIX) -> bool:
    """Whether the organizations table is there (a quick start-up check)."""
    with read_transaction(engine) as conn:
        return sa.inspect(conn).has_table(tables_for(prefix).organizations.name, schema=engine_schema(conn))
