"""Fixtures of the API tests: a real app on a real store, an organization and its token.

Every test that uses the ``app`` fixture, and every test in a ``test_api_*.py`` module, runs three
times through the same code: on a SQLite file (``[sqlite]``), on PostgreSQL (``[postgres]``) and on
the LDAP backend (``[ldap]``). The PostgreSQL variant gets a schema of its own per folder
(``make_app(tmp_path)``), in a database created for the session; the schema is dropped after the test,
the database at the end of the session. The LDAP variant keeps organizations, tokens and the log in a
SQLite file per test, and users and groups in a fresh subtree (``ou=t-<random>``) of one directory per
session (``ldap_support.Subtrees``). A test that uses something a backend declares it cannot do (a
filter operator, a sort key, cursors, duplicate group names) calls ``api_helpers.requires`` and skips
on that backend only, with the declaration as the reason.

PostgreSQL is the server named by ``SCIM_TEST_POSTGRES_URL``. Without it, the session fixture
``pg_server_url`` starts a throwaway cluster (initdb/pg_ctl on 127.0.0.1, a free port, a temp folder)
when the first test needs PostgreSQL and the binaries are installed; nothing starts on import. The
directory is the one named by ``SCIM_TEST_LDAP_URL``, or else a private slapd started the first time a
test needs it (``ldap_support.start``). A missing server skips those variants, except under
``CI=true``, where it fails the run.
"""

from __future__ import annotations

import atexit
import inspect
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldap_support
import pytest
from api_helpers import Scim, make_app, new_org, using_backend, using_databases
from flask import Flask
from flask.testing import FlaskClient
from pg_support import IN_CI, URL_ENV, FolderSchemas, PgCluster, PgDatabases, server_reachable, why_no_cluster

from scim_service.errors import SCIM_TYPES
from scim_service.extension import ScimState, get_state

# The conformance kit's fixtures (tenant, other_tenant, make_tenant) for every test.
pytest_plugins = ["scim_service.testing.fixtures"]

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("ldap", marks=pytest.mark.ldap),
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under CI=true, PostgreSQL or LDAP tests that cannot run fail the session instead of skipping quietly."""
    reason = _why_no_postgres()
    if IN_CI and reason and any(item.get_closest_marker("postgres") for item in items):
        raise pytest.UsageError(f"CI=true and the PostgreSQL tests cannot run: {reason}")
    reason = ldap_support.why_no_directory()
    if IN_CI and reason and any(item.get_closest_marker("ldap") for item in items):
        raise pytest.UsageError(f"CI=true and the LDAP tests cannot run: {reason}")


def _why_no_postgres() -> str | None:
    """Why no PostgreSQL server can be had (None when one is named or a throwaway cluster can be started)."""
    if os.environ.get(URL_ENV):
        return None
    reason = why_no_cluster()
    return None if reason is None else f"PostgreSQL tests need {URL_ENV} or the PostgreSQL binaries: {reason}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each API test on SQLite, PostgreSQL and LDAP (see the module docstring)."""
    if "api_database" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rpartition(".")[2]
    if module.startswith("test_api_") or _uses_our_app_fixture(metafunc):
        metafunc.parametrize("api_database", BACKENDS, indirect=True)


def _uses_our_app_fixture(metafunc: pytest.Metafunc) -> bool:
    if "app" not in metafunc.fixturenames:
        return False
    defs = getattr(metafunc.definition, "_fixtureinfo", None)
    found = defs.name2fixturedefs.get("app") if defs is not None else None
    if not found:
        return True
    return inspect.getsourcefile(found[-1].func) == __file__


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """The URL of the PostgreSQL server the tests use: ``SCIM_TEST_POSTGRES_URL``, or else a throwaway
    cluster started when a test first needs it and removed when the session ends.

    Skips (fails under CI=true) when neither can be had.
    """
    url = os.environ.get(URL_ENV)
    if url:
        reason = server_reachable(url)
        if reason:
            _postgres_unavailable(f"PostgreSQL at {URL_ENV} is not reachable: {reason}")
        yield url
        return
    reason = _why_no_postgres()
    if reason:
        _postgres_unavailable(reason)
    try:
        cluster = PgCluster.create()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        _postgres_unavailable(f"could not start a throwaway PostgreSQL cluster: {exc}")
        raise
    atexit.register(cluster.destroy)  # also if the session dies before the fixture's teardown
    try:
        yield cluster.url()
    finally:
        cluster.destroy()


def _postgres_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true requires the PostgreSQL tests to run: {reason}")
    pytest.skip(reason)


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


def _directory_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires the LDAP tests to run (install slapd and ldap-utils)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ldap_support.Slapd | None]:
    """The session's private slapd, started on first use; None when ``SCIM_TEST_LDAP_URL`` names a server.

    Skips (fails under CI=true) when neither is available.
    """
    if os.environ.get(ldap_support.URL_ENV):
        yield None
        return
    reason = ldap_support.why_no_directory()
    if reason:
        _directory_unavailable(reason)
    try:
        server = ldap_support.start(tmp_path_factory.mktemp("slapd"))
    except (RuntimeError, OSError) as exc:
        _directory_unavailable(f"could not start a private slapd: {exc}")
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ldap_settings(slapd: ldap_support.Slapd | None) -> dict[str, str]:
    """The ``SCIM_LDAP_*`` settings of the session's directory (its base DN is the shared root)."""
    return ldap_support.directory_settings(slapd)


@pytest.fixture(scope="session")
def ldap_subtrees(ldap_settings: dict[str, str], slapd: ldap_support.Slapd | None) -> ldap_support.Subtrees:
    """Fresh subtrees of the session's directory (deleted after each test only on a shared server)."""
    return ldap_support.Subtrees(ldap_settings, drop=slapd is None)


def assert_scim_shaped(app: Flask, response: Any) -> None:
    """An error (status >= 400) answered under an app's SCIM base path is an RFC 7644 §3.12 error
    document: the SCIM media type, the Error schema, the status as a string, a detail, a known scimType."""
    state = app.extensions.get("scim")
    request = getattr(response, "request", None)
    if state is None or request is None or response.status_code < 400 or request.method == "HEAD":
        return
    base = state.base_path
    if not base or not (request.path == base or request.path.startswith(base + "/")):
        return
    where = f"{request.method} {request.path} -> {response.status_code}"
    assert response.mimetype == "application/scim+json", f"{where}: not a SCIM error: {response.mimetype}"
    body = response.get_json()
    assert isinstance(body, dict), where
    assert body.get("schemas") == ["urn:ietf:params:scim:api:messages:2.0:Error"], f"{where}: {body}"
    assert body.get("status") == str(response.status_code), f"{where}: {body}"
    assert isinstance(body.get("detail"), str), f"{where}: {body}"
    assert body.get("scimType") is None or body["scimType"] in SCIM_TYPES, f"{where}: {body}"


@pytest.fixture(autouse=True)
def _scim_errors_are_well_formed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard: every SCIM error any test provokes through a Flask test client is checked for its shape."""
    original = FlaskClient.open

    def open_and_check(self: FlaskClient, *args: Any, **kwargs: Any) -> Any:
        response = original(self, *args, **kwargs)
        assert_scim_shaped(self.application, response)
        return response

    monkeypatch.setattr(FlaskClient, "open", open_and_check)


@pytest.fixture(autouse=True)
def api_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which store ``make_app`` uses in this test: 'sqlite' (a file), 'postgres' (a fresh schema) or
    'ldap' (a SQLite file for the service tables and a fresh subtree of the session's directory)."""
    kind = getattr(request, "param", "sqlite")
    if kind == "ldap":
        subtrees: ldap_support.Subtrees = request.getfixturevalue("ldap_subtrees")
        with using_backend(subtrees):
            yield kind
        subtrees.drop_all()
        return
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
