"""The query language, projection, paging, cursors, PATCH forms and preconditions over HTTP.

Every test talks to a real app on a real database (SQLite, and PostgreSQL in the ``[postgres]`` variant
that ``tests/conftest.py`` adds to every ``test_api_*`` module) through the Flask test client.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa
from api_helpers import (
    ENTERPRISE,
    GROUP_SCHEMA,
    USER_SCHEMA,
    Scim,
    assert_scim_error,
    backend_name,
    new_org,
    requires,
    user,
)

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [r.get("userName") or r.get("displayName") for r in response.get_json()["Resources"]]


@pytest.fixture
def people(scim: Scim) -> dict[str, dict[str, Any]]:
    """Five users with varied attributes (created a few milliseconds apart), and one group."""
    made: dict[str, dict[str, Any]] = {}
    specs: dict[str, dict[str, Any]] = {
        "alice": {
            "displayName": "Alice Smith",
            "title": "Engineer",
            "externalId": "ext-A",
            "emails": [
                {"value": "alice@work.example", "type": "work", "primary": True},
                {"value": "alice@home.example", "type": "home"},
            ],
            "name": {"givenName": "Alice", "familyName": "Smith"},
            ENTERPRISE: {"employeeNumber": "7", "department": "R&D"},
            "schemas": [USER_SCHEMA, ENTERPRISE],
        },
        "Bob": {"displayName": "Bob Jones", "title": "Manager", "active": False, "emails": []},
        "carol": {
            "title": "engineer",
            "emails": [{"value": "carol@work.example", "type": "work"}],
            ENTERPRISE: {"employeeNumber": "12"},
            "schemas": [USER_SCHEMA, ENTERPRISE],
        },
        "dave": {"displayName": "dave", "nickName": "100%_sure"},
        "Émile": {"displayName": "Émile", "emails": [{"value": "emile@home.example", "type": "home"}]},
    }
    for name, attrs in specs.items():
        response = scim.post("/Users", user(name, **attrs))
        assert response.status_code == 201, response.get_json()
        made[name] = response.get_json()
        time.sleep(0.003)  # distinct meta.created / meta.lastModified instants
    made["__group__"] = scim.create_group("Engineers", [made["alice"]["id"], made["carol"]["id"]])
    return made


def filtered(scim: Scim, expression: str, **params: Any) -> Any:
    return scim.get("/Users", query_string={"filter": expression, **params})


OPERATOR_CASES = [
    ('userName eq "ALICE"', {"alice"}),
    ('userName ne "alice"', {"Bob", "carol", "dave", "Émile"}),
    ('userName co "o"', {"Bob", "carol"}),
    ('userName sw "c"', {"carol"}),
    ('userName ew "E"', {"alice", "dave", "Émile"}),
    ('userName gt "carol"', {"dave", "Émile"}),
    ('userName ge "carol"', {"carol", "dave", "Émile"}),
    ('userName lt "bob"', {"alice"}),
    ('userName le "bob"', {"alice", "Bob"}),
    ("title pr", {"alice", "Bob", "carol"}),
    ('title eq "engineer"', {"alice", "carol"}),  # caseExact false
    ('externalId eq "ext-A"', {"alice"}),
    ('externalId eq "EXT-A"', set()),  # externalId is caseExact
    ("active eq false", {"Bob"}),
    ("active ne false", {"alice", "carol", "dave", "Émile"}),
    ('emails.value eq "CAROL@work.example"', {"carol"}),
    ('emails co "home.example"', {"alice", "Émile"}),
    ('emails[type eq "work" and value co "alice"]', {"alice"}),
    ('emails[type eq "home"] and not (emails[type eq "work"])', {"Émile"}),
    ("emails pr", {"alice", "carol", "Émile"}),
    ('name.familyName eq "smith"', {"alice"}),
    ('nickName co "%_"', {"dave"}),  # LIKE wildcards are literal
    (f'{ENTERPRISE}:employeeNumber eq "12"', {"carol"}),
    (f"{ENTERPRISE}:department pr", {"alice"}),
    (f'{USER_SCHEMA}:userName eq "dave"', {"dave"}),
    ('USERNAME EQ "dave"', {"dave"}),  # attribute names and operators are case-insensitive
    ('title eq "engineer" and not (userName eq "carol")', {"alice"}),
    ('userName eq "dave" or title eq "manager" and active eq false', {"dave", "Bob"}),  # and binds tighter
    ('(userName eq "dave" or title eq "manager") and active eq true', {"dave"}),
    ("displayName eq null", {"carol"}),
    ('groups.display eq "engineers"', {"alice", "carol"}),
]


@pytest.mark.parametrize(("expression", "expected"), OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES])
def test_every_operator_over_http(scim: Scim, people: dict, expression: str, expected: set[str]) -> None:
    response = filtered(scim, expression)
    assert set(names(response)) == expected
    assert response.get_json()["totalResults"] == len(expected)


def test_datetime_comparisons_on_last_modified(scim: Scim, people: dict) -> None:
    carol = people["carol"]["meta"]["lastModified"]
    assert set(names(filtered(scim, f'meta.lastModified ge "{carol}"'))) == {"carol", "dave", "Émile"}
    assert set(names(filtered(scim, f'meta.lastModified gt "{carol}"'))) == {"dave", "Émile"}
    # The rendered instant is exactly the stored one, so eq finds the resource it was read from.
    assert names(filtered(scim, f'meta.lastModified eq "{carol}"')) == ["carol"]
    assert set(names(filtered(scim, 'meta.created lt "2000-01-01T00:00:00+02:00"'))) == set()


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ('userName eq "x', "string"),
        ("userName xx 1", "operator"),
        ('nosuch eq "x"', "nosuch"),
        ("active gt true", "boolean"),
        ('meta.lastModified gt "yesterday"', "ISO 8601"),
        ('emails[type eq "work"', "]"),
    ],
)
def test_invalid_filters_say_where_and_why(scim: Scim, expression: str, fragment: str) -> None:
    body = assert_scim_error(filtered(scim, expression), 400, "invalidFilter")
    assert fragment.lower() in body["detail"].lower()


def test_group_filters_over_http(scim: Scim, people: dict) -> None:
    group = people["__group__"]
    alice = people["alice"]["id"]
    response = scim.get("/Groups", query_string={"filter": f'members[value eq "{alice}"]'})
    assert names(response) == ["Engineers"]
    assert names(scim.get("/Groups", query_string={"filter": 'displayName sw "eng"'})) == ["Engineers"]
    assert scim.get("/Groups", query_string={"filter": f'id eq "{group["id"]}x"'}).get_json()["totalResults"] == 0


# -- sorting and paging --------------------------------------------------------------------------------


def test_sort_by_and_sort_order(scim: Scim, people: dict) -> None:
    assert names(scim.get("/Users", query_string={"sortBy": "userName"})) == ["alice", "Bob", "carol", "dave", "Émile"]
    descending = scim.get("/Users", query_string={"sortBy": "userName", "sortOrder": "descending"})
    assert names(descending) == ["Émile", "dave", "carol", "Bob", "alice"]
    # Missing values last ascending (carol has no displayName), first descending.
    assert names(scim.get("/Users", query_string={"sortBy": "displayName"}))[-1] == "carol"
    by_email = scim.get("/Users", query_string={"sortBy": "emails.value", "filter": "emails pr"})
    assert names(by_email) == ["alice", "carol", "Émile"]
    by_created = scim.get("/Users", query_string={"sortBy": "meta.created", "sortOrder": "DESCENDING"})
    assert names(by_created) == ["Émile", "dave", "carol", "Bob", "alice"]
    assert_scim_error(scim.get("/Users", query_string={"sortBy": "nosuch"}), 400, "invalidValue")
    assert_scim_error(scim.get("/Users", query_string={"sortBy": "userName", "sortOrder": "up"}), 400, "invalidValue")


def test_paging_edge_cases(scim: Scim, people: dict) -> None:
    def page(**params: Any) -> dict[str, Any]:
        response = scim.get("/Users", query_string={"sortBy": "userName", **params})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    assert [r["userName"] for r in page(startIndex=2, count=2)["Resources"]] == ["Bob", "carol"]
    last = page(startIndex=5, count=10)
    assert [r["userName"] for r in last["Resources"]] == ["Émile"] and last["itemsPerPage"] == 1
    beyond = page(startIndex=99)
    assert beyond["Resources"] == [] and beyond["totalResults"] == 5 and beyond["startIndex"] == 99
    zero = page(count=0)
    assert zero["Resources"] == [] and zero["totalResults"] == 5 and zero["itemsPerPage"] == 0
    negative = page(count=-3, startIndex=0)  # RFC 7644 §3.4.2.4: as 0 and as 1
    assert negative["Resources"] == [] and negative["startIndex"] == 1
    huge = page(count=10**9)  # clamped to the maximum page size
    assert huge["itemsPerPage"] == 5
    assert_scim_error(scim.get("/Users", query_string={"startIndex": "two"}), 400, "invalidValue")
    assert page(filter="title pr", count=1)["totalResults"] == 3  # the exact count for the filter


def test_max_page_size_is_advertised_and_enforced(tmp_path) -> None:
    from api_helpers import make_app

    from scim_service.extension import get_state

    app = make_app(tmp_path, SCIM_MAX_PAGE_SIZE=2)
    client = Scim(app.test_client(), new_org(get_state(app), "small"))
    for n in "abc":
        client.create_user(n)
    spc = client.get("/ServiceProviderConfig").get_json()
    assert spc["filter"]["maxResults"] == 2
    if get_state(app).backend.capabilities.cursor:  # the RFC 9865 pagination object comes with cursors
        assert spc["pagination"]["maxPageSize"] == 2
    body = client.get("/Users", query_string={"count": 50}).get_json()
    assert body["itemsPerPage"] == 2 and body["totalResults"] == 3
    get_state(app).close()


# -- projection -----------------------------------------------------------------------------------------


def test_projection_on_every_response_that_returns_resources(scim: Scim, people: dict) -> None:
    alice = people["alice"]
    only = {"attributes": "userName,emails.value"}
    got = scim.get(f"/Users/{alice['id']}", query_string=only).get_json()
    assert set(got) == {"schemas", "id", "userName", "emails"}
    assert all(set(e) == {"value"} for e in got["emails"])

    listed = scim.get("/Users", query_string={**only, "filter": 'userName eq "alice"'}).get_json()
    assert set(listed["Resources"][0]) == {"schemas", "id", "userName", "emails"}

    created = scim.post("/Users", user("frank", title="x"), query_string={"attributes": "userName"})
    assert created.status_code == 201 and set(created.get_json()) == {"schemas", "id", "userName"}

    put = scim.put(f"/Users/{alice['id']}", user("alice", title="Lead"), query_string={"excludedAttributes": "title"})
    assert put.status_code == 200 and "title" not in put.get_json() and put.get_json()["userName"] == "alice"

    patched = scim.patch(
        f"/Users/{alice['id']}",
        [{"op": "replace", "path": "title", "value": "CTO"}],
        query_string={"attributes": "title"},
    )
    assert set(patched.get_json()) == {"schemas", "id", "title"} and patched.get_json()["title"] == "CTO"

    searched = scim.post(
        "/Users/.search",
        {"schemas": [SEARCH], "filter": 'userName eq "alice"', "excludedAttributes": ["emails", "meta", "name"]},
    ).get_json()
    [doc] = searched["Resources"]
    assert "emails" not in doc and "meta" not in doc and "name" not in doc and doc["id"] == alice["id"]

    # id is always returned, even when excluded; an enterprise attribute by its URN.
    carol = people["carol"]
    assert scim.get(f"/Users/{carol['id']}").get_json()[ENTERPRISE]["employeeNumber"] == "12"
    kept = scim.get(
        f"/Users/{carol['id']}", query_string={"excludedAttributes": f"id,{ENTERPRISE}:employeeNumber"}
    ).get_json()
    assert kept["id"] == carol["id"] and "employeeNumber" not in kept.get(ENTERPRISE, {})


def test_groups_excluded_members_reads_no_membership_rows(app, scim: Scim, people: dict) -> None:
    """``GET /Groups?excludedAttributes=members`` must not touch scim_group_members at all."""
    from scim_service.extension import get_state

    if backend_name(app) == "ldap":
        _groups_excluded_members_resolve_no_member_on_ldap(app, scim, people)
        return
    if backend_name(app) != "sql":
        pytest.skip(f"counts the SQL statements of the sql backend; this app's backend is {backend_name(app)}")
    engine = get_state(app).backend.engine
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        response = scim.get("/Groups", query_string={"excludedAttributes": "members"})
        one = scim.get(f"/Groups/{people['__group__']['id']}", query_string={"excludedAttributes": "members"})
        without = list(statements)
        statements.clear()
        with_members = scim.get("/Groups")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert names(response) == ["Engineers"] and "members" not in response.get_json()["Resources"][0]
    assert one.status_code == 200 and "members" not in one.get_json()
    assert without, "the listener saw the list queries"
    assert not [s for s in without if "scim_group_members" in s], without
    # The listener does see the membership table when members are wanted (the test can fail).
    assert any("scim_group_members" in s for s in statements)
    assert len(with_members.get_json()["Resources"][0]["members"]) == 2


def _groups_excluded_members_resolve_no_member_on_ldap(app: Any, scim: Scim, people: dict) -> None:
    """The ldap backend's count of searches: a member costs a search of the users it names, so without
    members each request is one search (the list; the group by id), with members more."""
    from scim_service.extension import get_state

    stats = get_state(app).backend.stats
    before = stats.snapshot()
    response = scim.get("/Groups", query_string={"excludedAttributes": "members"})
    one = scim.get(f"/Groups/{people['__group__']['id']}", query_string={"excludedAttributes": "members"})
    middle = stats.snapshot()
    with_members = scim.get("/Groups")
    after = stats.snapshot()
    assert names(response) == ["Engineers"] and "members" not in response.get_json()["Resources"][0]
    assert one.status_code == 200 and "members" not in one.get_json()
    assert middle.searches - before.searches == 2, "one search per request: no member was resolved"
    assert after.searches - middle.searches == 2, "the list, then one search resolving its two members"
    assert len(with_members.get_json()["Resources"][0]["members"]) == 2


# -- POST .search -----------------------------------------------------------------------------------


def test_search_on_a_resource_type(scim: Scim, people: dict) -> None:
    body = {"schemas": [SEARCH], "filter": "title pr", "sortBy": "userName", "startIndex": 2, "count": 1}
    response = scim.post("/Users/.search", body)
    assert names(response) == ["Bob"] and response.get_json()["totalResults"] == 3
    groups = scim.post("/Groups/.search", {"schemas": [SEARCH], "filter": 'displayName eq "engineers"'})
    assert names(groups) == ["Engineers"]
    # A missing 'schemas' is 400 invalidValue in every message and resource (docs/rules.md, "schemas").
    assert_scim_error(scim.post("/Users/.search", {"filter": "title pr"}), 400, "invalidValue")


def test_search_at_the_root_spans_users_then_groups(scim: Scim, people: dict) -> None:
    scim.create_group("Admins")
    everything = scim.post("/.search", {"schemas": [SEARCH], "sortBy": "displayName"}).get_json()
    assert everything["totalResults"] == 7
    types = [r["meta"]["resourceType"] for r in everything["Resources"]]
    assert types == ["User"] * 5 + ["Group"] * 2
    assert [r["displayName"] for r in everything["Resources"][5:]] == ["Admins", "Engineers"]

    # A page across the boundary: the last user and the first group.
    page = scim.post("/.search", {"schemas": [SEARCH], "sortBy": "displayName", "startIndex": 5, "count": 2}).get_json()
    assert page["totalResults"] == 7 and page["startIndex"] == 5
    assert [r["meta"]["resourceType"] for r in page["Resources"]] == ["User", "Group"]
    assert page["Resources"][1]["displayName"] == "Admins"

    # A filter on an attribute both types have selects from both; one only users have, from users only.
    both = scim.post("/.search", {"schemas": [SEARCH], "filter": 'displayName sw "e"'}).get_json()
    assert [r["displayName"] for r in both["Resources"]] == ["Engineers"]  # "É" is not "e"
    both = scim.post("/.search", {"schemas": [SEARCH], "filter": 'displayName co "e"'}).get_json()
    assert [r["displayName"] for r in both["Resources"]][-1] == "Engineers"  # users first, then groups
    assert sorted(r["displayName"] for r in both["Resources"]) == [
        "Alice Smith",
        "Bob Jones",
        "Engineers",
        "dave",
        "Émile",
    ]
    assert both["totalResults"] == 5
    users_only = scim.post("/.search", {"schemas": [SEARCH], "filter": 'userName sw "a"'}).get_json()
    assert [r["userName"] for r in users_only["Resources"]] == ["alice"] and users_only["totalResults"] == 1
    groups_only = scim.post(
        "/.search", {"schemas": [SEARCH], "filter": "members pr", "attributes": ["displayName"]}
    ).get_json()
    assert groups_only["Resources"] == [
        {"schemas": [GROUP_SCHEMA], "id": people["__group__"]["id"], "displayName": "Engineers"}
    ]
    only_total = scim.post("/.search", {"schemas": [SEARCH], "count": 0}).get_json()
    assert only_total["totalResults"] == 7 and only_total["Resources"] == []
    assert_scim_error(scim.post("/.search", {"schemas": [SEARCH], "filter": 'nosuch eq "x"'}), 400, "invalidFilter")
    assert_scim_error(scim.post("/.search", {"schemas": [SEARCH], "cursor": ""}), 400, "invalidCursor")
    assert_scim_error(scim.get("/.search"), 405)


# -- cursors (RFC 9865) -------------------------------------------------------------------------------


def walk(scim: Scim, path: str = "/Users", **params: Any) -> tuple[list[str], list[dict[str, Any]]]:
    seen: list[str] = []
    bodies: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(50):
        response = scim.get(path, query_string={"cursor": cursor, **params})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        bodies.append(body)
        seen += [r["id"] for r in body["Resources"]]
        if "nextCursor" not in body:
            return seen, bodies
        cursor = body["nextCursor"]
    raise AssertionError("cursor paging did not end")


def test_cursor_paging_visits_everything_once(scim: Scim, people: dict) -> None:
    seen, bodies = walk(scim, count=2, sortBy="userName")
    expected = [people[n]["id"] for n in ["alice", "Bob", "carol", "dave", "Émile"]]
    assert seen == expected
    assert [len(b["Resources"]) for b in bodies] == [2, 2, 1]
    assert all(b["totalResults"] == 5 and "startIndex" not in b for b in bodies)
    filtered_ids, _ = walk(scim, count=1, filter="title pr", sortBy="title", sortOrder="descending")
    assert len(filtered_ids) == 3
    groups, _ = walk(scim, "/Groups", count=1)
    assert groups == [people["__group__"]["id"]]


def test_cursors_survive_inserts_and_deletes_between_pages(scim: Scim, people: dict) -> None:
    first = scim.get("/Users", query_string={"cursor": "", "count": 2, "sortBy": "userName"}).get_json()
    assert [r["userName"] for r in first["Resources"]] == ["alice", "Bob"]
    # Between pages: a user sorting before the cursor, one after it, and a delete of an unseen one.
    scim.create_user("aaron")
    scim.create_user("zoe")
    assert scim.delete(f"/Users/{people['dave']['id']}").status_code == 204
    rest, _ = walk_from(scim, first["nextCursor"], count=2, sortBy="userName")
    # Nothing repeated, nothing that existed throughout skipped ("É" sorts after "z": code point order).
    assert rest == ["carol", "zoe", "Émile"]


def walk_from(scim: Scim, cursor: str, **params: Any) -> tuple[list[str], int]:
    out: list[str] = []
    pages = 0
    while cursor:
        body = scim.get("/Users", query_string={"cursor": cursor, **params}).get_json()
        out += [r["userName"] for r in body["Resources"]]
        pages += 1
        cursor = body.get("nextCursor", "")
    return out, pages


def test_bad_and_foreign_cursors_are_invalid_cursor(app, scim: Scim, people: dict) -> None:
    first = scim.get("/Users", query_string={"cursor": "", "count": 1, "sortBy": "userName"}).get_json()
    cursor = first["nextCursor"]
    for bad in ["garbage", "e30", cursor[:-3], "!!!"]:
        assert_scim_error(scim.get("/Users", query_string={"cursor": bad, "count": 1}), 400, "invalidCursor")
    # A cursor is bound to its filter, sort, resource type and organization.
    other_sort = scim.get("/Users", query_string={"cursor": cursor, "count": 1, "sortBy": "title"})
    assert_scim_error(other_sort, 400, "invalidCursor")
    assert_scim_error(scim.get("/Groups", query_string={"cursor": cursor, "count": 1}), 400, "invalidCursor")
    from scim_service.extension import get_state

    other = Scim(app.test_client(), new_org(get_state(app), "other-org"))
    other.create_user("alice")
    assert_scim_error(
        other.get("/Users", query_string={"cursor": cursor, "count": 1, "sortBy": "userName"}), 400, "invalidCursor"
    )
    # The same query continues fine.
    again = scim.get("/Users", query_string={"cursor": cursor, "count": 1, "sortBy": "userName"}).get_json()
    assert [r["userName"] for r in again["Resources"]] == ["Bob"]


def test_cursor_pagination_is_advertised(scim: Scim) -> None:
    requires(scim.client.application, cursor=True)
    spc = scim.get("/ServiceProviderConfig").get_json()
    pagination = spc["pagination"]
    assert pagination["cursor"] is True and pagination["index"] is True
    assert pagination["defaultPaginationMethod"] == "index"
    assert pagination["maxPageSize"] == spc["filter"]["maxResults"]
    assert pagination["defaultPageSize"] >= 1
    assert "cursorTimeout" not in pagination  # cursors hold no server state and do not expire


# -- PATCH forms real IdPs send ----------------------------------------------------------------------


def test_entra_capitalised_ops_and_string_booleans(scim: Scim, people: dict) -> None:
    # the default organization (auto) has every tolerance and answers a User PATCH with the user
    alice = people["alice"]
    response = scim.patch(
        f"/Users/{alice['id']}",
        [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "title", "value": "Lead"},
            {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Ops"},
            {"op": "Remove", "path": "nickName"},
        ],
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["active"] is False and body["title"] == "Lead" and body[ENTERPRISE]["department"] == "Ops"
    back = scim.patch(f"/Users/{alice['id']}", [{"op": "replace", "path": "active", "value": "True"}])
    assert back.get_json()["active"] is True


def test_okta_pathless_replace_of_active(scim: Scim, people: dict) -> None:
    carol = people["carol"]
    response = scim.patch(f"/Users/{carol['id']}", [{"op": "replace", "value": {"active": False}}])
    assert response.status_code == 200 and response.get_json()["active"] is False
    assert scim.get(f"/Users/{carol['id']}").get_json()["groups"], "deactivation keeps the memberships"
    assert names(filtered(scim, "active eq false")) == ["Bob", "carol"] or set(
        names(filtered(scim, "active eq false"))
    ) == {"Bob", "carol"}


def test_pathless_add_with_dotted_and_urn_keys(scim: Scim, people: dict) -> None:
    # the default organization (auto) has every tolerance and answers a User PATCH with the user
    dave = people["dave"]
    response = scim.patch(
        f"/Users/{dave['id']}",
        [{"op": "add", "value": {"name.givenName": "Dave", f"{ENTERPRISE}:employeeNumber": "99", "title": "Ops"}}],
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["name"]["givenName"] == "Dave" and body[ENTERPRISE]["employeeNumber"] == "99" and body["title"] == "Ops"


def test_value_path_add_creates_the_email(scim: Scim, people: dict) -> None:
    # the default organization (auto) has every tolerance and answers a User PATCH with the user
    emile = people["Émile"]
    response = scim.patch(
        f"/Users/{emile['id']}",
        [{"op": "add", "path": 'emails[type eq "work"].value', "value": "emile@work.example"}],
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert {"type": "work", "value": "emile@work.example"} in [
        {k: e[k] for k in ("type", "value")} for e in body["emails"]
    ]
    assert names(filtered(scim, 'emails[type eq "work" and value eq "emile@work.example"]')) == ["Émile"]
    # replace on a filter that matches: the work email changes in place, home is untouched.
    replaced = scim.patch(
        f"/Users/{emile['id']}",
        [{"op": "replace", "path": 'emails[type eq "work"].value', "value": "e2@work.example"}],
    ).get_json()
    assert sorted(e["value"] for e in replaced["emails"]) == ["e2@work.example", "emile@home.example"]
    # primary stays unique: making home primary clears it elsewhere.
    primary = scim.patch(
        f"/Users/{emile['id']}",
        [{"op": "add", "path": 'emails[type eq "work"].primary', "value": True}],
    ).get_json()
    primary = scim.patch(
        f"/Users/{emile['id']}",
        [{"op": "replace", "path": 'emails[type eq "home"].primary', "value": "True"}],
    ).get_json()
    assert [e["type"] for e in primary["emails"] if e.get("primary")] == ["home"]


def test_patch_errors_leave_the_resource_unchanged(scim: Scim, people: dict) -> None:
    alice = people["alice"]
    path = f"/Users/{alice['id']}"
    version = scim.get(path).get_json()["meta"]["version"]
    failing = [
        (
            [{"op": "replace", "path": "title", "value": "X"}, {"op": "add", "path": "userName", "value": 5}],
            "invalidValue",
        ),
        (
            [
                {"op": "replace", "path": "title", "value": "X"},
                {"op": "replace", "path": 'emails[type co "fax"].value', "value": "x"},
            ],
            "noTarget",
        ),
        (
            [{"op": "replace", "path": "title", "value": "X"}, {"op": "replace", "path": "id", "value": "new"}],
            "mutability",
        ),
        ([{"op": "add", "path": "emails[type eq", "value": "x"}], "invalidPath"),
        ([{"op": "add", "path": "nosuch", "value": "x"}], "invalidPath"),
        ([{"op": "replace", "path": "active", "value": "perhaps"}], "invalidValue"),
    ]
    for operations, scim_type in failing:
        assert_scim_error(scim.patch(path, operations), 400, scim_type)
        after = scim.get(path).get_json()
        assert after["meta"]["version"] == version and after["title"] == "Engineer", operations


def test_group_membership_patch_forms(scim: Scim, people: dict) -> None:
    # the default organization (auto) has every tolerance and answers a User PATCH with the user
    group = people["__group__"]
    path = f"/Groups/{group['id']}"
    ids = {n: people[n]["id"] for n in ("alice", "Bob", "carol", "dave")}
    added = scim.patch(
        path, [{"op": "Add", "path": "members", "value": [{"value": ids["Bob"]}, {"value": ids["dave"]}]}]
    )
    assert added.status_code == 204, added.get_json()  # Entra's profile answers a Group PATCH with no content
    members = lambda: sorted(m["value"] for m in scim.get(path).get_json().get("members", []))  # noqa: E731
    assert members() == sorted(ids.values())
    # Entra: remove with a value list.
    removed = scim.patch(
        path, [{"op": "Remove", "path": "members", "value": [{"value": ids["alice"]}, {"value": ids["Bob"]}]}]
    )
    assert removed.status_code == 204, removed.get_json()
    assert members() == sorted([ids["carol"], ids["dave"]])
    # remove by value filter
    scim.patch(path, [{"op": "remove", "path": f'members[value eq "{ids["carol"]}"]'}])
    assert members() == [ids["dave"]]
    # Okta: replace members [] empties the group
    emptied = scim.patch(path, [{"op": "replace", "path": "members", "value": []}])
    assert emptied.status_code == 204, emptied.get_json()
    assert members() == []
    # PATCH with attributes asked for answers 200 with the projected group.
    shown = scim.patch(
        path,
        [{"op": "add", "path": "members", "value": [{"value": ids["alice"]}]}],
        query_string={"attributes": "members"},
    )
    assert shown.status_code == 200 and [m["value"] for m in shown.get_json()["members"]] == [ids["alice"]]
    # a member of another organization, or a typo, is an error and changes nothing
    assert_scim_error(scim.patch(path, [{"op": "add", "path": "members", "value": [{"value": "nope"}]}]), 400)
    assert members() == [ids["alice"]]


# -- preconditions -----------------------------------------------------------------------------------


def test_if_match_and_if_none_match(scim: Scim, people: dict) -> None:
    alice = people["alice"]
    path = f"/Users/{alice['id']}"
    etag = scim.get(path).headers["ETag"]
    assert etag.startswith('W/"')
    assert scim.get(path, headers={"If-None-Match": etag}).status_code == 304
    patched = scim.patch(path, [{"op": "replace", "path": "title", "value": "A"}], headers={"If-Match": etag})
    assert patched.status_code == 200 and patched.headers["ETag"] != etag
    assert_scim_error(
        scim.patch(path, [{"op": "replace", "path": "title", "value": "B"}], headers={"If-Match": etag}), 412
    )
    assert scim.get(path).get_json()["title"] == "A"
    assert scim.get(path, headers={"If-None-Match": etag}).status_code == 200
    star = scim.patch(path, [{"op": "replace", "path": "title", "value": "C"}], headers={"If-Match": "*"})
    assert star.status_code == 200
    group = people["__group__"]
    gpath = f"/Groups/{group['id']}"
    getag = scim.get(gpath).headers["ETag"]
    assert scim.get(gpath, headers={"If-None-Match": getag}).status_code == 304
    scim.patch(gpath, [{"op": "replace", "path": "displayName", "value": "Eng"}])
    assert_scim_error(scim.delete(gpath, headers={"If-Match": getag}), 412)
    assert scim.get(gpath).status_code == 200
    assert scim.get("/ServiceProviderConfig").get_json()["etag"]["supported"] is True


# -- Entra's filter on a value path's sub-attribute --------------------------------------------------------


def test_entra_work_email_filter_means_a_value_filter(scim, state):
    """``emails[type eq "work"].value eq "x"`` (Entra matching on the work email) is answered like
    ``emails[type eq "work" and value eq "x"]`` on the default organization and under entra; generic
    refuses it (invalidFilter) and says which profiles accept it."""
    work = {"emails": [{"value": "w@x.test", "type": "work"}, {"value": "h@x.test", "type": "home"}]}
    alice = scim.post("/Users", {**user("alice"), **work}).get_json()
    scim.create_user("bob", emails=[{"value": "h@x.test", "type": "work"}])
    entra_form = 'emails[type eq "work"].value eq "W@x.test"'
    rfc_form = 'emails[type eq "work" and value eq "W@x.test"]'
    for profile in ("auto", "entra"):
        state.store.set_profile("acme", profile)
        for text in (entra_form, rfc_form):
            found = scim.get("/Users", query_string={"filter": text})
            assert found.status_code == 200, found.get_json()
            assert [r["id"] for r in found.get_json()["Resources"]] == [alice["id"]], (profile, text)
        # home's value is h@x.test for alice; the type test and the value test bind to one element.
        mixed = scim.get("/Users", query_string={"filter": 'emails[type eq "work"].value eq "h@x.test"'})
        assert [r["userName"] for r in mixed.get_json()["Resources"]] == ["bob"]
    searched = scim.post("/Users/.search", {"schemas": [SEARCH], "filter": entra_form})
    assert searched.status_code == 200 and searched.get_json()["totalResults"] == 1
    state.store.set_profile("acme", "generic")
    refused = assert_scim_error(scim.get("/Users", query_string={"filter": entra_form}), 400, "invalidFilter")
    assert "the auto and entra profiles accept it (tolerance value_path_filter_sub" in refused["detail"]
