"""Fixtures for the sql backend tests: a migrated backend on a fresh SQLite file, and on PostgreSQL.

PostgreSQL runs when ``SCIM_TEST_POSTGRES_URL`` names a server (a fresh database is created for the
test session and dropped after it; each test works in its own tenant). Without it the PostgreSQL
variants skip, unless ``CI=true``, where they fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pg_support import PgDatabases
from scim_sql.backend import SqlBackend

from scim_service.model import MatchPolicy, SeatPolicy, Tenant


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


def new_tenant(
    *,
    max_seats: int | None = None,
    seat_policy: SeatPolicy = SeatPolicy.ALL,
    match_policy: MatchPolicy = MatchPolicy.EMAIL,
) -> Tenant:
    """A tenant with a fresh id, so tests sharing one PostgreSQL database never see each other."""
    tid = f"t-{uuid.uuid4().hex[:16]}"
    return Tenant(id=tid, name=tid, max_seats=max_seats, seat_policy=seat_policy, match_policy=match_policy)


@pytest.fixture
def make_tenant() -> Callable[..., Tenant]:
    """Make tenants with fresh ids (``make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)``)."""
    return new_tenant


@pytest.fixture
def tenant() -> Tenant:
    """A fresh tenant with unlimited seats and the default policies."""
    return new_tenant()
