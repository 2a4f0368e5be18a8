"""RFC 7644 protocol behaviour over HTTP: resources, meta, ETags, filters, paging, PATCH, errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from api_helpers import ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, Scim, assert_scim_error, make_app, new_org, user

from scim_service.extension import get_state
from scim_service.model import SeatPolicy

# -- resources, meta, headers -------------------------------------------------------------------------


def test_create_returns_201_location_meta_and_etag(scim):
    response = scim.post("/Users", user("alice", email="alice@acme.test", externalId="ext-1"))
    assert response.status_code == 201
    assert response.mimetype == "application/scim+json"
    body = response.get_json()
    assert body["schemas"] == [USER_SCHEMA]
    assert response.headers["Location"] == body["meta"]["location"]
    assert body["meta"]["location"].endswith(f"/scim/v2/Users/{body['id']}")
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["created"].endswith("Z") and body["meta"]["lastModified"].endswith("Z")
    assert response.headers["ETag"] == body["meta"]["version"]
    assert body["externalId"] == "ext-1"
    got = scim.get(f"/Users/{body['id']}")
    assert got.get_json() == body


def test_requests_in_plain_json_are_accepted(scim):
    response = scim.client.post(
        "/scim/v2/Users",
        data=f'{{"schemas": ["{USER_SCHEMA}"], "userName": "bob"}}',
        headers=scim.headers({"Content-Type": "application/json"}),
    )
    assert response.status_code == 201


def test_enterprise_extension_round_trip(scim):
    body = user("alice", **{"schemas": [USER_SCHEMA, ENTERPRISE]})
    body[ENTERPRISE] = {"employeeNumber": "7", "department": "R&D", "manager": {"value": "boss-id"}}
    created = scim.post("/Users", body).get_json()
    assert ENTERPRISE in created["schemas"]
    assert created[ENTERPRISE]["department"] == "R&D"
    assert created[ENTERPRISE]["manager"]["value"] == "boss-id"


def test_put_replaces_and_etags_guard_writes(scim):
    alice = scim.create_user("alice", title="Engineer")
    path = f"/Users/{alice['id']}"
    first = alice["meta"]["version"]
    assert scim.get(path, headers={"If-None-Match": first}).status_code == 304

    replaced = scim.put(path, user("alice", displayName="Alice"), headers={"If-Match": first})
    assert replaced.status_code == 200
    body = replaced.get_json()
    assert "title" not in body and body["displayName"] == "Alice"
    assert body["meta"]["version"] != first
    assert scim.get(path, headers={"If-None-Match": first}).status_code == 200

    assert_scim_error(scim.put(path, user("alice"), headers={"If-Match": first}), 412)
    assert_scim_error(
        scim.patch(path, [{"op": "replace", "path": "title", "value": "x"}], headers={"If-Match": first}), 412
    )
    assert_scim_error(scim.delete(path, headers={"If-Match": first}), 412)
    assert scim.get(path).get_json()["displayName"] == "Alice"


# -- filters and paging ----------------------------------------------------------------------------------


def test_eq_filters_on_the_attributes_idps_query(scim):
    scim.create_user("alice", email="alice@acme.test", externalId="A-1", displayName="Alice A")
    scim.create_user("bob", email="bob@acme.test", externalId="B-2", displayName="Bob B")
    scim.create_group("Staff")
    cases = {
        'userName eq "ALICE"': ["alice"],
        'externalId eq "B-2"': ["bob"],
        'emails.value eq "bob@acme.test"': ["bob"],
        'displayName eq "Alice A"': ["alice"],
        'userName eq "nobody"': [],
    }
    for expression, expected in cases.items():
        body = scim.get("/Users", query_string={"filter": expression}).get_json()
        assert sorted(r["userName"] for r in body["Resources"]) == expected, expression
        assert body["totalResults"] == len(expected)
    groups = scim.get("/Groups", query_string={"filter": 'displayName eq "Staff"'}).get_json()
    assert [g["displayName"] for g in groups["Resources"]] == ["Staff"]


def test_paging_is_one_based_with_exact_totals(scim):
    for i in range(7):
        scim.create_user(f"user{i}")
    seen = []
    for start in (1, 4, 7):
        page = scim.get("/Users", query_string={"startIndex": start, "count": 3}).get_json()
        assert page["totalResults"] == 7 and page["startIndex"] == start
        seen += [r["userName"] for r in page["Resources"]]
    assert sorted(seen) == [f"user{i}" for i in range(7)]
    only_total = scim.get("/Users", query_string={"count": 0}).get_json()
    assert only_total["totalResults"] == 7 and only_total["Resources"] == []
    clamped = scim.get("/Users", query_string={"startIndex": -5, "count": 2}).get_json()
    assert clamped["startIndex"] == 1 and clamped["itemsPerPage"] == 2


def test_attributes_projection(scim):
    scim.create_user("alice", email="alice@acme.test", title="Engineer")
    body = scim.get("/Users", query_string={"attributes": "userName"}).get_json()
    [only] = body["Resources"]
    assert set(only) == {"schemas", "id", "userName"}


# -- PATCH ---------------------------------------------------------------------------------------------


def test_patch_replaces_simple_attributes_and_active(scim, state):
    # The default organization (auto, no IdP User-Agent): every tolerance, 200 for a User PATCH.
    alice = scim.create_user("alice", title="Engineer")
    path = f"/Users/{alice['id']}"
    body = scim.patch(
        path, [{"op": "Replace", "path": "title", "value": "Lead"}, {"op": "replace", "value": {"active": "False"}}]
    )
    assert body.status_code == 200
    assert body.get_json()["title"] == "Lead" and body.get_json()["active"] is False


def test_group_member_add_and_remove(scim, state):
    # The default organization (auto, no IdP User-Agent): every tolerance, 200 for a User PATCH.
    a, b, c = (scim.create_user(n)["id"] for n in "abc")
    group = scim.create_group("staff", [a])
    path = f"/Groups/{group['id']}"

    def members() -> list[str]:
        return sorted(m["value"] for m in scim.get(path).get_json().get("members", []))

    added = scim.patch(path, [{"op": "add", "path": "members", "value": [{"value": b}, {"value": c}]}])
    assert added.status_code == 204 and added.headers["ETag"] != group["meta"]["version"]
    assert members() == sorted([a, b, c])
    assert scim.patch(path, [{"op": "remove", "path": f'members[value eq "{b}"]'}]).status_code == 204
    assert members() == sorted([a, c])
    entra = scim.patch(path, [{"op": "Remove", "path": "members", "value": [{"value": a}]}])
    assert entra.status_code == 204 and members() == [c]
    assert [g["value"] for g in scim.get(f"/Users/{c}").get_json()["groups"]] == [group["id"]]
    # Asking for attributes gets the resource back (200), projected.
    renamed = scim.patch(
        path, [{"op": "replace", "path": "displayName", "value": "people"}], query_string={"attributes": "displayName"}
    )
    assert renamed.status_code == 200
    assert renamed.get_json()["displayName"] == "people" and "members" not in renamed.get_json()
    full = scim.patch(
        path, [{"op": "add", "path": "members", "value": [{"value": a}]}], query_string={"excludedAttributes": "meta"}
    )
    assert sorted(m["value"] for m in full.get_json()["members"]) == sorted([a, c])


def test_group_put_replaces_members(scim):
    a, b = (scim.create_user(n)["id"] for n in "ab")
    group = scim.create_group("staff", [a])
    body = {"schemas": [GROUP_SCHEMA], "displayName": "staff", "members": [{"value": b}]}
    replaced = scim.put(f"/Groups/{group['id']}", body).get_json()
    assert [m["value"] for m in replaced["members"]] == [b]


# -- rule 9: bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ("not json", "invalidSyntax"),
        ("[1, 2]", "invalidSyntax"),
        (f'{{"schemas": ["{USER_SCHEMA}"]}}', "invalidValue"),
        (f'{{"schemas": ["{USER_SCHEMA}"], "userName": 42}}', "invalidValue"),
        (f'{{"schemas": ["{USER_SCHEMA}"], "userName": "x", "emails": "x@y"}}', "invalidValue"),
        (f'{{"schemas": ["{USER_SCHEMA}"], "userName": "x", "active": "maybe"}}', "invalidValue"),
        ('{"userName": "x"}', "invalidValue"),
    ],
)
def test_bad_user_bodies_get_400_and_write_nothing(scim, body, scim_type):
    response = scim.client.post(
        "/scim/v2/Users", data=body, headers=scim.headers({"Content-Type": "application/scim+json"})
    )
    assert_scim_error(response, 400, scim_type)
    assert scim.get("/Users").get_json()["totalResults"] == 0


def test_bad_filters_and_paths(scim):
    alice = scim.create_user("alice", title="Engineer")
    assert_scim_error(scim.get("/Users", query_string={"filter": "userName eq"}), 400, "invalidFilter")
    assert_scim_error(scim.get("/Users", query_string={"filter": 'nosuch eq "x"'}), 400, "invalidFilter")
    path = f"/Users/{alice['id']}"
    bad_patches = [
        ([{"op": "replace", "path": "id", "value": "new"}], "mutability"),
        ([{"op": "replace", "path": "nosuch", "value": "x"}], "invalidPath"),
        ([{"op": "replace", "path": "emails[type eq", "value": "x"}], "invalidPath"),
        ([{"op": "remove"}], "noTarget"),
        (
            [{"op": "replace", "path": "title", "value": "ok"}, {"op": "replace", "path": "active", "value": "maybe"}],
            "invalidValue",
        ),
    ]
    for operations, scim_type in bad_patches:
        assert_scim_error(scim.patch(path, operations), 400, scim_type)
    assert scim.get(path).get_json()["title"] == "Engineer"  # every failed PATCH left it as it was
    bad_op = scim.request(
        "PATCH", path, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "move"}]}
    )
    assert_scim_error(bad_op, 400)


def test_unknown_routes_and_methods_are_scim_errors(scim):
    assert_scim_error(scim.get("/Nothing"), 404)
    assert_scim_error(scim.get("/Users/no-such-id"), 404)
    assert_scim_error(scim.request("DELETE", "/Users"), 405)
    assert_scim_error(scim.request("POST", "/ServiceProviderConfig", {}), 405)
    assert_scim_error(scim.get("/Bulk"), 405)


def test_oversized_body_is_413(tmp_path):
    app = make_app(tmp_path, SCIM_MAX_BODY_BYTES=1000)
    client = Scim(app.test_client(), new_org(get_state(app), "acme"))
    assert_scim_error(client.post("/Users", user("a", title="x" * 2000)), 413)


# -- discovery -------------------------------------------------------------------------------------------


def test_discovery_endpoints(scim):
    spc = scim.get("/ServiceProviderConfig").get_json()
    assert spc["patch"]["supported"] is True and spc["filter"]["supported"] is True
    assert spc["bulk"] == {"supported": True, "maxOperations": 1000, "maxPayloadSize": 1048576}
    assert spc["etag"]["supported"] is True
    assert spc["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    schemas = scim.get("/Schemas").get_json()
    ids = {s["id"] for s in schemas["Resources"]}
    assert {USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE} <= ids
    assert scim.get(f"/Schemas/{USER_SCHEMA}").get_json()["name"] == "User"
    types = scim.get("/ResourceTypes").get_json()
    assert {t["name"] for t in types["Resources"]} == {"User", "Group"}
    assert scim.get("/ResourceTypes/User").get_json()["endpoint"] == "/Users"
    assert_scim_error(scim.get("/Schemas/urn:nothing"), 404)


def test_base_path_is_configurable(tmp_path):
    app = make_app(tmp_path, SCIM_BASE_PATH="/api/sch/scim/v2")
    client = Scim(app.test_client(), new_org(get_state(app), "acme"), base="/api/sch/scim/v2")
    created = client.create_user("alice")
    assert created["meta"]["location"].endswith(f"/api/sch/scim/v2/Users/{created['id']}")
    assert app.test_client().get("/scim/v2/Users").status_code == 404


# -- rule 8: races -----------------------------------------------------------------------------------------


def _race(app, token: str, bodies: list[dict]) -> list[int]:
    def post(body: dict) -> int:
        return Scim(app.test_client(), token).post("/Users", body).status_code

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_race_on_one_username_has_exactly_one_winner(app, state):
    token = new_org(state, "race", max_seats=100)
    statuses = _race(app, token, [user("same") for _ in range(12)])
    assert statuses.count(201) == 1 and statuses.count(409) == 11
    assert Scim(app.test_client(), token).get("/Users").get_json()["totalResults"] == 1


@pytest.mark.parametrize("policy", [SeatPolicy.ALL, SeatPolicy.ACTIVE])
def test_race_on_the_last_seat_has_exactly_one_winner(app, state, policy):
    token = new_org(state, f"seats-{policy.value}", max_seats=3, seat_policy=policy)
    client = Scim(app.test_client(), token)
    client.create_user("one")
    client.create_user("two")
    statuses = _race(app, token, [user(f"racer{i}") for i in range(12)])
    assert statuses.count(201) == 1 and statuses.count(403) == 11
    assert client.get("/Users").get_json()["totalResults"] == 3


def test_patch_remove_active_leaves_it_unassigned_and_the_user_active(scim, state):
    alice = scim.create_user("alice")
    removed = scim.patch(f"/Users/{alice['id']}", [{"op": "remove", "path": "active"}])
    assert removed.status_code == 200 and "active" not in removed.get_json()
    assert state.backend.count_seats(state.store.get_org("acme")) == 1
    # Filters see what is rendered: an unassigned attribute matches no comparison (evaluator semantics).
    assert scim.get("/Users", query_string={"filter": "active pr"}).get_json()["totalResults"] == 0
    assert scim.get("/Users", query_string={"filter": "active ne false"}).get_json()["totalResults"] == 1


def test_endpoints_answer_in_any_case(scim, state):
    """Microsoft's validator sends /users and /groups: each endpoint answers whatever its case, like its
    routed spelling, and the provisioning log files it under the routed name."""
    created = scim.post("/users", user("casey"))
    assert created.status_code == 201 and created.get_json()["meta"]["location"].endswith(
        f"/Users/{created.get_json()['id']}"
    )
    uid = created.get_json()["id"]
    assert scim.get(f"/USERS/{uid}").get_json()["userName"] == "casey"
    assert scim.get("/uSeRs", query_string={"filter": 'userName eq "casey"'}).get_json()["totalResults"] == 1
    group = scim.post("/groups", {"schemas": [GROUP_SCHEMA], "displayName": "cased"})
    assert group.status_code == 201
    gid = group.get_json()["id"]
    patched = scim.patch(f"/GROUPS/{gid}", [{"op": "add", "path": "members", "value": [{"value": uid}]}])
    assert patched.status_code == 204  # the default organization: a Group PATCH answers 204
    assert scim.get(f"/Groups/{gid}").get_json()["members"][0]["value"] == uid
    assert scim.get("/serviceproviderconfig").status_code == 200
    assert scim.get("/resourcetypes/User").get_json()["name"] == "User"
    assert scim.get("/schemas").get_json()["totalResults"] >= 2
    assert scim.delete(f"/users/{uid}").status_code == 204
    assert_scim_error(scim.get(f"/users/{uid}"), 404)
    assert_scim_error(scim.get("/userz"), 404)
    assert_scim_error(scim.post("/users", {"schemas": [USER_SCHEMA]}), 400, "invalidValue")
    kinds = {e.resource_type for e in state.store.recent_log(limit=50)}
    assert "Users" in kinds and "Groups" in kinds and "users" not in kinds
