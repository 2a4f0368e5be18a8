"""The alembic environment of the service's own tables (organizations, tokens, provisioning log).

Its version table is ``scim_service_alembic_version`` so it shares a database with the ``sql``
backend's migrations (``scim_sql_alembic_version``) without either seeing the other's history.
:func:`scim_service.servicedb.migrate.upgrade_service_db` runs it with a connection in
``config.attributes["connection"]``; the ``alembic`` command line (``alembic -c
scim_service/migrations/alembic.ini ...``) runs it against ``sqlalchemy.url`` or ``SCIM_DATABASE_URL``.
"""

from __future__ import annotations

import os
from typing import Any

from alembic import context

from scim_service.servicedb.tables import metadata
from scim_service.sqlengine import lift_timeouts, make_engine

VERSION_TABLE = "scim_service_alembic_version"

config = context.config
target_metadata = metadata


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Let autogenerate see only this package's tables: other packages' tables share the database."""
    return not (type_ == "table" and reflected and name not in target_metadata.tables)


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
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
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the given connection, or on a new engine built the service's way."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            conn.info["scim_write"] = True
            _configure(connection=conn)
            with context.begin_transaction():
                lift_timeouts(conn)
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
