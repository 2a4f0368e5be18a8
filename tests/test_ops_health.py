"""/healthz and /readyz: outside the SCIM base path, no authentication, JSON; 503 naming what failed.

The ``app`` fixture runs each test on SQLite, PostgreSQL and LDAP. Failures are real: a database that
was never migrated, a directory on a port where nothing listens, and one that accepts the connection
and never answers (a socket that is listening but never read), for the timeout.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import make_app
from flask import Flask
from flask.testing import FlaskClient

from scim_service.app import create_app
from scim_service.config import ConfigError
from scim_service.extension import ScimService, get_state


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_healthz_answers_without_authentication(app, client):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = client.get("/healthz", headers=headers)
        assert response.status_code == 200
        assert response.is_json and response.json == {"status": "ok"}
        assert response.headers["Cache-Control"] == "no-store"


def test_readyz_checks_the_database_and_the_backend(app, client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ready"
    assert set(response.json["checks"]) == {"database", "backend"}
    assert all(check["ok"] for check in response.json["checks"].values())
    assert "failed" not in response.json


def test_health_endpoints_are_not_under_the_scim_base_path(app, client):
    assert client.get("/scim/v2/healthz", headers={"Authorization": "Bearer x"}).status_code == 401


def test_health_endpoints_win_over_the_scim_catch_all_at_the_root(tmp_path):
    app = make_app(tmp_path, SCIM_BASE_PATH="/")
    try:
        client = app.test_client()
        assert client.get("/healthz").json == {"status": "ok"}
        assert client.get("/readyz").status_code == 200
        assert client.get("/Users").status_code == 401  # SCIM is still served at the root
    finally:
        get_state(app).close()


def test_an_unmigrated_database_is_not_ready(tmp_path):
    app = create_app({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db", "SCIM_LOG_LEVEL": "ERROR"}, environ={})
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.json["status"] == "unavailable"
        assert "database" in response.json["failed"]
        assert "organizations" in response.json["checks"]["database"]["error"]  # the table that is missing
        assert app.test_client().get("/healthz").status_code == 200  # the process itself is fine
    finally:
        get_state(app).close()


def _ldap_app_unmigrated(tmp_path: Path, port: int, **config: object) -> Flask:
    # The service tables are migrated; the directory is not there to migrate.
    app = create_app(
        {
            "SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/scim.db",
            "SCIM_BACKEND": "ldap",
            "SCIM_LDAP_URL": f"ldap://127.0.0.1:{port}",
            "SCIM_LDAP_BASE_DN": "dc=example,dc=org",
            "SCIM_LDAP_CONNECT_TIMEOUT": "1",
            "SCIM_LDAP_TIMEOUT": "1",
            "SCIM_LOG_LEVEL": "ERROR",
            **config,
        },
        environ={},
    )
    from scim_service.servicedb.migrate import upgrade_service_db

    upgrade_service_db(get_state(app).service_engine)
    return app


@pytest.fixture
def silent_port() -> Iterator[socket.socket]:
    """A port that accepts connections (the kernel's backlog) and never reads or answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener
    finally:
        listener.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


def test_a_backend_that_refuses_connections_fails_readiness_alone(tmp_path):
    app = _ldap_app_unmigrated(tmp_path, _closed_port())
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.json["failed"] == ["backend"]
        assert response.json["checks"]["database"]["ok"] is True
        assert response.json["checks"]["backend"]["error"]
    finally:
        get_state(app).close()


def test_a_backend_that_never_answers_times_out_and_is_not_probed_twice(tmp_path, silent_port):
    app = _ldap_app_unmigrated(tmp_path, silent_port.getsockname()[1], SCIM_READY_TIMEOUT=0.3)
    client = app.test_client()
    try:
        started = time.monotonic()
        first = client.get("/readyz")
        elapsed = time.monotonic() - started
        assert first.status_code == 503 and first.json["failed"] == ["backend"]
        assert "no answer within 0.3s" in first.json["checks"]["backend"]["error"]
        assert elapsed < 0.3 + 0.5, elapsed  # bounded by the timeout, not by the directory
        second = client.get("/readyz")
        assert second.status_code == 503
        assert "previous check is still running" in second.json["checks"]["backend"]["error"]
        assert second.json["checks"]["database"]["ok"] is True  # the database is checked every time
    finally:
        get_state(app).close()


# -- embedding: optional and never colliding ----------------------------------------------------------


def _host(tmp_path: Path, **config: object) -> Flask:
    host = Flask("host")
    host.config.update({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/scim.db", **config})

    @host.get("/healthz")
    def own_health() -> str:
        return "the host's own"

    return host


def test_an_embedding_host_gets_no_health_endpoints_unless_it_asks(tmp_path):
    host = _host(tmp_path)
    ScimService(host)
    try:
        assert host.test_client().get("/healthz").data == b"the host's own"
        assert host.test_client().get("/readyz").status_code == 404
    finally:
        get_state(host).close()


def test_a_host_route_on_the_same_path_stops_start_up(tmp_path):
    with pytest.raises(ConfigError, match=r"SCIM_HEALTH_ENDPOINTS.*/healthz"):
        ScimService(_host(tmp_path, SCIM_HEALTH_ENDPOINTS=True))


def test_a_prefix_puts_them_beside_the_hosts_own(tmp_path):
    host = _host(tmp_path, SCIM_HEALTH_ENDPOINTS="true", SCIM_HEALTH_PREFIX="scim-ops")
    ScimService(host)
    try:
        get_state(host).upgrade()
        client = host.test_client()
        assert client.get("/healthz").data == b"the host's own"
        assert client.get("/scim-ops/healthz").json == {"status": "ok"}
        assert client.get("/scim-ops/readyz").json["status"] == "ready"
    finally:
        get_state(host).close()
