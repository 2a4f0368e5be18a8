"""Operating a real deployment: two gunicorn processes on one database, SQLite or
PostgreSQL. The failed-login limit holds across every worker, the JSON log lines carry the request id
the client sent, and ``scim-service log --follow`` prints entries as they are written."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from pg_support import BIN, PgDatabases, Reply, Servers, call, cli, gunicorn_servers, service_env

from scim_service.servicedb.store import LogQuery, ServiceStore
from scim_service.sqlengine import make_engine

pytestmark = pytest.mark.slow

LIMIT = 5
CLIENT = "127.0.0.23"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Servers]]:
    """Two gunicorn processes on one database (started once per database kind: they are slow to boot)."""
    tmp_path = tmp_path_factory.mktemp(f"live-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'scim.db'}"
    else:
        databases: PgDatabases = request.getfixturevalue("pg_databases")
        url = databases.url(databases.create(tag="live"))
    env = service_env(
        url,
        SCIM_AUTH_FAILURE_LIMIT=str(LIMIT),
        SCIM_AUTH_FAILURE_WINDOW="10m",
        SCIM_LOG_FORMAT="json",
        SCIM_LOG_LEVEL="INFO",
    )
    cli(env, "db", "upgrade")
    with gunicorn_servers(env, tmp_path, count=2, workers=1, threads=2) as servers:
        yield env, servers


def test_failed_login_limit_holds_across_processes_and_logs_are_json_with_request_ids(
    deployment: tuple[dict[str, str], Servers],
) -> None:
    env, servers = deployment
    store = _store(env)
    store.create_org("acme")
    _id, token = store.create_token("acme")
    bases = servers.bases
    # From an address of its own: the servers' readiness probes (unauthenticated) count for 127.0.0.1.
    replies = [_from(CLIENT, bases[n % 2] + "/Users", "scim_wrong", {"X-Request-Id": f"bad-{n}"}) for n in range(12)]
    assert [r.status for r in replies] == [401] * LIMIT + [429] * (12 - LIMIT)
    limited = replies[-1]
    assert limited.body["status"] == "429" and int(limited.headers["Retry-After"]) > 500
    assert limited.headers["X-Request-Id"] == "bad-11"
    # A valid token from the same address is served by every worker.
    assert {_from(CLIENT, bases[n % 2] + "/Users", token).status for n in range(4)} == {200}

    entries = [e for e in store.query_log(LogQuery(status="4xx")) if e.client == CLIENT]
    assert sorted((e.status, e.repeat_count) for e in entries) == [(401, LIMIT), (429, 12 - LIMIT)]
    store.engine.dispose()

    created = call(bases[0] + "/Users", token, "POST", _user("alice@example.com"), headers={"X-Request-Id": "c-1"})
    assert created.status == 201 and created.headers["X-Request-Id"] == "c-1"
    deadline = time.monotonic() + 10
    while '"c-1"' not in servers.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [json.loads(line) for line in servers.logs().splitlines() if line.startswith("{")]
    (line,) = [line for line in lines if line.get("request_id") == "c-1"]
    assert (line["status"], line["org"], line["method"], line["user_name"]) == (
        201,
        "acme",
        "POST",
        "alice@example.com",
    )
    assert line["logger"] == "scim_service.request" and line["duration_ms"] >= 0


def test_log_follow_prints_new_entries(deployment: tuple[dict[str, str], Servers]) -> None:
    env, servers = deployment
    store = _store(env)
    store.create_org("followed")
    _id, token = store.create_token("followed")
    store.engine.dispose()
    follower = subprocess.Popen(
        [str(BIN / "scim-service"), "log", "--follow", "--json", "--interval", "0.2", "--org", "followed"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # let it start; entries written before its first poll are printed too
        for n in range(3):
            reply = call(servers.bases[n % 2] + "/Users", token, headers={"X-Request-Id": f"follow-{n}"})
            assert reply.status == 200
        seen: list[str] = []
        deadline = time.monotonic() + 20
        while len(seen) < 3 and time.monotonic() < deadline:
            line = follower.stdout.readline()  # type: ignore[union-attr]
            if line:
                seen.append(json.loads(line)["request_id"])
        assert seen == ["follow-0", "follow-1", "follow-2"]
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def _store(env: dict[str, str]) -> ServiceStore:
    """The service store of the deployment's database, as another worker would open it."""
    return ServiceStore(make_engine(env["SCIM_DATABASE_URL"]))


def _from(source: str, url: str, token: str, headers: dict[str, str] | None = None) -> Reply:
    """A GET sent from the loopback address ``source`` (any 127.x.y.z is this machine on Linux)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30, source_address=(source, 0))
    try:
        connection.request("GET", parts.path, headers={"Authorization": f"Bearer {token}", **(headers or {})})
        response = connection.getresponse()
        raw = response.read()
        return Reply(response.status, dict(response.getheaders()), json.loads(raw) if raw else {})
    finally:
        connection.close()


def _user(user_name: str) -> dict[str, object]:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}
