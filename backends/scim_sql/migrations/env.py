"""Alembic environment of the ``sql`` backend, driven programmatically by ``SqlBackend.migrate``.

It only runs online on the connection the backend hands in (``config.attributes["connection"]``), which
is already inside a write transaction, and records its revision in its own version table so it never
collides with the service's own migrations in the same database. The revisions name the tables with
``config.attributes["table_prefix"]`` (``SCIM_TABLE_PREFIX``; ``scim_`` when not given); the version
table lives in the connection's schema (``SCIM_DB_SCHEMA``).
"""

from __future__ import annotations

from alembic import context

from scim_service.sqlengine import engine_schema
from scim_sql.tables import tables_for


def run_migrations_online() -> None:
    """Upgrade through the connection given by the caller."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("scim_sql migrations run through SqlBackend.migrate(), which passes a connection")
    tables = tables_for(context.config.attributes.setdefault("table_prefix", "scim_"))
    version_table = context.config.get_main_option("version_table") or tables.version_table
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table=version_table,
        version_table_schema=engine_schema(connection),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("scim_sql migrations do not support offline (SQL script) mode")
run_migrations_online()
