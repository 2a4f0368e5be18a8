"""Hostile requests, each under every documented limit but the one it attacks, over HTTP on every backend.

Each one must be answered with a well-formed SCIM error (status, Error schema, scimType), quickly,
with nothing written, and the organization's list must still be readable afterwards. The ``scim``
fixture runs every test here on SQLite, PostgreSQL and LDAP (tests/conftest.py).
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any

import pytest
from api_helpers import BASE, ERROR_SCHEMA, USER_SCHEMA, Scim, make_app, new_org

from scim_service.errors import Unavailable
from scim_service.extension import get_state
from scim_service.hookspecs import hookimpl
from scim_service.query.parser import MAX_FILTER_DEPTH, MAX_FILTER_TERMS
from scim_service.safejson import MAX_JSON_DEPTH

TIME_BOUND = 2.0  # seconds: a hostile request is answered at once, not after a worker timeout
SURROGATE = "\\ud83d"  # as a JSON escape: what a truncated emoji from a Java or .NET IdP looks like


def _user_json(user_name: str = "mallory", extra: str = "") -> bytes:
    return f'{{"schemas": ["{USER_SCHEMA}"], "userName": "{user_name}"{extra}}}'.encode()


def _nested(depth: int) -> str:
    return '{"x": ' * depth + "1" + "}" * depth


# (id, method, path below the base, raw body or None, status, scimType or None)
HOSTILE: list[tuple[str, str, str, bytes | None, int, str | None]] = [
    ("json-1000-deep", "POST", "/Users", b"[" * 1000 + b"]" * 1000, 400, "invalidSyntax"),
    (
        "json-too-deep-value",
        "POST",
        "/Users",
        _user_json(extra=f', "title": {_nested(MAX_JSON_DEPTH)}'),
        400,
        "invalidSyntax",
    ),
    ("surrogate-userName", "POST", "/Users", _user_json(f"bob{SURROGATE}"), 400, "invalidValue"),
    ("surrogate-key", "POST", "/Users", _user_json(extra=f', "ti{SURROGATE}tle": "x"'), 400, "invalidValue"),
    ("surrogate-low-alone", "POST", "/Users", _user_json("\\ude00bob"), 400, "invalidValue"),
    ("duplicate-key", "POST", "/Users", _user_json(extra=', "userName": "eve"'), 400, "invalidSyntax"),
    ("duplicate-key-case", "POST", "/Users", _user_json(extra=', "USERNAME": "eve"'), 400, "invalidSyntax"),
    (
        "search-surrogate-filter",
        "POST",
        "/Users/.search",
        f'{{"filter": "userName eq \\"{SURROGATE}\\""}}'.encode(),
        400,
        "invalidValue",
    ),
    ("filter-surrogate-escape", "GET", '/Users?filter=userName eq "\\ud83d"', None, 400, "invalidFilter"),
    (
        "filter-1000-parens",
        "GET",
        "/Users?filter=" + "(" * 1000 + "userName pr" + ")" * 1000,
        None,
        400,
        "invalidFilter",
    ),
    ("filter-200-not", "GET", "/Users?filter=" + "not(" * 200 + "userName pr" + ")" * 200, None, 400, "invalidFilter"),
    (
        "filter-depth-17",
        "GET",
        "/Users?filter=" + "(" * (MAX_FILTER_DEPTH + 1) + "userName pr" + ")" * (MAX_FILTER_DEPTH + 1),
        None,
        400,
        "invalidFilter",
    ),
    ("filter-950-terms", "GET", "/Users?filter=" + " or ".join(['userName eq "a"'] * 950), None, 400, "invalidFilter"),
    (
        "filter-101-value-path-terms",
        "GET",
        "/Users?filter=" + " or ".join([f'emails[value eq "{i}@x.org"]' for i in range(MAX_FILTER_TERMS + 1)]),
        None,
        400,
        "invalidFilter",
    ),
    (
        "attributes-5000",
        "GET",
        "/Users?attributes=" + ",".join(f"a{i}" for i in range(5000)),
        None,
        400,
        "invalidValue",
    ),
    ("excluded-101", "GET", "/Users?excludedAttributes=" + ",".join(["title"] * 101), None, 400, "invalidValue"),
    (
        "search-attributes-5000",
        "POST",
        "/Users/.search",
        ('{"attributes": [' + ",".join(f'"a{i}"' for i in range(5000)) + "]}").encode(),
        400,
        "invalidValue",
    ),
    ("url-id-not-utf8", "GET", "/Users/%ED%A0%BD", None, 404, None),
    ("url-id-not-utf8-delete", "DELETE", "/Users/%ED%A0%BD", None, 404, None),
    (
        "url-id-not-utf8-patch",
        "PATCH",
        "/Groups/%ED%A0%BD",
        b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], '
        b'"Operations": [{"op": "replace", "path": "displayName", "value": "x"}]}',
        404,
        None,
    ),
    ("trace", "TRACE", "/Users", None, 405, None),
    ("unknown-method", "FROB", "/Users", None, 405, None),
    ("double-slash", "GET", "//Users", None, 404, None),
    ("unknown-path", "GET", "/Nope/42", None, 404, None),
]


def assert_scim_error(response: Any, status: int, scim_type: str | None) -> dict[str, Any]:
    """``response`` is the SCIM error asked for (RFC 7644 §3.12), uncacheable."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/scim+json"
    assert response.headers.get("Cache-Control") == "no-store"
    body = response.get_json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert isinstance(body.get("detail"), str) and body["detail"]
    assert body.get("scimType") == scim_type
    return body


def _snapshot(scim: Scim) -> list[dict[str, Any]]:
    response = scim.get("/Users?count=100")
    assert response.status_code == 200, response.get_json()
    return sorted(response.get_json()["Resources"], key=lambda r: r["id"])


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "scim_type"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_request_is_refused_cleanly(
    scim: Scim, method: str, path: str, body: bytes | None, status: int, scim_type: str | None
) -> None:
    scim.create_user("alice", title="before")
    before = _snapshot(scim)
    started = time.perf_counter()
    response = scim.client.open(
        BASE + path, method=method, data=body, headers=scim.headers(), content_type="application/scim+json"
    )
    elapsed = time.perf_counter() - started
    assert_scim_error(response, status, scim_type)
    assert elapsed < TIME_BOUND
    assert _snapshot(scim) == before  # nothing written, and the list is still readable


@pytest.mark.parametrize(
    "value", [f"x{SURROGATE}", [f"x{SURROGATE}"], {"given{SURROGATE}Name": "x"}], ids=["str", "list", "key"]
)
def test_surrogate_in_patch_is_not_stored(scim: Scim, value: Any) -> None:
    user = scim.create_user("alice")
    before = _snapshot(scim)
    text = value if isinstance(value, str) else None
    raw = (
        '{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": '
        '[{"op": "replace", "path": "title", "value": '
        + (f'"{text}"' if text is not None else _json_literal(value))
        + "}]}"
    )
    response = scim.client.patch(
        f"{BASE}/Users/{user['id']}", data=raw, headers=scim.headers(), content_type="application/scim+json"
    )
    assert_scim_error(response, 400, "invalidValue")
    assert _snapshot(scim) == before
    assert scim.get(f"/Users/{user['id']}").status_code == 200


def _json_literal(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return "{" + ", ".join(f'"{k}": "{v}"' for k, v in value.items()) + "}"


# What gunicorn hands the app for a chunked upload: no Content-Length, a stream it terminates itself.
CHUNKED = {"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"}


def test_chunked_body_over_the_limit_is_413(scim: Scim) -> None:
    limit = scim.client.application.config["SCIM_MAX_BODY_BYTES"]
    before = _snapshot(scim)
    padding = b" " * (limit + 1)  # valid JSON whitespace: only the size is wrong
    started = time.perf_counter()
    response = scim.client.post(
        f"{BASE}/Users",
        input_stream=io.BytesIO(_user_json("chunky")[:-1] + padding + b"}"),
        headers=scim.headers(),
        content_type="application/scim+json",
        environ_overrides=CHUNKED,
    )
    assert time.perf_counter() - started < TIME_BOUND
    assert response.request.content_length is None
    assert_scim_error(response, 413, None)
    assert _snapshot(scim) == before


def test_chunked_body_under_the_limit_is_served(scim: Scim) -> None:
    response = scim.client.post(
        f"{BASE}/Users",
        input_stream=io.BytesIO(_user_json("chunky")),
        headers=scim.headers(),
        content_type="application/scim+json",
        environ_overrides=CHUNKED,
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["userName"] == "chunky"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/Users", "GET, POST"),
        ("FROB", "/Users/some-id", "DELETE, GET, PATCH, PUT"),
        ("DELETE", "/Users", "GET, POST"),
        ("PUT", "/Groups", "GET, POST"),
        ("TRACE", "/Groups/some-id", "DELETE, GET, PATCH, PUT"),
        ("GET", "/Bulk", "POST"),
        ("TRACE", "/Bulk", "POST"),
        ("PATCH", "/Users/.search", "POST"),
        ("POST", "/ServiceProviderConfig", "GET"),
        ("TRACE", "/Schemas/urn:x", "GET"),
        ("DELETE", "/Me", "GET"),
        ("TRACE", "/Me", "GET"),
    ],
)
def test_405_names_the_endpoints_own_methods(scim: Scim, method: str, path: str, allowed: str) -> None:
    """RFC 9110 §15.5.6: a 405 lists the methods the endpoint has, whether the route or the view refused."""
    response = scim.client.open(f"{BASE}{path}", method=method, headers=scim.headers(), json={})
    assert_scim_error(response, 405, None)
    assert response.headers["Allow"] == allowed
    assert f"allowed: {allowed}" in response.get_json()["detail"]


def test_routing_errors_outside_the_base_path_stay_the_host_apps(scim: Scim) -> None:
    response = scim.client.open("/elsewhere", method="TRACE")
    assert response.status_code in (404, 405)
    assert response.mimetype != "application/scim+json"


@pytest.mark.parametrize("path", ["/Users", "/ServiceProviderConfig", "/Schemas", "/Users/nobody"])
def test_every_scim_response_is_no_store(scim: Scim, path: str) -> None:
    response = scim.get(path)
    assert response.status_code in (200, 404)
    assert response.headers["Cache-Control"] == "no-store"


def test_unauthenticated_error_is_no_store(scim: Scim) -> None:
    response = scim.client.get(f"{BASE}/Users")
    assert_scim_error(response, 401, None)


def test_access_token_in_the_query_is_never_written_in_clear(scim: Scim, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-query-token-value"
    with caplog.at_level(logging.INFO, logger="scim_service.request"):
        response = scim.get(f"/Users?access_token={secret}&count=1")
    assert response.status_code == 200
    assert secret not in caplog.text
    assert "access_token=[redacted]" in caplog.text
    state = scim.client.application.extensions["scim"]
    paths = [entry.path for entry in state.store.recent_log(limit=20)]
    assert any("access_token=[redacted]" in p for p in paths), paths
    assert not any(secret in p for p in paths)


def test_gunicorn_access_log_prints_no_query_string() -> None:
    import runpy
    from pathlib import Path

    conf = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    assert "%(r)s" not in conf["access_log_format"] and "%(q)s" not in conf["access_log_format"]
    assert "%(U)s" in conf["access_log_format"]


@pytest.mark.parametrize("password", [987654321, 98765.4321, True, ["hunter2-in-a-list"]], ids=str)
def test_a_password_value_is_never_echoed(scim: Scim, password: Any, caplog: pytest.LogCaptureFixture) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": "pw-user", "password": password}
    with caplog.at_level(logging.INFO):
        response = scim.post("/Users", body)
        patched = scim.patch("/Users/nobody", [{"op": "replace", "value": {"password": password}}])
    detail = assert_scim_error(response, 400, "invalidValue")["detail"]
    shown = str(password).lower() if not isinstance(password, list) else password[0]
    assert shown not in detail.lower()
    assert "password" in detail
    assert patched.status_code in (400, 404)
    assert shown not in patched.get_data(as_text=True).lower()
    assert shown not in caplog.text.lower()


class _StorageDown:
    """A host's authentication that finds its database gone, with the internals a driver would name."""

    @hookimpl
    def scim_authenticate(self, request: Any, config: Any) -> None:
        raise Unavailable("The database is unavailable: connection to 10.9.8.7 port 5433 failed")


def test_unauthenticated_callers_get_a_generic_503(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    from flask import Flask

    from scim_service.extension import ScimService

    app = Flask("host")
    app.config.update(SCIM_DATABASE_URL=f"sqlite:///{tmp_path}/scim.db")
    ScimService(app, plugins=[_StorageDown()])
    app.extensions["scim"].upgrade()
    with caplog.at_level(logging.WARNING):
        response = app.test_client().get(f"{BASE}/Users", headers={"Authorization": "Bearer whatever"})
    body = assert_scim_error(response, 503, None)
    assert "10.9.8.7" not in body["detail"] and "5433" not in body["detail"]
    assert "10.9.8.7" in caplog.text  # the operator still sees why


def test_host_header_is_not_reflected_when_the_public_url_is_set(tmp_path: Any) -> None:
    app = make_app(tmp_path, SCIM_PUBLIC_URL="https://scim.example.com/")
    scim = Scim(app.test_client(), new_org(get_state(app), "acme", max_seats=10))
    response = scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "loc"}, headers={"Host": "evil.test"})
    assert response.status_code == 201, response.get_json()
    location = response.get_json()["meta"]["location"]
    assert location.startswith("https://scim.example.com/scim/v2/Users/")
    assert response.headers["Location"] == location
    get_state(app).close()


@pytest.mark.parametrize(("proxies", "expected"), [(0, "http://localhost/"), (1, "https://public.example/")])
def test_forwarded_headers_are_trusted_only_for_configured_proxies(tmp_path: Any, proxies: int, expected: str) -> None:
    app = make_app(tmp_path, SCIM_TRUSTED_PROXIES=proxies)
    scim = Scim(app.test_client(), new_org(get_state(app), "acme", max_seats=10))
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example"}
    response = scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "fwd"}, headers=forwarded)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["meta"]["location"].startswith(expected + "scim/v2/Users/")
    get_state(app).close()


def test_projection_is_resolved_once_per_page_not_per_resource(scim: Scim) -> None:
    from scim_service.schemas import projection

    for i in range(12):
        scim.create_user(f"proj{i}", title="t")
    names = [f"unknown{i}" for i in range(99)] + ["userName"]
    projection._selection.cache_clear()
    response = scim.post(
        "/Users/.search",
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "attributes": names, "count": 50},
    )
    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["Resources"]) == 12
    assert all(set(r) <= {"schemas", "id", "userName"} for r in response.get_json()["Resources"])
    # The names are resolved a handful of times per request (relations, page), not once per user.
    assert projection._selection.cache_info().misses <= 2


def test_the_guard_fixture_catches_a_non_scim_error_under_the_base_path(scim: Scim) -> None:
    app = scim.client.application
    app.add_url_rule(f"{BASE}/html-error", "html_error", lambda: ("<h1>teapot</h1>", 418))
    with pytest.raises(AssertionError, match="not a SCIM error"):
        scim.client.get(f"{BASE}/html-error")
