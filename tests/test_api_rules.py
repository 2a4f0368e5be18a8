"""The product rules of issue 2 over HTTP, through the Flask test client on a real SQLite file."""

from __future__ import annotations

import sqlalchemy as sa
from api_helpers import ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, Scim, assert_scim_error, new_org, user

from scim_service.model import MatchPolicy, SeatPolicy

# -- rule 1: bearer tokens ---------------------------------------------------------------------------


def test_missing_unknown_and_revoked_tokens_get_401_with_bearer_challenge(app, state, scim):
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = client.get("/scim/v2/Users", headers=headers)
        assert_scim_error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    token_id, token = state.store.create_token("acme")
    other = Scim(client, token)
    assert other.get("/Users").status_code == 200
    state.store.revoke_token(token_id)
    assert_scim_error(other.get("/Users"), 401)
    assert scim.get("/Users").status_code == 200  # the org's other token still works


def test_revocation_is_seen_by_another_worker_on_the_same_database(tmp_path):
    from api_helpers import make_app

    from scim_service.extension import get_state

    worker_a, worker_b = make_app(tmp_path), make_app(tmp_path)
    token = new_org(get_state(worker_a), "acme")
    b = Scim(worker_b.test_client(), token)
    assert b.get("/Users").status_code == 200
    [info] = get_state(worker_a).store.list_tokens("acme")
    get_state(worker_a).store.revoke_token(info.id)
    assert_scim_error(b.get("/Users"), 401)


def test_tokens_are_stored_only_as_hashes(state, scim):
    with state.service_engine.connect() as conn:
        dump = "\n".join(
            str(row)
            for table in ("scim_organizations", "scim_tokens")
            for row in conn.execute(sa.text(f"select * from {table}"))
        )
    assert scim.token not in dump
    assert len(scim.token) >= 43  # 256 bits in url-safe base64


# -- rule 2: tenant isolation ----------------------------------------------------------------------------


def test_a_token_sees_only_its_organization(app, state, scim):
    other = Scim(app.test_client(), new_org(state, "globex", max_seats=10))
    alice = scim.create_user("alice", email="alice@acme.test")
    group = scim.create_group("staff", [alice["id"]])

    assert_scim_error(other.get(f"/Users/{alice['id']}"), 404)
    assert_scim_error(other.put(f"/Users/{alice['id']}", user("alice")), 404)
    assert_scim_error(other.patch(f"/Users/{alice['id']}", [{"op": "replace", "path": "active", "value": False}]), 404)
    assert_scim_error(other.delete(f"/Users/{alice['id']}"), 404)
    assert_scim_error(other.get(f"/Groups/{group['id']}"), 404)
    assert other.get('/Users?filter=userName eq "alice"').get_json()["totalResults"] == 0
    assert other.get("/Users").get_json()["totalResults"] == 0
    # The same userName is free in another organization.
    assert other.post("/Users", user("alice", email="alice@acme.test")).status_code == 201
    assert scim.get(f"/Users/{alice['id']}").get_json()["active"] is True


def test_a_group_cannot_take_another_tenants_user(app, state, scim):
    other = Scim(app.test_client(), new_org(state, "globex", max_seats=10))
    foreign = other.create_user("mallory")
    body = {"schemas": [GROUP_SCHEMA], "displayName": "staff", "members": [{"value": foreign["id"]}]}
    assert_scim_error(scim.post("/Groups", body), 400, "invalidValue")
    assert scim.get("/Groups").get_json()["totalResults"] == 0  # nothing written

    group = scim.create_group("staff")
    add = [{"op": "add", "path": "members", "value": [{"value": foreign["id"]}]}]
    assert_scim_error(scim.patch(f"/Groups/{group['id']}", add), 400, "invalidValue")
    assert "members" not in scim.get(f"/Groups/{group['id']}").get_json()


# -- rule 3: matching POST: reactivate inactive, 409 on active ---------------------------------------------


def test_post_matching_an_active_user_is_409_and_changes_nothing(scim):
    alice = scim.create_user("alice", email="alice@acme.test", title="Engineer")
    for body in (user("ALICE", title="Boss"), user("someone-else", email="Alice@Acme.test", title="Boss")):
        assert_scim_error(scim.post("/Users", body), 409, "uniqueness")
    listed = scim.get("/Users").get_json()
    assert listed["totalResults"] == 1
    assert scim.get(f"/Users/{alice['id']}").get_json()["title"] == "Engineer"


LOOK_ALIKES = [
    ("caf\u00e9", "cafe\u0301"),  # NFC / NFD
    ("bob", "bob "),  # trailing space
    ("nbsp", "nbsp\u00a0"),  # trailing NBSP
    ("zwsp", "zwsp\u200b"),  # zero-width space
    ("full", "\uff46\uff55\uff4c\uff4c"),  # fullwidth letters
    ("\ufb01nance", "finance"),  # ligature
]


def test_post_of_a_look_alike_username_is_409_and_a_filter_finds_the_holder(scim):
    """docs/rules.md, Comparing names: one comparison key, on every backend."""
    holders = {name: scim.create_user(name)["id"] for name, _alike in LOOK_ALIKES}
    for name, alike in LOOK_ALIKES:
        assert_scim_error(scim.post("/Users", user(alike)), 409, "uniqueness")
        found = scim.get("/Users", query_string={"filter": f'userName eq "{alike}"'}).get_json()
        assert [u["id"] for u in found["Resources"]] == [holders[name]], alike
        assert found["Resources"][0]["userName"] == name  # stored as sent
    assert scim.get("/Users").get_json()["totalResults"] == len(LOOK_ALIKES)
    # The primary email and a group's displayName follow the same rule.
    scim.create_user("mail", email="j.doe@acme.test")
    assert_scim_error(scim.post("/Users", user("other", email="\uff2a.DOE@acme.test\u00a0")), 409, "uniqueness")
    scim.create_group("\ufb01nance", [])
    assert_scim_error(scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "FINANCE"}), 409, "uniqueness")


def test_a_username_of_only_zero_width_characters_is_invalid(scim):
    assert_scim_error(scim.post("/Users", user("\u200b\u200b")), 400, "invalidValue")


def test_post_matching_a_deactivated_user_reactivates_it_in_place(scim):
    alice = scim.create_user("alice", email="alice@acme.test", title="Engineer")
    group = scim.create_group("staff", [alice["id"]])
    assert scim.patch(f"/Users/{alice['id']}", [{"op": "replace", "path": "active", "value": False}]).status_code == 200

    response = scim.post("/Users", user("Alice", email="alice@acme.test", title="Lead"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == alice["id"]
    assert body["active"] is True
    assert body["title"] == "Lead"
    assert body["userName"] == "Alice"
    assert [g["value"] for g in body["groups"]] == [group["id"]]  # deactivation kept the membership
    assert scim.get("/Users").get_json()["totalResults"] == 1


def test_post_matching_by_primary_email_reactivates_the_inactive_user(scim):
    alice = scim.create_user("alice", email="alice@acme.test")
    scim.patch(f"/Users/{alice['id']}", [{"op": "replace", "path": "active", "value": False}])
    response = scim.post("/Users", user("alice.smith", email="ALICE@acme.test"))
    assert response.status_code == 200
    assert response.get_json()["id"] == alice["id"]
    assert response.get_json()["userName"] == "alice.smith"


def test_username_match_policy_lets_users_share_an_email(app, state):
    shared = Scim(app.test_client(), new_org(state, "shared", match_policy=MatchPolicy.USERNAME))
    one = shared.post("/Users", user("one", email="team@x.test"))
    two = shared.post("/Users", user("two", email="team@x.test"))
    assert (one.status_code, two.status_code) == (201, 201)
    assert_scim_error(shared.post("/Users", user("ONE")), 409, "uniqueness")


# -- rule 4: seats ----------------------------------------------------------------------------------------


def test_seat_limit_counts_every_record_by_default(app, state):
    small = Scim(app.test_client(), new_org(state, "small", max_seats=2))
    a = small.create_user("a")
    small.create_user("b")
    body = assert_scim_error(small.post("/Users", user("c")), 403)
    assert "seat limit" in body["detail"].lower()
    assert small.get("/Users").get_json()["totalResults"] == 2  # nothing written

    small.patch(f"/Users/{a['id']}", [{"op": "replace", "path": "active", "value": False}])
    assert_scim_error(small.post("/Users", user("c")), 403)  # deactivation keeps the seat
    small.delete(f"/Users/{a['id']}")
    assert_scim_error(small.post("/Users", user("c")), 403)  # so does a soft delete

    tenant = state.store.get_org("small")
    removed = state.backend.remove_inactive_users(tenant)
    assert removed == [a["id"]]
    assert small.post("/Users", user("c")).status_code == 201


def test_active_seat_policy_frees_seats_on_deactivation_and_guards_reactivation(app, state):
    org = Scim(app.test_client(), new_org(state, "act", max_seats=1, seat_policy=SeatPolicy.ACTIVE))
    a = org.create_user("a", email="a@x.test")
    assert_scim_error(org.post("/Users", user("b")), 403)
    org.patch(f"/Users/{a['id']}", [{"op": "replace", "path": "active", "value": False}])
    b = org.create_user("b")  # a's seat was freed

    # Reactivating a beyond the limit: POST, PUT and PATCH all refuse it.
    assert_scim_error(org.post("/Users", user("a", email="a@x.test")), 403)
    assert_scim_error(org.put(f"/Users/{a['id']}", user("a", active=True)), 403)
    assert_scim_error(org.patch(f"/Users/{a['id']}", [{"op": "replace", "path": "active", "value": True}]), 403)
    assert org.get(f"/Users/{a['id']}").get_json()["active"] is False

    org.patch(f"/Users/{b['id']}", [{"op": "replace", "value": {"active": False}}])
    assert org.patch(f"/Users/{a['id']}", [{"op": "replace", "path": "active", "value": True}]).status_code == 200


# -- rule 5: deactivation keeps everything -----------------------------------------------------------------


def test_deactivation_keeps_attributes_and_groups(scim):
    body = user(
        "alice",
        email="alice@acme.test",
        name={"givenName": "Alice", "familyName": "Smith"},
        **{"schemas": [USER_SCHEMA, ENTERPRISE], ENTERPRISE: {"employeeNumber": "42"}},
    )
    created = scim.post("/Users", body).get_json()
    group = scim.create_group("staff", [created["id"]])
    for deactivate in (
        lambda: scim.patch(f"/Users/{created['id']}", [{"op": "replace", "path": "active", "value": False}]),
        lambda: scim.put(f"/Users/{created['id']}", {**body, "active": False}),
    ):
        assert deactivate().status_code == 200
        got = scim.get(f"/Users/{created['id']}").get_json()
        assert got["active"] is False
        assert got["name"] == {"givenName": "Alice", "familyName": "Smith"}
        assert got[ENTERPRISE]["employeeNumber"] == "42"
        assert [g["value"] for g in got["groups"]] == [group["id"]]
        assert scim.get(f"/Groups/{group['id']}").get_json()["members"][0]["value"] == created["id"]


# -- rule 6: soft delete -----------------------------------------------------------------------------------


def test_delete_is_a_soft_delete_that_a_matching_post_undoes(scim, state):
    alice = scim.create_user("alice", email="alice@acme.test", title="Engineer")
    group = scim.create_group("staff", [alice["id"]])
    assert scim.delete(f"/Users/{alice['id']}").status_code == 204

    path = f"/Users/{alice['id']}"
    assert_scim_error(scim.get(path), 404)
    assert_scim_error(scim.put(path, user("alice")), 404)
    assert_scim_error(scim.patch(path, [{"op": "replace", "path": "title", "value": "x"}]), 404)
    assert_scim_error(scim.delete(path), 404)
    assert scim.get('/Users?filter=userName eq "alice"').get_json()["totalResults"] == 0
    assert "members" not in scim.get(f"/Groups/{group['id']}").get_json()

    # The record is kept, inactive, with its data.
    kept = state.backend.get_user(state.store.get_org("acme"), alice["id"], include_deleted=True)
    assert kept.deleted and not kept.active and kept.data["title"] == "Engineer"

    response = scim.post("/Users", user("alice", email="alice@acme.test", displayName="Alice"))
    assert response.status_code == 200
    back = response.get_json()
    assert back["id"] == alice["id"] and back["active"] is True and back["displayName"] == "Alice"
    assert "groups" not in back  # it left its groups when deleted


def test_delete_policies_deactivate_and_hard(tmp_path):
    from api_helpers import make_app

    from scim_service.extension import get_state

    soft_only = make_app(tmp_path / "a", SCIM_USER_DELETE="deactivate")
    c = Scim(soft_only.test_client(), new_org(get_state(soft_only), "acme"))
    a = c.create_user("a")
    assert c.delete(f"/Users/{a['id']}").status_code == 204
    assert c.get(f"/Users/{a['id']}").get_json()["active"] is False

    hard = make_app(tmp_path / "b", SCIM_USER_DELETE="hard")
    st = get_state(hard)
    h = Scim(hard.test_client(), new_org(st, "acme"))
    b = h.create_user("b")
    assert h.delete(f"/Users/{b['id']}").status_code == 204
    assert_scim_error(h.get(f"/Users/{b['id']}"), 404)
    assert st.backend.count_seats(st.store.get_org("acme")) == 0
    assert h.post("/Users", user("b")).status_code == 201  # a new record, not a reactivation


# -- rule 7: group delete ---------------------------------------------------------------------------------


def test_group_delete_removes_the_group_not_its_members(scim):
    alice = scim.create_user("alice")
    group = scim.create_group("staff", [alice["id"]])
    assert scim.delete(f"/Groups/{group['id']}").status_code == 204
    assert_scim_error(scim.get(f"/Groups/{group['id']}"), 404)
    assert_scim_error(scim.delete(f"/Groups/{group['id']}"), 404)
    got = scim.get(f"/Users/{alice['id']}").get_json()
    assert got["active"] is True and "groups" not in got


# -- group displayName: unique per organization, case-insensitively ---------------------------------------


def test_a_second_group_of_one_name_is_409_and_renames_onto_it_too(app, state, scim):
    sales = scim.create_group("Sales", [])
    ops = scim.create_group("Ops", [])
    body = assert_scim_error(scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "SALES"}), 409)
    assert body["scimType"] == "uniqueness" and "SALES" in body["detail"]
    put = {"schemas": [GROUP_SCHEMA], "displayName": "sales"}
    assert_scim_error(scim.put(f"/Groups/{ops['id']}", put), 409, "uniqueness")
    rename = [{"op": "replace", "path": "displayName", "value": "Sales"}]
    assert_scim_error(scim.patch(f"/Groups/{ops['id']}", rename), 409, "uniqueness")
    listed = scim.get("/Groups").get_json()
    assert sorted(g["displayName"] for g in listed["Resources"]) == ["Ops", "Sales"]  # nothing was written
    # A group keeps or re-cases its own name; another organization may use the name.
    recase = [{"op": "replace", "path": "displayName", "value": "SALES"}]
    assert scim.patch(f"/Groups/{sales['id']}", recase).status_code in (200, 204)
    assert scim.get(f"/Groups/{sales['id']}").get_json()["displayName"] == "SALES"
    other = Scim(app.test_client(), new_org(state, "globex"))
    assert other.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Sales"}).status_code == 201
