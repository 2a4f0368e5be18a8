"""The admin web page through the Flask test client on a real SQLite store.

Who gets in (the password, a host hook, never a SCIM token), the CSRF check on every form, the pages'
content (seats, tokens, the log with links to the troubleshooting guide) and what each action changes
in the store. The real-browser walk through the same pages is tests/test_admin_browser.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from api_helpers import USER_SCHEMA, make_app
from flask import Flask
from flask.testing import FlaskClient

from scim_service.admin.session import COOKIE_NAME, AdminSession, SessionCodec
from scim_service.admin.troubleshooting import guide, parse
from scim_service.config import ConfigError
from scim_service.extension import ScimService, get_state
from scim_service.hookspecs import AuthRequest, hookimpl
from scim_service.servicedb.store import LogQuery

PASSWORD = "a long admin password for tests"


@pytest.fixture
def admin_app(tmp_path: Path) -> Iterator[Flask]:
    # An explicit key: deriving one from the password (scrypt) costs ~0.15 s per app.
    app = make_app(tmp_path, SCIM_ADMIN_PASSWORD=PASSWORD, SCIM_ADMIN_SECRET_KEY="test key " * 4)
    store = get_state(app).store
    store.create_org("acme", max_seats=2)
    store.create_org("globex")
    yield app
    get_state(app).close()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def _login(client: FlaskClient, password: str = PASSWORD, next_url: str = "") -> Any:
    page = client.get("/admin/login")
    return client.post("/admin/login", data={"csrf_token": _csrf(page.text), "password": password, "next": next_url})


def _scim(client: FlaskClient, token: str, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
    return client.open(f"/scim/v2{path}", method=method, json=body, headers={"Authorization": f"Bearer {token}"})


# -- off unless enabled --------------------------------------------------------------------------------


def test_the_page_is_off_without_a_password_or_a_hook(tmp_path):
    app = make_app(tmp_path)
    try:
        assert app.test_client().get("/admin/").status_code == 404
        assert app.test_client().get("/admin/login").status_code == 404
    finally:
        get_state(app).close()


# -- who gets in --------------------------------------------------------------------------------------


def test_every_page_needs_a_login(admin_app):
    client = admin_app.test_client()
    for path in ("/admin/", "/admin/orgs/acme/tokens", "/admin/log", "/admin/troubleshooting"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/admin/login?next=")


def test_a_scim_token_never_opens_the_page(admin_app):
    _token_id, token = get_state(admin_app).store.create_token("acme")
    client = admin_app.test_client()
    assert _scim(client, token, "GET", "/Users").status_code == 200  # a good SCIM token...
    response = client.get("/admin/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]  # ...is nobody here
    assert _login(client, password=token).status_code == 401


def test_a_wrong_password_is_refused_and_the_right_one_logs_in(admin_app):
    client = admin_app.test_client()
    refused = _login(client, password="guess")
    assert refused.status_code == 401 and "not right" in refused.text
    assert client.get("/admin/").status_code == 302
    accepted = _login(client, next_url="/admin/log")
    assert accepted.status_code == 303 and accepted.headers["Location"] == "/admin/log"
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/admin/", "/scim/v2/Users", "javascript:x"])
def test_login_never_redirects_off_the_admin_page(admin_app, target):
    response = _login(admin_app.test_client(), next_url=target)
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"


def test_the_session_cookie_is_locked_down(admin_app):
    response = _login(admin_app.test_client())
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie


def test_a_forged_or_expired_cookie_is_no_session(admin_app, monkeypatch):
    client = admin_app.test_client()
    _login(client)
    value = client.get_cookie(COOKIE_NAME, path="/admin").value
    client.set_cookie(COOKIE_NAME, value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"), path="/admin")
    assert client.get("/admin/").status_code == 302
    codec = admin_app.extensions["scim_admin"]["codec"]
    stale = codec.dump(AdminSession().logged_in("admin"))
    import itsdangerous.timed

    real = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: real(self) + 8 * 3600 + 1)
    assert codec.load(stale) is None  # eight hours and a second later


def test_a_key_derived_from_the_password_is_shared_by_workers_and_ends_with_the_password(tmp_path):
    apps = [make_app(tmp_path, SCIM_ADMIN_PASSWORD=p) for p in (PASSWORD, PASSWORD, PASSWORD + " changed")]
    try:
        first = apps[0].test_client()
        _login(first)
        cookie = first.get_cookie(COOKIE_NAME, path="/admin").value
        for app, admitted in zip(apps[1:], (True, False), strict=True):
            other = app.test_client()
            other.set_cookie(COOKIE_NAME, cookie, path="/admin")
            assert other.get("/admin/").status_code == (200 if admitted else 302)
    finally:
        for app in apps:
            get_state(app).close()


def test_logout_ends_the_session(admin_app):
    client = admin_app.test_client()
    _login(client)
    page = client.get("/admin/")
    response = client.post("/admin/logout", data={"csrf_token": _csrf(page.text)})
    assert response.status_code == 303
    assert client.get("/admin/").status_code == 302


class HostAdmins:
    """A host app's own admission: a header its reverse proxy sets after its own login."""

    @hookimpl
    def scim_admin_authenticate(self, request: AuthRequest, config: Mapping[str, Any]) -> str | None:
        user = request.headers.get("x-host-admin")
        return user if user in {"carol"} else None


def _host(tmp_path: Path, **config: Any) -> Flask:
    host = Flask("host")
    host.config.update({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/scim.db", "SECRET_KEY": "host secret", **config})
    ScimService(host, plugins=[HostAdmins()])
    get_state(host).upgrade()
    get_state(host).store.create_org("acme", max_seats=3)
    return host


def test_a_host_hook_enables_and_guards_the_page(tmp_path):
    host = _host(tmp_path)
    try:
        client = host.test_client()
        assert client.get("/admin/").status_code == 403  # no password login to fall back on
        assert client.get("/admin/", headers={"X-Host-Admin": "mallory"}).status_code == 403
        page = client.get("/admin/", headers={"X-Host-Admin": "carol"})
        assert page.status_code == 200 and "carol" in page.text and "acme" in page.text
        created = client.post(
            "/admin/orgs/acme/tokens", data={"csrf_token": _csrf(page.text)}, headers={"X-Host-Admin": "carol"}
        )
        assert created.status_code == 201
        assert len(get_state(host).store.list_tokens("acme")) == 1
    finally:
        get_state(host).close()


def test_a_host_hook_without_any_signing_key_stops_start_up(tmp_path):
    host = Flask("host")
    host.config["SCIM_DATABASE_URL"] = f"sqlite:///{tmp_path}/scim.db"
    with pytest.raises(ConfigError, match="SCIM_ADMIN_SECRET_KEY"):
        ScimService(host, plugins=[HostAdmins()])


def test_the_admin_path_may_not_shadow_a_host_route(tmp_path):
    host = Flask("host")
    host.config.update({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/scim.db", "SCIM_ADMIN_PASSWORD": PASSWORD})
    host.add_url_rule("/admin/", "own_admin", lambda: "the host's admin")
    with pytest.raises(ConfigError, match="SCIM_ADMIN_PATH"):
        ScimService(host)


# -- CSRF ---------------------------------------------------------------------------------------------


def test_a_form_without_the_sessions_csrf_token_changes_nothing(admin_app):
    store = get_state(admin_app).store
    token_id, _token = store.create_token("acme")
    client = admin_app.test_client()
    _login(client)
    other = admin_app.test_client()  # another browser's token is no good either
    foreign = _csrf(other.get("/admin/login").text)
    for data in ({}, {"csrf_token": ""}, {"csrf_token": foreign}):
        assert client.post("/admin/orgs/acme/tokens", data=data).status_code == 400
        assert client.post(f"/admin/tokens/{token_id}/revoke", data=data).status_code == 400
    assert [t.id for t in store.list_tokens("acme")] == [token_id]
    assert not store.get_token(token_id).revoked


def test_login_itself_needs_the_csrf_token(admin_app):
    client = admin_app.test_client()
    client.get("/admin/login")
    response = client.post("/admin/login", data={"password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


# -- the pages ----------------------------------------------------------------------------------------


def test_organizations_show_seats_used_of_max(admin_app):
    store = get_state(admin_app).store
    _id, token = store.create_token("acme")
    client = admin_app.test_client()
    for name in ("ann", "bob"):
        assert _scim(client, token, "POST", "/Users", {"schemas": [USER_SCHEMA], "userName": name}).status_code == 201
    _login(client)
    page = client.get("/admin/").text
    acme = re.search(r'<tr data-org="acme"[^>]*>(.*?)</tr>', page, re.S)
    globex = re.search(r'<tr data-org="globex"[^>]*>(.*?)</tr>', page, re.S)
    assert acme and globex
    assert re.sub(r"\s+", " ", re.search(r'class="seats">(.*?)</td>', acme.group(1), re.S).group(1)).strip() == (
        "2 of 2"
    )
    assert 'class="full"' in re.search(r'<tr data-org="acme"[^>]*>', page).group(0)
    assert "0 of unlimited" in re.sub(r"\s+", " ", globex.group(1))


def test_create_shows_the_token_once_and_revoke_stops_it(admin_app):
    client = admin_app.test_client()
    _login(client)
    page = client.get("/admin/orgs/acme/tokens")
    created = client.post(
        "/admin/orgs/acme/tokens", data={"csrf_token": _csrf(page.text), "description": "Okta production"}
    )
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    token = re.search(r'id="new-token">([^<]+)<', created.text).group(1)
    [info] = get_state(admin_app).store.list_tokens("acme")
    assert info.description == "Okta production"
    assert token not in client.get("/admin/orgs/acme/tokens").text  # shown once only
    assert _scim(client, token, "GET", "/Users").status_code == 200
    revoked = client.post(f"/admin/tokens/{info.id}/revoke", data={"csrf_token": _csrf(created.text)})
    assert revoked.status_code == 303
    assert "revoked" in client.get(revoked.headers["Location"]).text
    assert _scim(client, token, "GET", "/Users").status_code == 401


def test_unknown_organization_or_token_is_a_404_page(admin_app):
    client = admin_app.test_client()
    _login(client)
    assert client.get("/admin/orgs/nope/tokens").status_code == 404
    csrf = _csrf(client.get("/admin/").text)
    assert client.post("/admin/tokens/ffffffffffff/revoke", data={"csrf_token": csrf}).status_code == 404


def test_failed_requests_in_the_log_link_to_their_troubleshooting_entry(admin_app):
    store = get_state(admin_app).store
    _id, token = store.create_token("acme")
    client = admin_app.test_client()
    for name in ("ann", "bob", "cyd"):  # the third is over the two seats
        _scim(client, token, "POST", "/Users", {"schemas": [USER_SCHEMA], "userName": name})
    _scim(client, token, "GET", '/Users?filter=userName eq "unterminated')
    _login(client)
    page = client.get("/admin/log?org=acme&errors=1").text
    rows = re.findall(r'<tr class="failed" data-status="(\d+)"[^>]*>(.*?)</tr>', page, re.S)
    assert sorted(status for status, _ in rows) == ["400", "403"]
    links = {status: re.search(r'class="help" href="([^"]+)"', row).group(1) for status, row in rows}
    assert links["403"] == "/admin/troubleshooting#403-seat-limit-reached"
    assert links["400"] == "/admin/troubleshooting#400-invalidfilter"
    guide_page = client.get(links["403"].split("#")[0]).text
    for link in links.values():
        assert f'id="{link.split("#")[1]}"' in guide_page


def test_log_text_from_clients_is_escaped(admin_app):
    store = get_state(admin_app).store
    _id, token = store.create_token("acme")
    client = admin_app.test_client()
    _scim(client, token, "GET", "/Users?filter=<script>alert(1)</script>")
    _login(client)
    page = client.get("/admin/log").text
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_pages_forbid_scripts_framing_and_caching(admin_app):
    response = admin_app.test_client().get("/admin/login")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "<script" not in response.text
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def _log_rows(client: FlaskClient, query: str) -> list[dict[str, str]]:
    page = client.get("/admin/log?" + query)
    assert page.status_code == 200, page.text
    return [
        {"status": status, "request_id": rid, "html": html}
        for status, rid, html in re.findall(
            r'<tr class="\w+" data-status="(\d+)" data-request-id="([^"]*)">(.*?)</tr>', page.text, re.S
        )
    ]


def test_the_log_takes_the_clis_filters(admin_app):
    store = get_state(admin_app).store
    _id, token = store.create_token("acme")
    client = admin_app.test_client()
    ann = _scim(client, token, "POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "ann@example.com"})
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    patched = client.patch(
        f"/scim/v2/Users/{ann.json['id']}",
        json=patch,
        headers={"Authorization": f"Bearer {token}", "X-Request-Id": "okta-req-42"},
    )
    assert patched.status_code == 200 and patched.headers["X-Request-Id"] == "okta-req-42"
    _scim(client, token, "POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "ANN@example.com", "emails": "x"})
    _scim(client, token, "POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "bob"})
    _login(client)
    # A user by userName finds the PATCH too, which named the user only by id.
    rows = _log_rows(client, "user=Ann@Example.com")
    assert sorted(r["status"] for r in rows) == ["200", "201", "400"]
    assert all("bob" not in r["html"] for r in rows)
    assert [r["status"] for r in _log_rows(client, "user=Ann@Example.com&status=4xx")] == ["400"]
    [one] = _log_rows(client, "request_id=okta-req-42")
    assert one["status"] == "200" and "PATCH" in one["html"]
    assert len(_log_rows(client, "since=1h&org=acme")) == 4
    assert _log_rows(client, "until=1h") == []
    assert _log_rows(client, "since=2000-01-01&until=2000-01-02") == []
    for bad, says in (("since=yesterday", "since"), ("status=teapot", "status"), ("org=nope", "nope")):
        page = client.get("/admin/log?" + bad)
        assert page.status_code == 400 and says in page.text


def test_a_token_with_a_lifetime_and_a_rotation_with_grace(admin_app):
    store = get_state(admin_app).store
    client = admin_app.test_client()
    _login(client)
    csrf = _csrf(client.get("/admin/orgs/acme/tokens").text)
    created = client.post("/admin/orgs/acme/tokens", data={"csrf_token": csrf, "expires_in": "90d"})
    assert created.status_code == 201
    old_token = re.search(r'id="new-token">([^<]+)<', created.text).group(1)
    [old] = store.list_tokens("acme")
    assert old.expires_at is not None and 89 <= (old.expires_at - old.created).days <= 90
    assert old.prefix and old_token.startswith(old.prefix) and f"{old.prefix}…" in created.text
    bad = client.post("/admin/orgs/acme/tokens", data={"csrf_token": csrf, "expires_in": "soon"})
    assert bad.status_code == 400 and "not a duration" in bad.text
    assert len(store.list_tokens("acme")) == 1
    rotated = client.post(f"/admin/tokens/{old.id}/rotate", data={"csrf_token": csrf, "grace": "1h"})
    assert rotated.status_code == 201
    new_token = re.search(r'id="new-token">([^<]+)<', rotated.text).group(1)
    assert "stops working at" in rotated.text
    for token in (old_token, new_token):  # both work during the grace
        assert _scim(client, token, "GET", "/Users").status_code == 200
    assert store.get_token(old.id).state == "rotating"
    new_id = store.get_token(old.id).replaced_by
    assert "rotating: replaced by" in client.get("/admin/orgs/acme/tokens").text
    now = client.post(f"/admin/tokens/{new_id}/rotate", data={"csrf_token": csrf, "grace": "0s"})
    assert now.status_code == 201
    assert _scim(client, new_token, "GET", "/Users").status_code == 401  # no grace: gone at once
    again = client.post(f"/admin/tokens/{new_id}/rotate", data={"csrf_token": csrf, "grace": "1h"})
    assert again.status_code == 400  # a revoked token cannot be rotated
    assert client.post("/admin/tokens/ffffffffffff/rotate", data={"csrf_token": csrf}).status_code == 404


def test_login_attempts_are_limited_per_address_across_workers(tmp_path):
    apps = [
        make_app(tmp_path, SCIM_ADMIN_PASSWORD=PASSWORD, SCIM_ADMIN_SECRET_KEY="k" * 32, SCIM_AUTH_FAILURE_LIMIT=3)
        for _ in range(2)
    ]  # two workers on one database
    try:
        statuses = [_login(apps[i % 2].test_client(), password="guess").status_code for i in range(3)]
        assert statuses == [401, 401, 401]
        refused = _login(apps[1].test_client())  # the right password, but over the limit
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert "Too many login attempts" in refused.text
        assert _login(apps[0].test_client()).status_code == 429
        assert get_state(apps[0]).store.query_log(LogQuery(limit=10)) == []  # counted, not logged
    finally:
        for app in apps:
            get_state(app).close()


# -- the guide ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "scim_type", "anchor"),
    [
        (401, None, "401-unauthorized"),
        (403, None, "403-seat-limit-reached"),
        (409, "uniqueness", "409-uniqueness-on-create"),
        (400, "invalidFilter", "400-invalidfilter"),
        (400, "invalidSyntax", "400-invalidvalue-invalidsyntax"),
        (400, "noTarget", "400-invalidpath-notarget-mutability"),
        (404, None, "404-on-a-user"),
        (412, None, "412-precondition-failed"),
        (413, None, "413"),
        (429, None, "429-too-many-requests"),
        (503, None, "503"),
    ],
)
def test_the_guide_has_an_entry_for_each_error_an_idp_shows(status, scim_type, anchor):
    entry = guide().entry_for(status, scim_type)
    assert entry is not None and entry.anchor == anchor
    assert f'id="{anchor}"' in guide().html


def test_the_guide_ships_as_the_docs_file():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md").read_text()
    assert parse(docs) == guide()


def test_the_guide_renderer_escapes_and_drops_unsafe_links():
    html = parse("| a | b | c |\n|---|---|---|\n| **400 x** <img> | [y](javascript:alert(1)) | `<b>` |\n").html
    assert "<img>" not in html and "&lt;img&gt;" in html
    assert 'href="javascript' not in html
    assert "<code>&lt;b&gt;</code>" in html


def test_session_codec_round_trip():
    codec = SessionCodec(b"k" * 32, 60)
    session = AdminSession().logged_in("admin")
    assert codec.load(codec.dump(session)) == session
    assert SessionCodec(b"other key", 60).load(codec.dump(session)) is None
    assert codec.load("garbage") is None and codec.load(None) is None
