"""Fixtures for the sql backend tests: a migrated backend on a fresh SQLite file, and on PostgreSQL.

PostgreSQL runs when ``SCIM_TEST_POSTGRES_URL`` names a server (a fresh database is created for the
test session and dropped after it; each test works in its own tenant: ``tenant`` and ``make_tenant``
are the conformance kit's fixtures, enabled in ``tests/conftest.py``). Without it the PostgreSQL
variants skip, unless ``CI=true``, where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_support import PgDatabases
from scim_sql.backend import SqlBackend


@pytest.fixture(scope="session")
def postgres_url(pg_databases: PgDatabases) -> str:
    """The URL of a fresh PostgreSQL database for this test session (the shared fixtures of
    tests/conftest.py skip, or fail under CI=true, when there is no server)."""
    return pg_databases.url(pg_databases.create(tag="sqlbackend"))


@pytest.fixture(scope="session")
def postgres_backend(postgres_url: str) -> Iterator[SqlBackend]:
    """One migrated backend on the session's PostgreSQL database (tests isolate by tenant)."""
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": postgres_url, "SCIM_DB_POOL_SIZE": 10})
    backend.migrate()
    yield backend
    backend.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlBackend]:
    """A migrated SqlBackend: a new SQLite file per test, or the session's PostgreSQL database."""
    if request.param == "postgres":
        yield request.getfixturevalue("postgres_backend")
        return
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/scim.db"})
    backend.migrate()
    yield backend
    backend.close()
