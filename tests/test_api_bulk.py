"""/Bulk (RFC 7644 §3.7): bulkId references, failOnErrors, limits, and the product rules per operation."""

from __future__ import annotations

import pytest
from api_helpers import GROUP_SCHEMA, Scim, assert_scim_error, make_app, new_org, user

from scim_service.extension import get_state

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def bulk(scim: Scim, operations: list[dict], **extra):
    return scim.post("/Bulk", {"schemas": [BULK], "Operations": operations, **extra})


def test_user_created_and_added_to_a_group_in_one_request(scim):
    response = bulk(
        scim,
        [
            # The group refers to a user created later in the same request: it waits for it.
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g1",
                "data": {"schemas": [GROUP_SCHEMA], "displayName": "staff", "members": [{"value": "bulkId:u1"}]},
            },
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user("alice")},
            {
                "method": "PATCH",
                "path": "/Users/bulkId:u1",
                "data": {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]},
            },
        ],
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"]
    statuses = {op.get("bulkId", op["method"]): op["status"] for op in body["Operations"]}
    assert statuses == {"g1": "201", "u1": "201", "PATCH": "200"}
    user_id = next(op for op in body["Operations"] if op.get("bulkId") == "u1")["location"].rsplit("/", 1)[-1]
    alice = scim.get(f"/Users/{user_id}").get_json()
    assert alice["title"] == "Lead"
    assert [g["display"] for g in alice["groups"]] == ["staff"]


def test_each_operation_obeys_the_product_rules(tmp_path):
    app = make_app(tmp_path)
    scim = Scim(app.test_client(), new_org(get_state(app), "small", max_seats=2))
    existing = scim.create_user("taken")
    scim.patch(f"/Users/{existing['id']}", [{"op": "replace", "path": "active", "value": False}])
    ops = [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": user("new-one")},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": user("TAKEN", title="back")},  # reactivation
        {"method": "POST", "path": "/Users", "bulkId": "c", "data": user("NEW-ONE")},  # uniqueness
        {"method": "POST", "path": "/Users", "bulkId": "d", "data": user("third")},  # seat limit
        {"method": "DELETE", "path": "/Users/no-such-id"},
    ]
    results = bulk(scim, ops).get_json()["Operations"]
    assert [r["status"] for r in results] == ["201", "200", "409", "403", "404"]
    assert results[2]["response"]["scimType"] == "uniqueness"
    assert "seat limit" in results[3]["response"]["detail"].lower()
    assert results[1]["location"].endswith(existing["id"])
    assert scim.get("/Users").get_json()["totalResults"] == 2


def test_fail_on_errors_stops_processing(scim):
    ops = [
        {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"userName": 1}},
        {"method": "POST", "path": "/Users", "bulkId": "y", "data": user("never")},
    ]
    results = bulk(scim, ops, failOnErrors=1).get_json()["Operations"]
    assert [r["status"] for r in results] == ["400"]
    assert scim.get("/Users").get_json()["totalResults"] == 0


def test_unresolvable_and_cyclic_bulk_ids_fail_cleanly(scim):
    unknown = [
        {"method": "POST", "path": "/Users", "bulkId": "u", "data": user("first")},
        {"method": "PATCH", "path": "/Users/bulkId:nobody", "data": {"schemas": [PATCH], "Operations": []}},
    ]
    body = assert_scim_error(bulk(scim, unknown), 400, "invalidValue")  # before any operation ran
    assert "'nobody'" in body["detail"]
    assert scim.get("/Users").get_json()["totalResults"] == 0
    ops = [
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "g1",
            "data": {"schemas": [GROUP_SCHEMA], "displayName": "a", "members": [{"value": "bulkId:g2"}]},
        },
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "g2",
            "data": {"schemas": [GROUP_SCHEMA], "displayName": "b", "members": [{"value": "bulkId:g1"}]},
        },
    ]
    results = bulk(scim, ops).get_json()["Operations"]
    assert [(r["status"], r["response"]["scimType"]) for r in results] == [("400", "invalidValue")] * 2
    assert scim.get("/Groups").get_json()["totalResults"] == 0


def test_limits_are_enforced_with_413(tmp_path):
    app = make_app(tmp_path, SCIM_BULK_MAX_OPERATIONS=2, SCIM_BULK_MAX_PAYLOAD_BYTES=2000)
    scim = Scim(app.test_client(), new_org(get_state(app), "acme"))
    three = [{"method": "POST", "path": "/Users", "bulkId": str(i), "data": user(f"u{i}")} for i in range(3)]
    assert_scim_error(bulk(scim, three), 413)
    big = [{"method": "POST", "path": "/Users", "bulkId": "a", "data": user("a", title="x" * 3000)}]
    assert_scim_error(bulk(scim, big), 413)
    assert scim.get("/Users").get_json()["totalResults"] == 0
    spc = scim.get("/ServiceProviderConfig").get_json()
    assert spc["bulk"] == {"supported": True, "maxOperations": 2, "maxPayloadSize": 2000}


def test_bad_bulk_envelopes(scim):
    assert_scim_error(scim.post("/Bulk", {"Operations": []}), 400, "invalidValue")
    assert_scim_error(scim.post("/Bulk", {"schemas": [BULK], "Operations": []}), 400, "invalidSyntax")
    bad_method = bulk(scim, [{"method": "MOVE", "path": "/Users/x"}]).get_json()["Operations"]
    assert bad_method[0]["status"] == "400"


def test_bulk_operations_follow_the_organizations_profile(scim, state):
    capitalised = {
        "method": "PATCH",
        "path": "/Users/bulkId:u",
        "data": {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
    }
    create = {"method": "POST", "path": "/Users", "bulkId": "u", "data": user("entra-user")}
    state.store.set_profile("acme", "generic")
    strict = bulk(scim, [create, capitalised]).get_json()["Operations"]
    assert [r["status"] for r in strict] == ["201", "400"]  # generic: the RFC's lower-case ops and real booleans

    state.store.set_profile("acme", "entra")
    create2 = {**create, "data": user("entra-user-2")}
    lenient = bulk(scim, [create2, capitalised]).get_json()["Operations"]
    assert [r["status"] for r in lenient] == ["201", "200"]
    user_id = lenient[0]["location"].rsplit("/", 1)[-1]
    assert scim.get(f"/Users/{user_id}").get_json()["active"] is False


def test_bulk_validates_configured_schema_extensions(tmp_path, api_database):
    import json

    if api_database == "ldap":
        pytest.skip(
            "the ldap backend does not declare custom_schemas (tests/test_api_extensions.py checks the refusal)"
        )

    ext = "urn:example:params:scim:schemas:extension:acme:2.0:User"
    extensions = tmp_path / "extensions.json"
    extensions.write_text(
        json.dumps(
            {
                "schemas": [
                    {
                        "id": ext,
                        "name": "AcmeUser",
                        "resourceType": "User",
                        "attributes": [{"name": "badge", "type": "integer"}],
                    }
                ]
            }
        )
    )
    app = make_app(tmp_path, SCIM_SCHEMA_EXTENSIONS_FILE=str(extensions))
    client = Scim(app.test_client(), new_org(get_state(app), "acme"))
    good = user("a", **{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ext], ext: {"badge": 7}})
    bad = user("b", **{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ext], ext: {"badge": "seven"}})
    ops = [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": good},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": bad},
    ]
    results = bulk(client, ops).get_json()["Operations"]
    assert [r["status"] for r in results] == ["201", "400"]
    user_id = results[0]["location"].rsplit("/", 1)[-1]
    assert client.get(f"/Users/{user_id}").get_json()[ext] == {"badge": 7}
