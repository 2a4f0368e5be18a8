"""Client mistakes that reach the store are 400s, not 503s or 500s, and cost is bounded (issue 11).

Run over the API on every backend (the ``scim`` fixture's SQLite, PostgreSQL and LDAP variants):

- /Bulk: a bulkId that is not a string, a reference to a bulkId no operation defines, a bulkId given
  twice and an operation that is not an object are a 400 before any operation runs (nothing is
  written); bulkId references are resolved in linear time.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from api_helpers import Scim, assert_scim_error, user

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
