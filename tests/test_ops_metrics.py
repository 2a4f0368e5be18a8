"""Metrics in one process (``SCIM_METRICS=true``, no multiprocess folder): what each series counts.

The multiprocess sum over gunicorn workers is tests/test_ops_gunicorn.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import GROUP_SCHEMA, USER_SCHEMA, make_app
from flask import Flask

from scim_service.backend import Backend
from scim_service.config import ConfigError
from scim_service.extension import ScimService, get_state
from scim_service.ops.metrics import TIMED_OPERATIONS, TimedBackend, uninstrumented


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    app = make_app(tmp_path, SCIM_METRICS=True)
    store = get_state(app).store
    store.create_org("acme", max_seats=3)
    store.create_org("open")
    yield app, store.create_token("acme")[1]
    get_state(app).close()


def test_metrics_are_off_by_default(tmp_path):
    app = make_app(tmp_path)
    try:
        assert app.test_client().get("/metrics").status_code == 404
        assert not isinstance(get_state(app).backend, TimedBackend)
    finally:
        get_state(app).close()


def test_every_storage_operation_is_timed():
    abstract = {name for name in Backend.__abstractmethods__ if name != "from_config"}
    assert abstract <= TIMED_OPERATIONS
    assert not {"close", "migrate", "ping", "from_config"} & TIMED_OPERATIONS


def test_requests_latency_backend_calls_and_seats(metered):
    app, token = metered
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    created = client.post("/scim/v2/Users", json={"schemas": [USER_SCHEMA], "userName": "ann"}, headers=auth)
    assert created.status_code == 201
    assert client.get("/scim/v2/Users/no-such-id", headers=auth).status_code == 404
    group = {"schemas": [GROUP_SCHEMA], "displayName": "eng", "members": [{"value": created.json["id"]}]}
    assert client.post("/scim/v2/Groups", json=group, headers=auth).status_code == 201
    assert client.get("/scim/v2/Users", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.text
    count = "scim_http_requests_total"
    assert _sample(text, count, endpoint="scim.users", method="POST", status="201", organization="acme") == 1
    assert _sample(text, count, endpoint="scim.user", method="GET", status="404", organization="acme") == 1
    assert _sample(text, count, endpoint="scim.groups", method="POST", status="201", organization="acme") == 1
    assert _sample(text, count, endpoint="scim.users", method="GET", status="401", organization="") == 1
    assert _sample(text, "scim_http_request_duration_seconds_count", endpoint="scim.users", method="POST") == 1
    assert _sample(text, "scim_http_requests_in_progress") == 0
    calls = "scim_backend_call_duration_seconds_count"
    assert _sample(text, calls, backend="sql", operation="create_user", outcome="ok") == 1
    assert _sample(text, calls, backend="sql", operation="get_user", outcome="NotFound") == 1
    assert _sample(text, calls, backend="sql", operation="create_group", outcome="ok") == 1
    # Seats come from the store at scrape time, for every organization; maxSeats only where set.
    assert _sample(text, "scim_seats_used", organization="acme") == 1
    assert _sample(text, "scim_seats_max", organization="acme") == 3
    assert _sample(text, "scim_seats_used", organization="open") == 0
    assert 'scim_seats_max{organization="open"}' not in text
    assert _sample(text, "scim_seats_collect_ok") == 1
    # Scraping is not SCIM traffic, and counting seats for it is not a backend call of SCIM.
    again = client.get("/metrics").text
    assert _sample(again, calls, backend="sql", operation="count_seats") == _sample(
        text, calls, backend="sql", operation="count_seats"
    )


def test_tolerances_fired_are_counted_by_profile(metered):
    app, token = metered
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "Azure AD SCIM Client"}
    body = {"schemas": [USER_SCHEMA], "userName": "eve", "active": "True"}
    assert client.post("/scim/v2/Users", json=body, headers=headers).status_code == 201
    text = client.get("/metrics").text
    assert _sample(text, "scim_tolerances_total", profile="entra", tolerance="string_booleans") == 1


def test_openmetrics_when_the_scraper_asks(metered):
    app, _token = metered
    response = app.test_client().get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.mimetype == "application/openmetrics-text"
    assert response.text.rstrip().endswith("# EOF")


def test_a_store_that_fails_leaves_the_seats_out_but_the_scrape_answers(metered):
    app, _token = metered
    get_state(app).service_engine.dispose()
    Path(str(get_state(app).service_engine.url.database)).unlink()  # the database file is gone
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert _sample(response.text, "scim_seats_collect_ok") == 0
    assert "scim_seats_used{" not in response.text


def test_the_timing_wrapper_is_transparent(metered):
    app, _token = metered
    backend = get_state(app).backend
    assert isinstance(backend, TimedBackend)
    inner = uninstrumented(backend)
    assert backend.name == inner.name == "sql" and backend.capabilities == inner.capabilities


def test_a_metrics_path_the_host_routes_stops_start_up(tmp_path):
    host = Flask("host")
    host.config.update({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/scim.db", "SCIM_METRICS": "true"})
    host.add_url_rule("/metrics", "own", lambda: "the host's metrics")
    with pytest.raises(ConfigError, match="SCIM_METRICS"):
        ScimService(host)
