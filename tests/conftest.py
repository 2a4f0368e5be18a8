"""Fixtures of the API tests: a real app on a real database, an organization and its token.

Every test that uses the ``app`` fixture, and every test in a ``test_api_*.py`` module, runs twice:
on a SQLite file (``[sqlite]``) and on PostgreSQL (``[postgres]``), through the same code. The
PostgreSQL variant gets a schema of its own per folder (``make_app(tmp_path)``), in a database
created for the session; the schema is dropped after the test, the database at the end of the session.

The server is the one named by ``SCIM_TEST_POSTGRES_URL``. Without it, a throwaway cluster is started
for the session (initdb/pg_ctl on 127.0.0.1, a free port, a temp folder) when the binaries are
installed; otherwise the PostgreSQL tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import atexit
import inspect
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import Scim, make_app, new_org, using_databases
from flask import Flask
from pg_support import IN_CI, URL_ENV, FolderSchemas, PgCluster, PgDatabases, server_reachable, why_no_cluster

from scim_service.extension import ScimState, get_state

BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _start_session_cluster() -> tuple[PgCluster | None, str | None]:
    """Without ``SCIM_TEST_POSTGRES_URL``, start a throwaway cluster and export its URL for every test.

    Done when this conftest is imported, before pytest imports the conftests below it (some read the
    URL at import); returns (cluster, None) or (None, why PostgreSQL tests cannot run).
    """
    if os.environ.get(URL_ENV):
        return None, None
    reason = why_no_cluster()
    if reason is None:
        try:
            cluster = PgCluster.create()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            reason = f"could not start a throwaway PostgreSQL cluster: {exc}"
        else:
            os.environ[URL_ENV] = cluster.url()
            atexit.register(cluster.destroy)  # also if pytest_unconfigure never runs
            return cluster, None
    return None, f"PostgreSQL tests need {URL_ENV} or the PostgreSQL binaries: {reason}"


SESSION_CLUSTER, NO_SERVER_REASON = _start_session_cluster()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop and remove the throwaway cluster, if one was started."""
    if SESSION_CLUSTER is not None:
        SESSION_CLUSTER.destroy()
        os.environ.pop(URL_ENV, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under CI=true, PostgreSQL tests that cannot run fail the session instead of skipping quietly."""
    reason = NO_SERVER_REASON
    if IN_CI and reason and any(item.get_closest_marker("postgres") for item in items):
        raise pytest.UsageError(f"CI=true and the PostgreSQL tests cannot run: {reason}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each API test on SQLite and on PostgreSQL (see the module docstring)."""
    if "api_database" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rpartition(".")[2]
    if module.startswith("test_api_") or _uses_our_app_fixture(metafunc):
        metafunc.parametrize("api_database", BOTH_DATABASES, indirect=True)


def _uses_our_app_fixture(metafunc: pytest.Metafunc) -> bool:
    if "app" not in metafunc.fixturenames:
        return False
    defs = getattr(metafunc.definition, "_fixtureinfo", None)
    found = defs.name2fixturedefs.get("app") if defs is not None else None
    if not found:
        return True
    return inspect.getsourcefile(found[-1].func) == __file__


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The URL of the PostgreSQL server the tests use (fails under CI=true when there is none)."""
    url = os.environ.get(URL_ENV)
    reason = NO_SERVER_REASON if not url else server_reachable(url)
    if reason:
        message = reason if not url else f"PostgreSQL at {URL_ENV} is not reachable: {reason}"
        if IN_CI:
            pytest.fail(f"CI=true requires the PostgreSQL tests to run: {message}")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def pg_databases(pg_server_url: str) -> Iterator[PgDatabases]:
    """Creates test databases on the server; drops them all when the session ends (and stale ones now)."""
    databases = PgDatabases(pg_server_url)
    databases.drop_stale()
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def pg_api_database(pg_databases: PgDatabases) -> str:
    """The database of the API tests' PostgreSQL variants (a schema per test in it; dropped at the end)."""
    return pg_databases.create(tag="api")


@pytest.fixture(autouse=True)
def api_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which database ``make_app`` uses in this test: 'sqlite' (a file) or 'postgres' (a fresh database)."""
    kind = getattr(request, "param", "sqlite")
    if kind != "postgres":
        yield kind
        return
    chooser = FolderSchemas(request.getfixturevalue("pg_databases"), request.getfixturevalue("pg_api_database"))
    with using_databases(chooser):
        yield kind
    chooser.drop_all()


@pytest.fixture
def app(api_database: str, tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    yield app
    get_state(app).close()


@pytest.fixture
def state(app: Flask) -> ScimState:
    return get_state(app)


@pytest.fixture
def scim(app: Flask, state: ScimState) -> Scim:
    """A client of organization 'acme' (100 seats, default policies)."""
    return Scim(app.test_client(), new_org(state, "acme", max_seats=100))
