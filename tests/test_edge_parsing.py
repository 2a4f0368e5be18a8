"""Parse once, at the edge: a malformed request costs no backend call, and each parameter is parsed once.

The app runs on the real sql backend (a SQLite file) wrapped in :class:`CountingBackend`, which passes
every call through unchanged and records its name and keyword arguments. The wrapper is not a store of
its own: every answer below comes from SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import BASE, GROUP_SCHEMA, PATCH_SCHEMA, Scim, assert_scim_error, new_org, user
from flask import Flask
from scim_sql.backend import SqlBackend

from scim_service import ScimService, get_state
from scim_service.api import resources as api_resources
from scim_service.query import params as query_params
from scim_service.sqlengine import make_engine

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


class CountingBackend:
    """Delegates to a real backend and records each method call (name, keyword arguments)."""

    def __init__(self, inner: SqlBackend) -> None:
        self.inner = inner
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name.startswith("_") or not callable(value):
            return value  # name, capabilities, engine: plain attributes, not storage calls

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return value(*args, **kwargs)

        return counted

    @property
    def names(self) -> list[str]:
        return [name for name, _kwargs in self.calls]


@pytest.fixture
def counted(tmp_path: Path) -> Iterator[tuple[Scim, CountingBackend]]:
    url = f"sqlite:///{tmp_path}/scim.db"
    backend = CountingBackend(SqlBackend(make_engine(url, {}), owns_engine=True))
    app = Flask("edge", instance_path=str(tmp_path))
    app.config.update(SCIM_DATABASE_URL=url, SCIM_LOG_LEVEL="WARNING")
    ScimService(app, backend=backend)  # type: ignore[arg-type] - a transparent wrapper of a real Backend
    state = get_state(app)
    state.upgrade()
    client = Scim(app.test_client(), new_org(state, "acme"))
    backend.calls.clear()  # the migration
    yield client, backend
    state.close()


@pytest.fixture
def people(counted: tuple[Scim, CountingBackend]) -> dict[str, Any]:
    scim, backend = counted
    alice = scim.create_user("alice", email="alice@example.com")
    group = scim.create_group("staff", [alice["id"]])
    backend.calls.clear()
    return {"alice": alice, "group": group}


def raw_patch(scim: Scim, path: str, body: Any) -> Any:
    return scim.client.patch(BASE + path, data=body, headers=scim.headers(), content_type="application/scim+json")


MALFORMED_PATCHES = [
    ('{"schemas": [', "invalidSyntax"),  # not JSON
    ("[1, 2]", "invalidSyntax"),  # not an object
    ('{"Operations": [{"op": "add", "path": "title", "value": "x"}]}', "invalidValue"),  # no schemas
    (f'{{"schemas": ["{PATCH_SCHEMA}"], "Operations": []}}', "invalidSyntax"),
    (f'{{"schemas": ["{PATCH_SCHEMA}"], "Operations": [{{"op": "move", "path": "title"}}]}}', "invalidSyntax"),
    (
        f'{{"schemas": ["{PATCH_SCHEMA}"], "Operations": [{{"op": "Adds", "path": "title", "value": 1}}]}}',
        "invalidSyntax",  # "Add" is tolerated on the default organization; "Adds" is no op in any case
    ),
    (f'{{"schemas": ["{PATCH_SCHEMA}"], "Operations": [{{"op": "add", "path": 3, "value": 1}}]}}', "invalidPath"),
    (f'{{"schemas": ["{PATCH_SCHEMA}"], "Operations": [{{"op": "add", "path": "title"}}]}}', "invalidValue"),
]


@pytest.mark.parametrize(("body", "scim_type"), MALFORMED_PATCHES)
@pytest.mark.parametrize("kind", ["Users", "Groups"])
def test_a_malformed_patch_is_answered_without_a_backend_call(
    counted: tuple[Scim, CountingBackend], people: dict[str, Any], kind: str, body: str, scim_type: str
) -> None:
    scim, backend = counted
    target = people["alice"] if kind == "Users" else people["group"]
    assert_scim_error(raw_patch(scim, f"/{kind}/{target['id']}", body), 400, scim_type)
    assert backend.calls == []


def test_a_valid_patch_does_reach_the_backend(counted: tuple[Scim, CountingBackend], people: dict[str, Any]) -> None:
    scim, backend = counted  # the counter counts: the negative tests above are not vacuous
    response = scim.patch(f"/Users/{people['alice']['id']}", [{"op": "replace", "path": "title", "value": "Lead"}])
    assert response.status_code == 200 and response.get_json()["title"] == "Lead"
    assert "get_user" in backend.names and "replace_user" in backend.names


@pytest.mark.parametrize(
    ("path", "body", "scim_type"),
    [
        ("/Users/.search", {"filter": "userName pr"}, "invalidValue"),  # no schemas
        ("/Users/.search", {"schemas": [SEARCH], "count": "10"}, "invalidValue"),
        ("/Groups/.search", {"schemas": [SEARCH], "attributes": "displayName"}, "invalidValue"),
        ("/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}, "invalidValue"),
        ("/Users/.search", [SEARCH], "invalidSyntax"),
        ("/Bulk", {"Operations": [{"method": "DELETE", "path": "/Users/x"}]}, "invalidValue"),  # no schemas
        ("/Bulk", {"schemas": [BULK], "Operations": []}, "invalidSyntax"),
        ("/Bulk", {"schemas": [BULK], "Operations": [{"method": "DELETE"}], "failOnErrors": 0}, "invalidValue"),
    ],
)
def test_malformed_search_and_bulk_envelopes_cost_no_backend_call(
    counted: tuple[Scim, CountingBackend], path: str, body: Any, scim_type: str
) -> None:
    scim, backend = counted
    assert_scim_error(scim.post(path, body), 400, scim_type)
    assert backend.calls == []


def test_a_malformed_bulk_patch_fails_alone_without_a_backend_call(
    counted: tuple[Scim, CountingBackend], people: dict[str, Any]
) -> None:
    scim, backend = counted
    bad = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "jump", "path": "title"}]}
    operations = [
        {"method": "PATCH", "path": f"/Users/{people['alice']['id']}", "data": bad},
        {"method": "MOVE", "path": "/Users"},
    ]
    results = scim.post("/Bulk", {"schemas": [BULK], "Operations": operations}).get_json()["Operations"]
    assert [(r["status"], r["response"]["scimType"]) for r in results] == [
        ("400", "invalidSyntax"),
        ("400", "invalidValue"),
    ]
    # An operation that is not an object makes the whole request unreadable: 400 before any runs.
    refused = scim.post("/Bulk", {"schemas": [BULK], "Operations": [*operations, "not an operation"]})
    assert refused.status_code == 400 and refused.get_json()["scimType"] == "invalidSyntax"
    assert backend.calls == []


# -- a single resource reads only attributes/excludedAttributes ----------------------------------------


def test_a_single_resource_ignores_the_list_parameters(
    counted: tuple[Scim, CountingBackend], people: dict[str, Any]
) -> None:
    scim, _backend = counted
    alice, group = people["alice"], people["group"]
    junk = {"filter": "(", "sortBy": "nosuch", "startIndex": "two", "count": "-x", "cursor": "zz"}
    got = scim.get(f"/Users/{alice['id']}", query_string=junk)
    assert got.status_code == 200 and got.get_json()["userName"] == "alice"
    assert scim.get(f"/Groups/{group['id']}", query_string=junk).status_code == 200
    patched = scim.patch(
        f"/Users/{alice['id']}",
        [{"op": "replace", "path": "title", "value": "Lead"}],
        query_string={"filter": "(", "attributes": "title"},
    )
    assert patched.status_code == 200
    assert set(patched.get_json()) == {"schemas", "id", "title"}  # the projection still applies
    # The same parameters on a list are still checked.
    assert_scim_error(scim.get("/Users", query_string={"filter": "("}), 400, "invalidFilter")


def test_a_bad_projection_is_refused_before_the_store(
    counted: tuple[Scim, CountingBackend], people: dict[str, Any]
) -> None:
    scim, backend = counted
    both = {"attributes": "userName", "excludedAttributes": "emails"}
    assert_scim_error(scim.get(f"/Users/{people['alice']['id']}", query_string=both), 400, "invalidValue")
    # A write with a bad projection is refused before anything is written.
    assert_scim_error(scim.post("/Users", user("bob"), query_string=both), 400, "invalidValue")
    assert backend.calls == []
    assert scim.get("/Users", query_string={"filter": 'userName eq "bob"'}).get_json()["totalResults"] == 0


def test_the_include_decision_reaches_the_backend(
    counted: tuple[Scim, CountingBackend], people: dict[str, Any]
) -> None:
    scim, backend = counted
    alice, group = people["alice"], people["group"]
    cases: list[tuple[str, dict[str, str], str, str, bool]] = [
        (f"/Groups/{group['id']}", {"excludedAttributes": "members"}, "get_group", "include_members", False),
        (f"/Groups/{group['id']}", {"attributes": "members.display"}, "get_group", "include_members", True),
        (f"/Groups/{group['id']}", {}, "get_group", "include_members", True),
        (f"/Users/{alice['id']}", {"attributes": "userName"}, "get_user", "include_groups", False),
        (f"/Users/{alice['id']}", {"excludedAttributes": "name"}, "get_user", "include_groups", True),
    ]
    for path, args, method, flag, expected in cases:
        backend.calls.clear()
        response = scim.get(path, query_string=args)
        assert response.status_code == 200
        assert backend.calls == [(method, {flag: expected})], (path, args)
        assert ("members" in response.get_json() or "groups" in response.get_json()) is expected, (path, args)
    backend.calls.clear()
    listed = scim.get("/Groups", query_string={"excludedAttributes": "members"})
    assert listed.status_code == 200 and "members" not in listed.get_json()["Resources"][0]
    [(name, _kwargs)] = backend.calls
    assert name == "list_groups"


# -- each parameter is parsed once per request ---------------------------------------------------------


@pytest.fixture
def parse_counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the request's filter and projection were parsed (counting wrappers of the real parsers)."""
    counts = {"filter": 0, "projection": 0}

    def counting(key: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[key] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(query_params, "parse_filter", counting("filter", query_params.parse_filter))
    monkeypatch.setattr(query_params, "_projection", counting("projection", query_params._projection))
    return counts


def test_list_parameters_are_parsed_once_per_request(
    counted: tuple[Scim, CountingBackend], people: dict[str, Any], parse_counts: dict[str, int]
) -> None:
    scim, _backend = counted
    listed = scim.get("/Users", query_string={"filter": 'userName eq "alice"', "attributes": "userName"})
    assert listed.get_json()["totalResults"] == 1
    assert parse_counts == {"filter": 1, "projection": 1}

    parse_counts.update(filter=0, projection=0)
    searched = scim.post("/Users/.search", {"schemas": [SEARCH], "filter": 'userName eq "alice"'})
    assert searched.get_json()["totalResults"] == 1
    assert parse_counts == {"filter": 1, "projection": 1}

    parse_counts.update(filter=0, projection=0)
    one = scim.get(f"/Users/{people['alice']['id']}", query_string={"filter": 'userName eq "x"', "attributes": "id"})
    assert one.status_code == 200
    assert parse_counts == {"filter": 0, "projection": 1}  # a single resource: the projection only, once

    parse_counts.update(filter=0, projection=0)
    patched = scim.patch(
        f"/Groups/{people['group']['id']}",
        [{"op": "replace", "path": "displayName", "value": "crew"}],
        query_string={"excludedAttributes": "members"},
    )
    assert patched.status_code == 200 and "members" not in patched.get_json()
    assert parse_counts == {"filter": 0, "projection": 1}


def test_the_group_patch_answer_is_decided_in_one_place(
    counted: tuple[Scim, CountingBackend], people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    scim, backend = counted
    path = f"/Groups/{people['group']['id']}"
    op = [{"op": "replace", "path": "displayName", "value": "crew"}]
    scim.client.application.extensions["scim"].store.set_profile("acme", "generic")
    assert scim.patch(path, op).status_code == 200  # generic: 200 with the group
    monkeypatch.setattr(api_resources, "patch_no_content", lambda profile, kind: True)
    backend.calls.clear()
    answered = scim.patch(path, [{"op": "replace", "path": "displayName", "value": "team"}])
    assert answered.status_code == 204 and answered.get_data() == b""
    assert ("patch_group", {"expected_version": "2", "include_members": False}) in backend.calls
    assert scim.get(path).get_json()["displayName"] == "team"
    assert scim.get(path).get_json()["members"][0]["value"] == people["alice"]["id"]
    assert GROUP_SCHEMA in scim.get(path).get_json()["schemas"]
