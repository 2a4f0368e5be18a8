"""Client mistakes that reach the store are 400s, not 503s or 500s, and cost is bounded (issue 11).

Run over the API on every backend (the ``scim`` fixture's SQLite, PostgreSQL and LDAP variants):

- /Bulk: a bulkId that is not a string, a reference to a bulkId no operation defines, a bulkId given
  twice and an operation that is not an object are a 400 before any operation runs (nothing is
  written); bulkId references are resolved in linear time.
- A ``co``/``sw``/``ew`` literal too long for the store is 400 ``invalidFilter``; over-long values and a
  huge ``startIndex`` are a 400 or an honest answer, never a 503; a NUL character is a 400 or stored,
  and its provisioning-log row is kept.
- A ``cursor`` to a backend that declares no cursor paging is 400 ``invalidCursor``.
- An unreachable directory is a 503 with ``Retry-After`` whose detail names no host, port or DN.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Scim, assert_scim_error, new_org, user

from scim_service.app import create_app
from scim_service.extension import ScimState, get_state
from scim_service.servicedb.migrate import upgrade_service_db

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def bulk(scim: Scim, operations: list[Any], **extra: Any) -> Any:
    return scim.post("/Bulk", {"schemas": [BULK], "Operations": operations, **extra})


def total_users(scim: Scim) -> int:
    listed = scim.get("/Users")
    assert listed.status_code == 200, listed.get_data(as_text=True)
    return listed.get_json()["totalResults"]


# -- /Bulk -----------------------------------------------------------------------------------------

FIRST = {"method": "POST", "path": "/Users", "bulkId": "first", "data": user("first.op")}


@pytest.mark.parametrize(
    ("operations", "scim_type", "words"),
    [
        pytest.param([FIRST, {"method": "POST", "path": "/Users", "bulkId": 5, "data": user("b")}],
                     "invalidValue", "bulkId must be a string", id="bulkId-number"),
        pytest.param([FIRST, {"method": "POST", "path": "/Users", "bulkId": ["x"], "data": user("b")}],
                     "invalidValue", "bulkId must be a string", id="bulkId-list"),
        pytest.param([FIRST, {"method": "PATCH", "path": "/Users/bulkId:ghost", "data": {}}, 7],
                     "invalidSyntax", "must be an object", id="non-object-and-unresolved"),
        pytest.param([FIRST, {"method": "PATCH", "path": "/Users/bulkId:ghost",
                              "data": {"schemas": [PATCH], "Operations": []}}],
                     "invalidValue", "no operation of this request defines", id="unresolved-path"),
        pytest.param([FIRST, {"method": "POST", "path": "/Groups", "bulkId": "g",
                              "data": {"displayName": "g", "members": [{"value": "bulkId:ghost"}]}}],
                     "invalidValue", "no operation of this request defines", id="unresolved-member"),
        pytest.param([FIRST, {**FIRST, "data": user("again")}], "invalidValue", "more than one", id="duplicate"),
    ],
)  # fmt: skip
def test_unrunnable_bulk_requests_are_400_before_any_operation_runs(
    scim: Scim, operations: list[Any], scim_type: str, words: str
) -> None:
    body = assert_scim_error(bulk(scim, operations), 400, scim_type)
    assert words in body["detail"], body
    assert total_users(scim) == 0  # the valid first operation did not run


def test_a_chain_of_1000_bulk_references_resolves_in_linear_time(scim: Scim) -> None:
    # Operation i refers to the bulkId of operation i+1, in the worst order: every operation waits for
    # the next one. The last fails in its loader, so none reaches the store and the time measured is
    # the scheduling (quadratic passes took 9 s). A bound, not a benchmark.
    count = 1000
    ops: list[dict[str, Any]] = [
        {"method": "PATCH", "path": f"/Users/bulkId:b{i + 1}", "bulkId": f"b{i}",
         "data": {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": str(i)}]}}
        for i in range(count - 1)
    ]  # fmt: skip
    ops.append({"method": "POST", "path": "/Users", "bulkId": f"b{count - 1}", "data": {"userName": 1}})
    started = time.monotonic()
    response = bulk(scim, ops)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["Operations"]
    assert len(results) == count and all(r["status"] == "400" for r in results)
    assert "names an operation of this request that failed" in results[0]["response"]["detail"]
    assert elapsed < 2.0, f"1,000 chained references took {elapsed:.1f}s"


def test_reversed_bulk_references_run_each_operation_once_after_its_target(scim: Scim) -> None:
    count = 30
    ops: list[dict[str, Any]] = [
        {"method": "PATCH", "path": f"/Users/bulkId:b{i + 1}", "bulkId": f"b{i}",
         "data": {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": f"t{i}"}]}}
        for i in range(count - 1)
    ]  # fmt: skip
    ops.append({"method": "POST", "path": "/Users", "bulkId": f"b{count - 1}", "data": user("chained")})
    response = bulk(scim, ops)
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["Operations"]
    assert [r["status"] for r in results] == ["200"] * (count - 1) + ["201"]
    locations = {r["location"] for r in results}
    assert len(locations) == 1  # every PATCH reached the one user
    found = scim.get("/Users", query_string={"filter": 'userName eq "chained"'}).get_json()["Resources"]
    assert found[0]["title"] == "t0"  # the first operation of the request ran last


# -- filters and values the store cannot take ------------------------------------------------------


@pytest.mark.parametrize("attr", ["userName", "emails.value"])
@pytest.mark.parametrize("op", ["co", "sw", "ew"])
def test_a_substring_literal_too_long_for_the_store_is_400_invalid_filter(scim: Scim, op: str, attr: str) -> None:
    scim.create_user("present")
    literal = "x" * 60_000  # past SQLite's 50,000-byte LIKE pattern limit; fits a .search body
    started = time.monotonic()
    response = scim.post(
        "/Users/.search",
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": f'{attr} {op} "{literal}"'},
    )
    assert time.monotonic() - started < 5
    if response.status_code == 200:  # a store with no such limit answers honestly: nothing matches
        assert response.get_json()["totalResults"] == 0
    else:
        assert_scim_error(response, 400, "invalidFilter")
    assert total_users(scim) == 1


def test_an_over_long_value_is_400_not_503(scim: Scim) -> None:
    response = scim.post("/Users", user("long.title", title="t" * 200_000))
    assert response.status_code in (201, 400), response.get_data(as_text=True)
    if response.status_code == 400:
        assert_scim_error(response, 400, "invalidValue")
    assert total_users(scim) == (1 if response.status_code == 201 else 0)
    long_name = scim.post("/Users", user("n" * 100_000))
    assert long_name.status_code in (201, 400), long_name.get_data(as_text=True)
    if long_name.status_code == 400:
        assert_scim_error(long_name, 400, "invalidValue")


@pytest.mark.parametrize("start", ["2147483647", "2147483648", "99999999999999999999"])
def test_a_huge_start_index_is_an_empty_page_or_400_never_503(scim: Scim, start: str) -> None:
    scim.create_user("only.one")
    response = scim.get("/Users", query_string={"startIndex": start, "count": "10"})
    if response.status_code == 200:
        body = response.get_json()
        assert body["totalResults"] == 1 and body.get("Resources", []) == [], body
    else:
        assert_scim_error(response, 400, "invalidValue")


@pytest.mark.parametrize(
    "where",
    ["id", "filter", "value", "patch"],
)
def test_a_nul_character_is_400_and_the_request_is_logged(scim: Scim, state: ScimState, where: str) -> None:
    existing = scim.create_user("nul.target")
    if where == "id":
        response = scim.get("/Users/abc%00def")
        statuses = {404, 400}
    elif where == "filter":
        response = scim.get("/Users", query_string={"filter": 'userName eq "a\u0000b"'})
        statuses = {200, 400}
    elif where == "value":
        response = scim.post("/Users", user("nul.value", title="a\u0000b"))
        statuses = {201, 400}
    else:
        response = scim.patch(f"/Users/{existing['id']}", [{"op": "replace", "path": "title", "value": "x\u0000"}])
        statuses = {200, 204, 400}
    assert response.status_code in statuses, (response.status_code, response.get_data(as_text=True))
    if state.service_engine.dialect.name == "postgresql" and state.backend.name == "sql" and where != "id":
        assert response.status_code == 400, "PostgreSQL text cannot hold a NUL: a 400, not a 503"
    if response.status_code >= 400:
        assert_scim_error(response, response.status_code)
    assert total_users(scim) in (1, 2)
    # The provisioning log kept the request (a NUL in its path or detail must not lose the row).
    statuses_logged = [e.status for e in state.store.recent_log(limit=5)]
    assert response.status_code in statuses_logged, statuses_logged
    if response.status_code >= 400:
        assert statuses_logged.count(response.status_code) >= 1


# -- cursor paging on a backend that does not offer it ---------------------------------------------


@pytest.mark.parametrize("cursor", ["", "bm90LWEtY3Vyc29y"])
def test_a_cursor_request_to_a_backend_without_cursor_paging_is_400_invalid_cursor(
    scim: Scim, state: ScimState, cursor: str
) -> None:
    scim.create_user("one")
    scim.create_user("two")
    backend = state.backend
    # The same real store, declaring no cursor paging (as a backend without it does).
    backend.capabilities = dataclasses.replace(backend.capabilities, cursor=False)  # type: ignore[misc]
    try:
        for path in ("/Users", "/Groups"):
            # The raw client: Scim.get skips a cursor request to a backend that declares no cursor paging.
            response = scim.client.get(
                scim.base + path, headers=scim.headers(), query_string={"cursor": cursor, "count": "1"}
            )
            body = assert_scim_error(response, 400, "invalidCursor")
            assert "startIndex" in body["detail"]
        searched = scim.post(
            "/Users/.search",
            {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "cursor": cursor, "count": 1},
        )
        assert_scim_error(searched, 400, "invalidCursor")
        assert "pagination" not in scim.get("/ServiceProviderConfig").get_json()
        indexed = scim.get("/Users", query_string={"startIndex": "2", "count": "1"})
        assert indexed.status_code == 200 and indexed.get_json()["totalResults"] == 2
    finally:
        del backend.capabilities  # back to the class's declaration


# -- an unreachable store: 503 with Retry-After, no address in the detail ---------------------------


def test_an_unreachable_directory_is_a_503_with_retry_after_naming_no_host(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(
        {
            "SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/scim.db",
            "SCIM_BACKEND": "ldap",
            "SCIM_LDAP_URL": f"ldap://127.0.0.1:{port}",
            "SCIM_LDAP_BASE_DN": "dc=tenant-secret,dc=example,dc=org",
            "SCIM_LDAP_CONNECT_TIMEOUT": "1",
            "SCIM_LDAP_TIMEOUT": "1",
            "SCIM_LOG_LEVEL": "WARNING",
        },
        environ={},
    )
    state = get_state(app)
    try:
        upgrade_service_db(state.service_engine)
        scim = Scim(app.test_client(), new_org(state, "acme"))
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            response = scim.get("/Users")
        assert time.monotonic() - started < 5
        body = assert_scim_error(response, 503)
        assert int(response.headers["Retry-After"]) > 0
        for secret in ("127.0.0.1", str(port), "tenant-secret"):
            assert secret not in body["detail"], body
        assert str(port) in caplog.text  # the operator finds the address in the service log
    finally:
        state.close()
