"""The alembic environment of the service's own tables (organizations, tokens, provisioning log).

Its version table is ``scim_service_alembic_version`` so it shares a database with the ``sql``
backend's migrations (``scim_sql_alembic_version``) without either seeing the other's history.
:func:`scim_service.servicedb.migrate.upgrade_service_db` runs it with a connection in
``config.attributes["connection"]``; the ``alembic`` command line (``alembic -c
scim_service/migrations/alembic.ini ...``) runs it against ``sqlalchemy.url`` or ``SCIM_DATABASE_URL``.

The tables are named with the prefix in ``config.attributes["table_prefix"]`` (from the caller), else
the ``table_prefix`` main option, else ``SCIM_TABLE_PREFIX``, else ``scim_``; env.py leaves the one it
chose in ``config.attributes["table_prefix"]``, where the revisions read it. The schema
(``SCIM_DB_SCHEMA``) is the connection's (see :func:`scim_service.sqlengine.engine_schema`).
"""

from __future__ import annotations

import os
from typing import Any

from alembic import context

from scim_service.servicedb.hostdb import TABLE_PREFIX
from scim_service.servicedb.tables import tables_for
from scim_service.sqlengine import engine_schema, lift_timeouts, make_engine, use_schema

config = context.config
config.attributes["table_prefix"] = (
    config.attributes.get("table_prefix")
    or config.get_main_option("table_prefix")
    or os.environ.get("SCIM_TABLE_PREFIX")
    or TABLE_PREFIX
)
TABLES = tables_for(config.attributes["table_prefix"])
VERSION_TABLE = TABLES.version_table
target_metadata = TABLES.metadata


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Let autogenerate see only this package's tables: other packages' tables share the database."""
    return not (type_ == "table" and reflected and name not in target_metadata.tables)


def _configure(schema: str | None = None, **kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        include_object=include_object,
        render_as_batch=True,  # SQLite can only alter tables by copying them
        compare_type=True,
        **kwargs,
    )


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("SCIM_DATABASE_URL")
    if not url:
        raise RuntimeError("set sqlalchemy.url or SCIM_DATABASE_URL to say which database to migrate")
    return url


def run_migrations_offline() -> None:
    """Emit the SQL of the migrations instead of running them (``alembic upgrade --sql``)."""
    _configure(os.environ.get("SCIM_DB_SCHEMA"), url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the given connection, or on a new engine built the service's way."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(engine_schema(connection), connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url(), {"SCIM_DB_SCHEMA": os.environ.get("SCIM_DB_SCHEMA")})
    try:
        with engine.connect() as conn:
            conn.info["scim_write"] = True
            _configure(engine_schema(conn), connection=conn)
            with context.begin_transaction():
                lift_timeouts(conn)
                use_schema(conn)
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
