"""Custom schema extensions (SCIM_SCHEMA_EXTENSIONS_FILE) over HTTP: discovery, validation, storage,
filtering, sorting, PATCH and projection, on SQLite and PostgreSQL; the LDAP backend refuses them at
start-up (it does not declare custom_schemas). Bad files stop start-up with the file and the problem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import GROUP_SCHEMA, USER_SCHEMA, Scim, assert_scim_error, make_app, new_org

from scim_service.config import ConfigError
from scim_service.extension import get_state
from scim_service.schemas.extensions import ExtensionFileError, load_extensions_file

ACME = "urn:example:scim:schemas:extension:acme:1.0:User"
TEAM = "urn:example:scim:schemas:extension:acme:1.0:Group"

EXTENSIONS = {
    "schemas": [
        {
            "id": ACME,
            "name": "AcmeUser",
            "description": "Acme's own user attributes",
            "resourceType": "User",
            "attributes": [
                {"name": "badgeNumber", "type": "string", "description": "The badge"},
                {"name": "clearance", "type": "integer"},
                {"name": "contractor", "type": "boolean"},
                {"name": "hiredAt", "type": "dateTime"},
                {
                    "name": "sites",
                    "type": "complex",
                    "multiValued": True,
                    "subAttributes": [
                        {"name": "value", "type": "string"},
                        {"name": "primary", "type": "boolean"},
                    ],
                },
                {"name": "auditId", "type": "string", "mutability": "readOnly"},
            ],
        },
        {
            "id": TEAM,
            "name": "AcmeGroup",
            "resourceType": "Group",
            "required": False,
            "attributes": [{"name": "costCenter", "type": "string", "caseExact": True}],
        },
    ]
}


@pytest.fixture
def ext_scim(api_database: str, tmp_path: Path) -> Iterator[Scim]:
    """A client of organization 'acme' on an app with the two extensions above."""
    path = tmp_path / "extensions.json"
    path.write_text(json.dumps(EXTENSIONS))
    if api_database == "ldap":
        with pytest.raises(ConfigError, match="'ldap' backend cannot store custom schema extensions"):
            make_app(tmp_path, SCIM_SCHEMA_EXTENSIONS_FILE=str(path))
        pytest.skip("the ldap backend does not declare custom_schemas (checked: start-up refuses the file)")
    app = make_app(tmp_path, SCIM_SCHEMA_EXTENSIONS_FILE=str(path))
    # Strict, so that an attribute no schema defines is refused rather than ignored (auto's tolerance).
    yield Scim(app.test_client(), new_org(get_state(app), "acme", max_seats=100, profile="generic"))
    get_state(app).close()


def acme_user(name: str, **acme: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA, ACME], "userName": name, ACME: acme}


def test_discovery_describes_the_extensions(ext_scim: Scim) -> None:
    schemas = {s["id"]: s for s in ext_scim.get("/Schemas").get_json()["Resources"]}
    assert ACME in schemas and TEAM in schemas
    attrs = {a["name"]: a for a in schemas[ACME]["attributes"]}
    assert attrs["clearance"]["type"] == "integer" and attrs["clearance"]["mutability"] == "readWrite"
    assert attrs["sites"]["multiValued"] is True
    assert [s["name"] for s in attrs["sites"]["subAttributes"]] == ["value", "primary"]
    assert ext_scim.get(f"/Schemas/{ACME}").get_json()["name"] == "AcmeUser"
    user_type = ext_scim.get("/ResourceTypes/User").get_json()
    assert {"schema": ACME, "required": False} in user_type["schemaExtensions"]
    group_type = ext_scim.get("/ResourceTypes/Group").get_json()
    assert group_type["schemaExtensions"] == [{"schema": TEAM, "required": False}]


def test_write_validate_store_and_render(ext_scim: Scim) -> None:
    created = ext_scim.post(
        "/Users",
        acme_user(
            "ann",
            badgeNumber="B-7",
            clearance=3,
            contractor=False,
            hiredAt="2024-05-01T09:00:00Z",
            sites=[{"value": "paris", "primary": True}],
            auditId="ignored: readOnly",
        ),
    )
    assert created.status_code == 201, created.get_json()
    doc = created.get_json()
    assert doc["schemas"] == [USER_SCHEMA, ACME]
    assert doc[ACME] == {
        "badgeNumber": "B-7",
        "clearance": 3,
        "contractor": False,
        "hiredAt": "2024-05-01T09:00:00Z",
        "sites": [{"value": "paris", "primary": True}],
    }
    assert ext_scim.get(f"/Users/{doc['id']}").get_json()[ACME] == doc[ACME]
    for bad, fragment in (
        ({"clearance": "high"}, "clearance': expected an integer"),
        ({"hiredAt": "yesterday"}, "hiredAt"),
        ({"sites": [{"value": "a", "primary": True}, {"value": "b", "primary": True}]}, "at most one may"),
        ({"shoeSize": 42}, "Unknown attribute"),
    ):
        response = ext_scim.post("/Users", acme_user("bad", **bad))
        assert_scim_error(response, 400, "invalidValue")
        assert fragment in response.get_json()["detail"]
    assert ext_scim.get("/Users").get_json()["totalResults"] == 1


def test_filter_sort_and_project(ext_scim: Scim) -> None:
    for name, badge, level, site in (("ann", "B-7", 3, "paris"), ("bob", "b-9", 1, "oslo"), ("cy", "C-1", 5, "paris")):
        ext_scim.post("/Users", acme_user(name, badgeNumber=badge, clearance=level, sites=[{"value": site}]))
    ext_scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "dee"})

    def names(filter_text: str, **params: Any) -> list[str]:
        response = ext_scim.get("/Users", query_string={"filter": filter_text, **params})
        assert response.status_code == 200, response.get_json()
        return [r["userName"] for r in response.get_json()["Resources"]]

    assert names(f"{ACME}:clearance gt 2", sortBy="userName") == ["ann", "cy"]
    assert names(f'{ACME}:badgeNumber eq "b-7"') == ["ann"]  # caseExact false: compared without case
    assert names(f'{ACME}:sites[value eq "paris"]', sortBy="userName") == ["ann", "cy"]
    assert names(f"{ACME}:clearance pr", sortBy=f"{ACME}:clearance", sortOrder="descending") == ["cy", "ann", "bob"]
    assert names(f"not ({ACME}:clearance pr)") == ["dee"]
    projected = ext_scim.get(
        "/Users", query_string={"filter": 'userName eq "ann"', "attributes": f"{ACME}:badgeNumber"}
    ).get_json()["Resources"][0]
    assert projected[ACME] == {"badgeNumber": "B-7"} and "userName" not in projected
    excluded = ext_scim.get("/Users", query_string={"filter": 'userName eq "ann"', "excludedAttributes": ACME})
    assert ACME not in excluded.get_json()["Resources"][0]


def test_patch_extension_attributes(ext_scim: Scim) -> None:
    user = ext_scim.post("/Users", acme_user("ann", badgeNumber="B-7", sites=[{"value": "paris"}])).get_json()
    path = f"/Users/{user['id']}"
    replaced = ext_scim.patch(path, [{"op": "replace", "path": f"{ACME}:clearance", "value": 4}])
    assert replaced.status_code == 200 and replaced.get_json()[ACME]["clearance"] == 4
    pathless = ext_scim.patch(path, [{"op": "add", "value": {ACME: {"contractor": True}}}])
    assert pathless.get_json()[ACME]["contractor"] is True
    filtered = ext_scim.patch(
        path, [{"op": "replace", "path": f'{ACME}:sites[value eq "paris"].primary', "value": True}]
    )
    assert filtered.get_json()[ACME]["sites"] == [{"value": "paris", "primary": True}]
    assert_scim_error(
        ext_scim.patch(path, [{"op": "replace", "path": f"{ACME}:clearance", "value": "x"}]), 400, "invalidValue"
    )
    assert_scim_error(
        ext_scim.patch(path, [{"op": "replace", "path": f"{ACME}:auditId", "value": "x"}]), 400, "mutability"
    )
    assert_scim_error(ext_scim.patch(path, [{"op": "add", "path": f"{ACME}:nosuch", "value": 1}]), 400, "invalidPath")
    removed = ext_scim.patch(path, [{"op": "remove", "path": ACME}])
    assert ACME not in removed.get_json() and removed.get_json()["schemas"] == [USER_SCHEMA]
    assert ACME not in ext_scim.get(path).get_json()


def test_group_extension(ext_scim: Scim) -> None:
    created = ext_scim.post(
        "/Groups", {"schemas": [GROUP_SCHEMA, TEAM], "displayName": "Ops", TEAM: {"costCenter": "CC-1"}}
    )
    assert created.status_code == 201, created.get_json()
    group = created.get_json()
    assert group["schemas"] == [GROUP_SCHEMA, TEAM] and group[TEAM] == {"costCenter": "CC-1"}
    patched = ext_scim.patch(
        f"/Groups/{group['id']}", [{"op": "replace", "path": f"{TEAM}:costCenter", "value": "CC-2"}]
    )
    assert patched.status_code == 200 and patched.get_json()[TEAM] == {"costCenter": "CC-2"}
    found = ext_scim.get("/Groups", query_string={"filter": f'{TEAM}:costCenter eq "CC-2"'}).get_json()
    assert [g["id"] for g in found["Resources"]] == [group["id"]]
    # caseExact: another case does not match.
    assert (
        ext_scim.get("/Groups", query_string={"filter": f'{TEAM}:costCenter eq "cc-2"'}).get_json()["totalResults"] == 0
    )


# -- the file -------------------------------------------------------------------------------------


def _schema(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "urn:example:x:1.0:User",
        "name": "X",
        "resourceType": "User",
        "attributes": [{"name": "a", "type": "string"}],
    }
    return base | overrides


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"schemas": "nope"}, 'must hold {"schemas": [...]}'),
        ([_schema(id="not-a-urn")], "must be a URN"),
        ([_schema(resourceType="Device")], "resourceType must be User or Group"),
        ([_schema(attributes=[])], "attributes must be a non-empty list"),
        ([_schema(attributes=[{"name": "a", "type": "text"}])], "type must be one of"),
        ([_schema(attributes=[{"name": "a", "type": "string", "mutable": True}])], "unknown keys ['mutable']"),
        ([_schema(attributes=[{"name": "1a", "type": "string"}])], "is not an attribute name"),
        ([_schema(attributes=[{"name": "a", "type": "string"}, {"name": "A", "type": "integer"}])], "declared twice"),
        ([_schema(attributes=[{"name": "c", "type": "complex"}])], "needs subAttributes"),
        (
            [
                _schema(
                    attributes=[{"name": "c", "type": "complex", "subAttributes": [{"name": "d", "type": "complex"}]}]
                )
            ],
            "cannot be complex",
        ),
        (
            [_schema(attributes=[{"name": "a", "type": "string", "mutability": "sometimes"}])],
            "mutability must be one of",
        ),
        ([_schema(attributes=[{"name": "externalId", "type": "string"}])], "common attribute"),
        ([_schema(id="urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")], "clashes with a built-in schema"),
        ([_schema(), _schema(name="Y")], "clashes with schemas[0]"),
        ([_schema(required="yes")], "required must be true or false"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, document: Any, fragment: str) -> None:
    path = tmp_path / "ext.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ExtensionFileError) as caught:
        load_extensions_file(path)
    assert str(path) in str(caught.value) and fragment in str(caught.value)


def test_unreadable_and_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ExtensionFileError, match="cannot be read"):
        load_extensions_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ExtensionFileError, match="not valid JSON"):
        load_extensions_file(broken)


def test_a_bad_file_stops_start_up(api_database: str, tmp_path: Path) -> None:
    path = tmp_path / "ext.json"
    path.write_text(json.dumps([_schema(resourceType="Device")]))
    with pytest.raises(ConfigError, match=r"SCIM_SCHEMA_EXTENSIONS_FILE: schema extensions file .*ext\.json.*Device"):
        make_app(tmp_path, SCIM_SCHEMA_EXTENSIONS_FILE=str(path))


def test_without_the_setting_nothing_changes(scim: Scim, state: Any) -> None:
    state.store.set_profile("acme", "generic")  # strict: the undeclared extension is refused, not ignored
    ids = [s["id"] for s in scim.get("/Schemas").get_json()["Resources"]]
    assert ids == [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", GROUP_SCHEMA]
    assert_scim_error(scim.post("/Users", acme_user("ann", clearance=1)), 400, "invalidValue")
