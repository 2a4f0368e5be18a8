"""Each IdP's documented request sequence replayed over HTTP, checking the resulting state.

Create, look up by userName and externalId in another case, update by PUT and by PATCH, deactivate,
reactivate, push a group, change its membership and page through an import, in the request shapes
Okta, Entra ID (with and without ``aadOptscim062020``) and OneLogin send; and what the strict
``generic`` profile answers to the same deviations. Runs on SQLite and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, Scim, assert_scim_error

OKTA_UA = "Okta SCIM Client 1.0.0"
ENTRA_UA = "Microsoft Azure AD SCIM provisioning 1.0.0"
ADSCIM = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group"


class IdP:
    """A SCIM client that sends one IdP's User-Agent on every request."""

    def __init__(self, scim: Scim, user_agent: str | None) -> None:
        self.scim = scim
        self.user_agent = user_agent

    def _headers(self) -> dict[str, str]:
        return {"User-Agent": self.user_agent} if self.user_agent else {}

    def get(self, path: str, **kw: Any):
        return self.scim.get(path, headers=self._headers(), **kw)

    def post(self, path: str, body: Any, **kw: Any):
        return self.scim.post(path, body, headers=self._headers(), **kw)

    def put(self, path: str, body: Any, **kw: Any):
        return self.scim.put(path, body, headers=self._headers(), **kw)

    def patch(self, path: str, operations: list[dict[str, Any]], **kw: Any):
        return self.scim.patch(path, operations, headers=self._headers(), **kw)

    def delete(self, path: str, **kw: Any):
        return self.scim.delete(path, headers=self._headers(), **kw)

    def find(self, filter_text: str, **params: Any) -> list[dict[str, Any]]:
        response = self.get("/Users", query_string={"filter": filter_text, **params})
        assert response.status_code == 200, response.get_json()
        return response.get_json()["Resources"]


def _last_tolerances(state: Any) -> str | None:
    """The tolerances the newest write request needed, from the provisioning log."""
    return next(e for e in state.store.recent_log(limit=20) if e.method != "GET").tolerances


# -- Okta ------------------------------------------------------------------------------------------


def okta_user(login: str, first: str, last: str) -> dict[str, Any]:
    """The body Okta's SCIM 2.0 client POSTs (and PUTs, with the id) for a user."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": login,
        "name": {"givenName": first, "familyName": last},
        "emails": [{"primary": True, "value": login, "type": "work"}],
        "displayName": f"{first} {last}",
        "locale": "en-US",
        "externalId": "00u1abcd" + first,
        "groups": [],
        "password": "not-stored-1!",
        "active": True,
    }


def test_okta_user_lifecycle(scim: Scim, state: Any) -> None:
    okta = IdP(scim, OKTA_UA)
    assert okta.find('userName eq "isabella.ross@example.com"', startIndex=1, count=100) == []
    created = okta.post("/Users", okta_user("isabella.ross@example.com", "Isabella", "Ross"))
    assert created.status_code == 201
    user = created.get_json()
    path = f"/Users/{user['id']}"
    assert "password" not in user and user["active"] is True

    # Lookups in another case: userName is caseExact=false, externalId caseExact=true (RFC 7643 §3.1, §4.1).
    [found] = okta.find('userName eq "ISABELLA.ROSS@EXAMPLE.COM"')
    assert found["id"] == user["id"]
    assert okta.find('externalId eq "00u1abcdIsabella"')[0]["id"] == user["id"]
    assert okta.find('externalId eq "00U1ABCDISABELLA"') == []

    # Profile update: Okta PUTs the whole user.
    body = okta_user("isabella.ross@example.com", "Isabella", "Ross-Smith") | {"id": user["id"], "title": "CTO"}
    put = okta.put(path, body)
    assert put.status_code == 200
    assert okta.get(path).get_json()["name"]["familyName"] == "Ross-Smith"
    assert okta.get(path).get_json()["title"] == "CTO"

    # Deactivate and reactivate: a path-less replace of active.
    off = okta.patch(path, [{"op": "replace", "value": {"active": False}}])
    assert off.status_code == 200 and off.get_json()["active"] is False
    assert okta.find('userName eq "isabella.ross@example.com"')[0]["active"] is False
    on = okta.patch(path, [{"op": "replace", "value": {"active": True}}])
    assert on.status_code == 200 and okta.get(path).get_json()["active"] is True
    assert okta.get(path).get_json()["title"] == "CTO"  # deactivation kept everything
    assert _last_tolerances(state) == "okta"  # the profile only: Okta's requests are RFC-shaped


def test_okta_group_push(scim: Scim, state: Any) -> None:
    okta = IdP(scim, OKTA_UA)
    a = okta.post("/Users", okta_user("a@example.com", "Ann", "A")).get_json()
    b = okta.post("/Users", okta_user("b@example.com", "Ben", "B")).get_json()
    created = okta.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Engineering", "members": []})
    assert created.status_code == 201
    group = created.get_json()
    path = f"/Groups/{group['id']}"
    assert okta.get("/Groups", query_string={"filter": 'displayName eq "engineering"'}).get_json()["totalResults"] == 1

    renamed = okta.patch(path, [{"op": "replace", "value": {"id": group["id"], "displayName": "Eng"}}])
    assert renamed.status_code == 204 and renamed.data == b""  # Okta accepts 204; members are never read
    added = okta.patch(
        path,
        [
            {
                "op": "add",
                "path": "members",
                "value": [{"value": a["id"], "display": "a@example.com"}, {"value": b["id"]}],
            }
        ],
    )
    assert added.status_code == 204
    removed = okta.patch(path, [{"op": "remove", "path": f'members[value eq "{a["id"]}"]'}])
    assert removed.status_code == 204
    state_now = okta.get(path).get_json()
    assert state_now["displayName"] == "Eng"
    assert [m["value"] for m in state_now["members"]] == [b["id"]]
    assert okta.get(f"/Users/{b['id']}").get_json()["groups"][0]["value"] == group["id"]

    # Asking for attributes gets 200 with the resource; excluding members does not read them.
    asked = okta.patch(
        path,
        [{"op": "add", "path": "members", "value": [{"value": a["id"]}]}],
        query_string={"excludedAttributes": "members"},
    )
    assert asked.status_code == 200 and "members" not in asked.get_json()
    assert asked.get_json()["displayName"] == "Eng"
    assert {m["value"] for m in okta.get(path).get_json()["members"]} == {a["id"], b["id"]}
    # A display the client gave is kept as given (RFC 7643 §4.2), not replaced by the user's name (the
    # ldap backend keeps only member DNs and always computes it).
    if state.backend.name == "ldap":
        return
    okta.patch(path, [{"op": "remove", "path": f'members[value eq "{a["id"]}"]'}])
    okta.patch(path, [{"op": "add", "path": "members", "value": [{"value": a["id"], "display": "Annie"}]}])
    displays = {m["value"]: m.get("display") for m in okta.get(path).get_json()["members"]}
    assert displays[a["id"]] == "Annie"


def test_paging_through_an_import(scim: Scim) -> None:
    okta = IdP(scim, OKTA_UA)
    ids = {okta.post("/Users", okta_user(f"u{i}@example.com", f"U{i}", "Import")).get_json()["id"] for i in range(7)}
    seen: list[str] = []
    start = 1
    while True:
        page = okta.get("/Users", query_string={"startIndex": start, "count": 3}).get_json()
        assert page["totalResults"] == 7 and page["startIndex"] == start
        seen += [r["id"] for r in page["Resources"]]
        if start + page["itemsPerPage"] > page["totalResults"]:
            break
        start += page["itemsPerPage"]
    assert len(seen) == 7 and set(seen) == ids


# -- Microsoft Entra ID ------------------------------------------------------------------------------


def entra_user(user_name: str, external_id: str) -> dict[str, Any]:
    """The body Entra ID POSTs for a user (from Microsoft's SCIM guide, with the enterprise extension)."""
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "displayName": "Test User",
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        ENTERPRISE: {"department": "Sales"},
    }


def test_entra_user_lifecycle_without_the_flag(scim: Scim, state: Any) -> None:
    entra = IdP(scim, ENTRA_UA)
    manager = entra.post("/Users", entra_user("boss@contoso.com", "boss")).get_json()
    # Entra looks the user up before creating it, by userName (another case) and by externalId.
    assert entra.find('userName eq "Test_User@Contoso.com"') == []
    created = entra.post("/Users", entra_user("test_user@contoso.com", "0a21f0f2-8d2a"))
    assert created.status_code == 201
    user = created.get_json()
    path = f"/Users/{user['id']}"
    assert entra.find('userName eq "Test_User@Contoso.com"')[0]["id"] == user["id"]
    assert entra.find('externalId eq "0a21f0f2-8d2a"')[0]["id"] == user["id"]
    assert entra.find('externalId eq "0A21F0F2-8D2A"') == []  # externalId is caseExact

    patched = entra.patch(
        path,
        [
            {"op": "Replace", "path": "displayName", "value": "Updated Name"},
            {"op": "Add", "path": 'emails[type eq "home"].value', "value": "home@contoso.com"},
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": manager["id"]},
            {"op": "Replace", "path": "active", "value": "False"},
        ],
    )
    assert patched.status_code == 204  # entra: a User PATCH answers 204, as Microsoft's validator expects
    doc = entra.get(path).get_json()
    assert doc["displayName"] == "Updated Name" and doc["active"] is False
    assert {"type": "home", "value": "home@contoso.com"} in doc["emails"]
    assert doc[ENTERPRISE]["manager"]["value"] == manager["id"] and doc[ENTERPRISE]["department"] == "Sales"
    logged = _last_tolerances(state)
    assert logged == "entra: capitalised_ops, value_path_creates, manager_bare_string, string_booleans"

    assert entra.patch(path, [{"op": "Replace", "path": "active", "value": "True"}]).status_code == 204
    assert entra.get(path).get_json()["active"] is True

    # Unassigned in Entra: DELETE (soft); assigned again: the POST reactivates the same record.
    assert entra.delete(path).status_code == 204
    assert_scim_error(entra.get(path), 404)
    again = entra.post("/Users", entra_user("test_user@contoso.com", "0a21f0f2-8d2a"))
    assert again.status_code == 200 and again.get_json()["id"] == user["id"]


def test_entra_with_aadoptscim062020(scim: Scim, state: Any) -> None:
    """With the flag Entra sends RFC ops, booleans and member filters, but path-less maps with qualified keys."""
    entra = IdP(scim, None)  # no Entra User-Agent: the flag alone names Entra under auto
    user = entra.post("/Users", entra_user("flag@contoso.com", "ext-1"), query_string={"aadOptscim062020": ""})
    assert user.status_code == 201, user.get_json()
    user = user.get_json()
    response = entra.patch(
        f"/Users/{user['id']}",
        [
            {
                "op": "replace",
                "value": {
                    "displayName": "Flagged",
                    "name.givenName": "Henry",
                    'emails[type eq "work"].value': "henry@contoso.com",
                    f"{ENTERPRISE}:employeeNumber": "42",
                    "active": False,
                },
            }
        ],
        query_string={"aadOptscim062020": ""},
    )
    assert response.status_code == 204, response.get_data(as_text=True)
    doc = entra.get(f"/Users/{user['id']}").get_json()
    assert doc["name"]["givenName"] == "Henry" and doc["active"] is False
    assert doc["emails"] == [{"primary": True, "type": "work", "value": "henry@contoso.com"}]
    assert doc[ENTERPRISE] == {"department": "Sales", "employeeNumber": "42"}
    assert _last_tolerances(state) == "entra: pathless_qualified_keys"
    listed = entra.get("/Users", query_string={"filter": 'userName eq "FLAG@contoso.com"', "aadOptscim062020": ""})
    assert listed.status_code == 200 and listed.get_json()["totalResults"] == 1  # the flag is no list parameter
    # Without the flag (and no Entra User-Agent) auto applies every tolerance; generic refuses the keys.
    accepted = entra.patch(f"/Users/{user['id']}", [{"op": "replace", "value": {"name.givenName": "X"}}])
    assert accepted.status_code == 200 and accepted.get_json()["name"]["givenName"] == "X"
    assert _last_tolerances(state) == "auto: pathless_qualified_keys"
    state.store.set_profile("acme", "generic")
    refused = entra.patch(f"/Users/{user['id']}", [{"op": "replace", "value": {"name.givenName": "Y"}}])
    assert "the auto and entra profiles accept it" in assert_scim_error(refused, 400, "invalidValue")["detail"]


def test_entra_group_sync(scim: Scim, state: Any) -> None:
    entra = IdP(scim, ENTRA_UA)
    a, b, c = (entra.post("/Users", entra_user(f"{n}@contoso.com", n)).get_json()["id"] for n in "abc")
    created = entra.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA, ADSCIM], "externalId": "g-ext", "displayName": "Group1DisplayName", "members": []},
    )
    assert created.status_code == 201
    assert _last_tolerances(state) == "entra: unknown_schema_ignored"
    group = created.get_json()
    path = f"/Groups/{group['id']}"
    listed = entra.get(
        "/Groups", query_string={"filter": 'displayName eq "Group1DisplayName"', "excludedAttributes": "members"}
    ).get_json()
    assert listed["totalResults"] == 1 and "members" not in listed["Resources"][0]

    add = entra.patch(path, [{"op": "Add", "path": "members", "value": [{"value": a}, {"value": b}, {"value": c}]}])
    assert add.status_code == 204
    # Without the flag: remove with a value list removes exactly those members, never the whole group.
    remove = entra.patch(path, [{"op": "Remove", "path": "members", "value": [{"value": a}]}])
    assert remove.status_code == 204
    assert _last_tolerances(state) == "entra: capitalised_ops, remove_with_value"
    # With the flag: a filtered path, RFC-shaped.
    assert entra.patch(path, [{"op": "remove", "path": f'members[value eq "{b}"]'}]).status_code == 204
    members = entra.get(path).get_json()["members"]
    assert [m["value"] for m in members] == [c]
    renamed = entra.patch(path, [{"op": "Replace", "path": "displayName", "value": "Renamed"}])
    assert renamed.status_code == 204 and entra.get(path).get_json()["displayName"] == "Renamed"
    assert entra.delete(path).status_code == 204
    assert_scim_error(entra.get(path), 404)


# -- OneLogin and generic ----------------------------------------------------------------------------


def test_onelogin_gets_200_for_a_group_patch_and_removes_by_value_list(scim: Scim, state: Any) -> None:
    state.store.set_profile("acme", "onelogin")
    onelogin = IdP(scim, "OneLogin SCIM")
    a, b = (onelogin.post("/Users", entra_user(f"{n}@onelogin.test", n)).get_json()["id"] for n in "ab")
    group = onelogin.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "OL"}).get_json()
    path = f"/Groups/{group['id']}"
    added = onelogin.patch(path, [{"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]}])
    assert added.status_code == 200 and {m["value"] for m in added.get_json()["members"]} == {a, b}
    removed = onelogin.patch(path, [{"op": "remove", "path": "members", "value": [{"value": a}]}])
    assert removed.status_code == 200 and [m["value"] for m in removed.get_json()["members"]] == [b]
    # OneLogin's profile has no capitalised ops: refused with the RFC's error.
    assert_scim_error(
        onelogin.patch(path, [{"op": "Add", "path": "members", "value": [{"value": a}]}]), 400, "invalidSyntax"
    )


@pytest.mark.parametrize(
    ("operations", "scim_type"),
    [
        ([{"op": "Replace", "path": "title", "value": "x"}], "invalidSyntax"),
        ([{"op": "replace", "path": "active", "value": "False"}], "invalidValue"),
        ([{"op": "replace", "value": {"name.givenName": "x"}}], "invalidValue"),
        ([{"op": "add", "path": 'emails[type eq "home"].value', "value": "h@x.test"}], "noTarget"),
        ([{"op": "add", "path": f"{ENTERPRISE}:manager", "value": "m1"}], "invalidValue"),
        ([{"op": "remove", "path": "emails", "value": [{"value": "x@generic.test"}]}], "invalidSyntax"),
        ([{"op": "add", "value": {"shoeSize": 42}}], "invalidValue"),
    ],
)
def test_generic_refuses_every_deviation_and_changes_nothing(
    scim: Scim, state: Any, operations: list[dict[str, Any]], scim_type: str
) -> None:
    state.store.set_profile("acme", "generic")
    generic = IdP(scim, "curl/8.0")
    user = generic.post("/Users", entra_user("x@generic.test", "x")).get_json()
    before = generic.get(f"/Users/{user['id']}").get_json()
    refused = assert_scim_error(generic.patch(f"/Users/{user['id']}", operations), 400, scim_type)
    # The 400 says which profiles would have accepted it (the fix is one setting away).
    assert "This request's profile is generic; the auto" in refused["detail"], refused
    assert generic.get(f"/Users/{user['id']}").get_json() == before


def test_generic_post_refuses_string_booleans_and_unknown_schemas(scim: Scim, state: Any) -> None:
    state.store.set_profile("acme", "generic")
    generic = IdP(scim, None)
    assert_scim_error(
        generic.post("/Users", entra_user("s@generic.test", "s") | {"active": "True"}), 400, "invalidValue"
    )
    unknown = {"schemas": [GROUP_SCHEMA, ADSCIM], "displayName": "G"}
    assert_scim_error(generic.post("/Groups", unknown), 400, "invalidValue")
    assert generic.get("/Groups").get_json()["totalResults"] == 0


def test_generic_group_patch_answers_200_with_the_group(scim: Scim, state: Any) -> None:
    state.store.set_profile("acme", "generic")
    generic = IdP(scim, None)
    a = generic.post("/Users", entra_user("m@generic.test", "m")).get_json()["id"]
    group = generic.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "G"}).get_json()
    path = f"/Groups/{group['id']}"
    full = generic.patch(path, [{"op": "add", "path": "members", "value": [{"value": a}]}])
    assert full.status_code == 200 and [m["value"] for m in full.get_json()["members"]] == [a]
    assert full.headers["ETag"] == full.get_json()["meta"]["version"]
    slim = generic.patch(
        path, [{"op": "replace", "path": "displayName", "value": "H"}], query_string={"excludedAttributes": "members"}
    )
    assert slim.status_code == 200 and "members" not in slim.get_json() and slim.get_json()["displayName"] == "H"
    # An unknown member id is refused: only visible users of the organization may be members.
    assert_scim_error(
        generic.patch(path, [{"op": "add", "path": "members", "value": [{"value": "nope"}]}]), 400, "invalidValue"
    )


def test_a_tenant_setting_overrides_detection(scim: Scim, state: Any) -> None:
    state.store.set_profile("acme", "generic")
    entra = IdP(scim, ENTRA_UA)
    user = entra.post("/Users", entra_user("o@contoso.com", "o")).get_json()
    assert_scim_error(entra.patch(f"/Users/{user['id']}", [{"op": "Replace", "path": "active", "value": "False"}]), 400)
    state.store.set_profile("acme", "entra")
    assert (
        IdP(scim, None)
        .patch(f"/Users/{user['id']}", [{"op": "Replace", "path": "active", "value": "False"}])
        .status_code
        == 204
    )


# -- the default organization: IdP traffic that names no IdP (a validator, a proxy, a hand test) -------------


def test_default_organization_takes_entra_and_okta_traffic_without_a_user_agent(scim: Scim, state: Any) -> None:
    """Entra's and Okta's request sequences sent with no IdP User-Agent (as Microsoft's validator and
    Postman collection, or a proxy, send them) on an organization created with the defaults: every step
    succeeds under the ``auto`` profile, and the log names that profile for each request."""
    client = IdP(scim, "PostmanRuntime/7.36.0")
    manager = client.post("/Users", entra_user("boss@fabrikam.com", "boss")).get_json()
    assert client.find('userName eq "Ann@Fabrikam.com"') == []
    created = client.post("/Users", entra_user("ann@fabrikam.com", "ann-ext"))
    assert created.status_code == 201
    uid = created.get_json()["id"]
    path = f"/Users/{uid}"
    # Entra's matching on the work email, in its own filter form and the RFC's.
    assert [u["id"] for u in client.find('emails[type eq "work"].value eq "ann@fabrikam.com"')] == [uid]
    assert [u["id"] for u in client.find('emails[type eq "work" and value eq "ann@fabrikam.com"]')] == [uid]
    # Entra's update without aadOptscim062020: capitalised ops, a value-path create, a bare manager.
    updated = client.patch(
        path,
        [
            {"op": "Replace", "path": "displayName", "value": "Ann B"},
            {"op": "Add", "path": 'emails[type eq "home"].value', "value": "ann@home.test"},
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": manager["id"]},
        ],
    )
    assert updated.status_code == 200 and updated.get_json()["displayName"] == "Ann B"  # 200 + the user
    assert {"type": "home", "value": "ann@home.test"} in updated.get_json()["emails"]
    assert _last_tolerances(state) == "auto: capitalised_ops, value_path_creates, manager_bare_string"
    # Deactivate by PATCH (Entra's string boolean), reactivate, deactivate by PUT (Okta).
    off = client.patch(path, [{"op": "Replace", "path": "active", "value": "False"}])
    assert off.status_code == 200 and off.get_json()["active"] is False
    assert client.patch(path, [{"op": "replace", "value": {"active": True}}]).get_json()["active"] is True
    put = client.put(path, okta_user("ann@fabrikam.com", "Ann", "B") | {"id": uid, "active": False})
    assert put.status_code == 200 and put.get_json()["active"] is False
    # A duplicate of an active user is 409 uniqueness.
    other = client.post("/Users", entra_user("dup@fabrikam.com", "dup")).get_json()
    assert_scim_error(client.post("/Users", entra_user("DUP@fabrikam.com", "dup2")), 409, "uniqueness")
    # Group push with member deltas, Entra's ADSCIM schema ignored; remove by value list (Entra, OneLogin).
    group = client.post("/Groups", {"schemas": [GROUP_SCHEMA, ADSCIM], "displayName": "Team", "members": []})
    assert group.status_code == 201
    gpath = f"/Groups/{group.get_json()['id']}"
    add = client.patch(gpath, [{"op": "Add", "path": "members", "value": [{"value": uid}, {"value": other["id"]}]}])
    assert add.status_code == 204 and add.get_data() == b""  # auto: a Group PATCH answers 204
    removed = client.patch(gpath, [{"op": "Remove", "path": "members", "value": [{"value": uid}]}])
    assert removed.status_code == 204
    assert [m["value"] for m in client.get(gpath).get_json()["members"]] == [other["id"]]
    assert _last_tolerances(state) == "auto: capitalised_ops, remove_with_value"
    # A duplicate group (Microsoft's validator: "Create a duplicate Group") is 409 uniqueness too.
    duplicate = {"schemas": [GROUP_SCHEMA], "displayName": "TEAM", "members": []}
    assert_scim_error(client.post("/Groups", duplicate), 409, "uniqueness")
    # Every request of the sequence (reads and writes) names the profile it resolved to.
    assert {(e.tolerances or "-").split(":")[0] for e in state.store.recent_log(limit=30)} == {"auto"}
