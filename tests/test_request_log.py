"""Each SCIM request through the Flask test client: its request id, provisioning log entry and log
line; failed authentications counted per address with 429; expired tokens. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_helpers import ERROR_SCHEMA, Scim, make_app, new_org, user
from flask import Flask
from pg_support import PgDatabases

from scim_service.extension import ScimState, get_state
from scim_service.logformat import JsonFormatter
from scim_service.servicedb.store import LogQuery

CLIENT = "203.0.113.7"


class Clock:
    """A settable UTC clock for the app's store."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scim.db'}"
    databases: PgDatabases = request.getfixturevalue("pg_databases")
    return databases.url(databases.create(tag="reqlog"))


@pytest.fixture
def svc(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path, SCIM_DATABASE_URL=db_url, SCIM_BACKEND="sql", SCIM_AUTH_FAILURE_LIMIT="3")
    yield app
    get_state(app).close()


@pytest.fixture
def st(svc: Flask) -> ScimState:
    return get_state(svc)


def _scim(app: Flask, token: str, client: str = CLIENT) -> Scim:
    scim = Scim(app.test_client(), token)
    scim.client.environ_base["REMOTE_ADDR"] = client
    return scim


def test_request_id_is_taken_when_safe_generated_otherwise_and_stored(svc: Flask, st: ScimState) -> None:
    scim = _scim(svc, new_org(st, "acme"))
    given = scim.get("/Users", headers={"X-Request-Id": "okta-7f3a.9:b_c"})
    assert given.status_code == 200 and given.headers["X-Request-Id"] == "okta-7f3a.9:b_c"
    ids = set()
    for bad in ("has space", "x" * 65, "semi;colon", 'quote"d', ""):
        reply = scim.get("/Users", headers={"X-Request-Id": bad})
        rid = reply.headers["X-Request-Id"]
        assert rid != bad and len(rid) == 32 and int(rid, 16) >= 0
        ids.add(rid)
    plain = scim.get("/Users").headers["X-Request-Id"]
    assert len(ids | {plain}) == 6  # a new one every time
    (entry,) = st.store.query_log(LogQuery(request_id="okta-7f3a.9:b_c"))
    assert entry.path.endswith("/Users") and entry.org_name == "acme"
    assert [e.request_id for e in st.store.query_log(LogQuery(request_id=plain))] == [plain]
    # Errors carry it too.
    missing = scim.get("/Users/nope", headers={"X-Request-Id": "r-404"})
    assert missing.status_code == 404 and missing.headers["X-Request-Id"] == "r-404"
    (entry,) = st.store.query_log(LogQuery(request_id="r-404"))
    assert entry.status == 404 and entry.resource_id == "nope"


def test_log_line_has_request_id_org_token_status_scim_type_and_duration(
    svc: Flask, st: ScimState, caplog: pytest.LogCaptureFixture
) -> None:
    scim = _scim(svc, new_org(st, "acme"))
    (token_info,) = st.store.list_tokens("acme")
    assert scim.post("/Users", user("alice@example.com")).status_code == 201
    with caplog.at_level(logging.INFO, logger="scim_service.request"):
        reply = scim.post("/Users", user("ALICE@example.com"), headers={"X-Request-Id": "dup-1"})
    assert reply.status_code == 409
    (record,) = [r for r in caplog.records if r.name == "scim_service.request"]
    text = record.getMessage()
    assert text.startswith("POST /scim/v2/Users 409 uniqueness ")
    for part in ("request_id=dup-1", "org=acme", f"token={token_info.id}", f"client={CLIENT}", 'detail="'):
        assert part in text, text
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "INFO" and line["logger"] == "scim_service.request" and line["message"] == text
    assert {k: line[k] for k in ("request_id", "org", "token_id", "status", "scim_type", "method", "user_name")} == {
        "request_id": "dup-1",
        "org": "acme",
        "token_id": token_info.id,
        "status": 409,
        "scim_type": "uniqueness",
        "method": "POST",
        "user_name": "ALICE@example.com",
    }
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    datetime.fromisoformat(line["time"])
    (entry,) = st.store.query_log(LogQuery(request_id="dup-1"))
    assert (entry.user_name, entry.scim_type, entry.token_id) == ("ALICE@example.com", "uniqueness", token_info.id)


def test_user_name_is_recorded_from_the_body_or_the_answer(svc: Flask, st: ScimState) -> None:
    scim = _scim(svc, new_org(st, "acme"))
    created = scim.create_user("bob@example.com")
    scim.patch(f"/Users/{created['id']}", [{"op": "replace", "path": "active", "value": False}])
    scim.get(f"/Users/{created['id']}")
    entries = st.store.query_log(LogQuery(user="BOB@example.com"))
    assert [(e.method, e.status) for e in entries] == [("GET", 200), ("PATCH", 200), ("POST", 201)]
    assert {e.resource_id for e in entries} == {created["id"]}


def test_failed_authentications_share_an_entry_then_get_429_with_retry_after(svc: Flask, st: ScimState) -> None:
    clock = Clock()
    st.store.clock = clock
    good = _scim(svc, new_org(st, "acme"))
    bad = _scim(svc, "scim_not-a-token")
    for _ in range(3):
        reply = bad.get("/Users")
        assert reply.status_code == 401 and reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert "X-Request-Id" in reply.headers
    limited = bad.get("/Users")
    assert limited.status_code == 429 and limited.mimetype == "application/scim+json"
    body = limited.get_json()
    assert body["schemas"] == [ERROR_SCHEMA] and body["status"] == "429"
    assert "Too many failed authentications" in body["detail"]
    assert limited.headers["Retry-After"] == str(10 * 60)  # the default window, just started
    assert "Traceback" not in limited.get_data(as_text=True)
    clock.now += timedelta(minutes=4)
    assert bad.get("/Users").headers["Retry-After"] == str(6 * 60)
    # A valid token from the same address is never refused: an IdP's shared egress address keeps working.
    assert good.get("/Users").status_code == 200
    # Another address still gets its plain 401.
    assert _scim(svc, "scim_other", client="198.51.100.2").get("/Users").status_code == 401
    entries = st.store.query_log(LogQuery(status="4xx"))
    summary = sorted((e.client, e.status, e.repeat_count) for e in entries)
    assert summary == [("198.51.100.2", 401, 1), (CLIENT, 401, 3), (CLIENT, 429, 2)]
    clock.now += timedelta(minutes=6)  # a new window
    assert bad.get("/Users").status_code == 401


def test_limit_zero_never_limits_and_log_off_still_counts(tmp_path: Path, db_url: str) -> None:
    app = make_app(tmp_path, SCIM_DATABASE_URL=db_url, SCIM_BACKEND="sql", SCIM_AUTH_FAILURE_LIMIT="0")
    bad = _scim(app, "scim_nope")
    assert {bad.get("/Users").status_code for _ in range(6)} == {401}
    (entry,) = get_state(app).store.query_log(LogQuery())
    assert entry.repeat_count == 6
    get_state(app).close()
    quiet = make_app(
        tmp_path / "q",
        SCIM_DATABASE_URL=db_url,
        SCIM_BACKEND="sql",
        SCIM_AUTH_FAILURE_LIMIT="2",
        SCIM_PROVISIONING_LOG="false",
    )
    bad = _scim(quiet, "scim_nope", client="192.0.2.44")
    assert [bad.get("/Users").status_code for _ in range(3)] == [401, 401, 429]
    assert [e.client for e in get_state(quiet).store.query_log(LogQuery())] == ["203.0.113.7"]  # none added
    get_state(quiet).close()


def test_expired_and_revoked_tokens_are_filed_under_their_organization(svc: Flask, st: ScimState) -> None:
    st.store.create_org("acme")
    token_id, token = st.store.create_token("acme", expires_in=timedelta(days=1))
    st.store.clock = lambda: datetime.now(UTC) + timedelta(days=2)
    reply = _scim(svc, token).get("/Users")
    assert reply.status_code == 401 and "expired at" in reply.get_json()["detail"]
    (entry,) = st.store.query_log(LogQuery(org_name="acme"))
    assert entry.token_id == token_id and entry.status == 401 and "expired" in (entry.detail or "")
