"""Fixtures of the PostgreSQL integration tests: a fresh, migrated database per module.

The server is the session's (``pg_server_url`` in ``tests/conftest.py``); the database is created
through ``scim-service db upgrade``, the command an operator runs, and dropped after the module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_support import Admin, PgDatabases, cli, service_env


@pytest.fixture(scope="module")
def service_db(pg_databases: PgDatabases) -> Iterator[str]:
    """The URL of a fresh database that ``scim-service db upgrade`` migrated; dropped after the module."""
    name = pg_databases.create(tag="svc")
    url = pg_databases.url(name)
    cli(service_env(url), "db", "upgrade")
    yield url
    pg_databases.drop(name)


@pytest.fixture(scope="module")
def admin(service_db: str) -> Iterator[Admin]:
    """Organizations, tokens and SQL counts on the module's database."""
    admin = Admin(service_db)
    yield admin
    admin.close()
