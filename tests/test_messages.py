"""The request messages (PatchOp, SearchRequest, BulkRequest) through marshmallow, and the one ``schemas``
rule that every message, resource and extension-file entry follows (docs/rules.md, "schemas")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_helpers import GROUP_SCHEMA, USER_SCHEMA, Scim, assert_scim_error, make_app, new_org

from scim_service.errors import InvalidPath, InvalidSyntax, InvalidValue, PayloadTooLarge, ScimError
from scim_service.extension import get_state
from scim_service.profiles import ENTRA, ActiveProfile
from scim_service.schemas.extensions import parse_extensions
from scim_service.schemas.messages import (
    BULK_REQUEST_SCHEMA,
    PATCH_OP_SCHEMA,
    SEARCH_REQUEST_SCHEMA,
    load_bulk_request,
    load_patch_op,
    load_search_request,
)
from scim_service.schemas.resources import load_group, load_user

SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


def _extension_entry(body: dict[str, Any]) -> Any:
    entry = {"id": "urn:example:x:1.0:User", "name": "X", "resourceType": "User"}
    entry["attributes"] = [{"name": "a", "type": "string"}]
    return parse_extensions([{**entry, **body}])


# Each reader with the rest of a valid body: (name, urn, read(body), the valid rest).
READERS: list[tuple[str, str, Callable[[dict[str, Any]], Any], dict[str, Any]]] = [
    ("PatchOp", PATCH_OP_SCHEMA, load_patch_op, {"Operations": [{"op": "remove", "path": "title"}]}),
    ("SearchRequest", SEARCH_REQUEST_SCHEMA, load_search_request, {"filter": "userName pr"}),
    (
        "BulkRequest",
        BULK_REQUEST_SCHEMA,
        lambda body: load_bulk_request(body, max_operations=10),
        {"Operations": [{"method": "DELETE", "path": "/Users/x"}]},
    ),
    ("User", USER_SCHEMA, load_user, {"userName": "ann"}),
    ("Group", GROUP_SCHEMA, load_group, {"displayName": "crew"}),
]
IDS = [name for name, *_rest in READERS]


@pytest.mark.parametrize(("name", "urn", "read", "rest"), READERS, ids=IDS)
def test_a_missing_schemas_is_invalid_value_everywhere(name: str, urn: str, read: Any, rest: dict) -> None:
    with pytest.raises(InvalidValue, match=f"'schemas' attribute is missing: a .*{urn}"):
        read(dict(rest))


@pytest.mark.parametrize(("name", "urn", "read", "rest"), READERS, ids=IDS)
@pytest.mark.parametrize(
    ("schemas", "fragment"),
    [
        ([], "does not contain"),
        (["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "does not contain"),
        ("x", "must be an array of schema URNs, got the string"),
        ([1], "must be an array of schema URNs"),
        (None, "must be an array of schema URNs"),
        ({"urn": True}, "must be an array of schema URNs"),
    ],
)
def test_a_wrong_schemas_is_invalid_value_everywhere(
    name: str, urn: str, read: Any, rest: dict, schemas: Any, fragment: str
) -> None:
    with pytest.raises(InvalidValue, match=fragment) as caught:
        read({"schemas": schemas, **rest})
    assert caught.value.status == 400 and caught.value.scim_type == "invalidValue"


@pytest.mark.parametrize(("name", "urn", "read", "rest"), READERS, ids=IDS)
@pytest.mark.parametrize("key", ["schemas", "Schemas", "SCHEMAS"])
def test_the_key_and_the_urn_match_in_any_case(name: str, urn: str, read: Any, rest: dict, key: str) -> None:
    assert read({key: [urn.lower()], **rest}) is not None
    assert read({key: [urn.upper()], **rest}) is not None
    # Another URN next to the message's own is no error for a message.
    if name in ("PatchOp", "SearchRequest", "BulkRequest"):
        assert read({key: ["urn:example:other", urn], **rest}) is not None


def test_the_extension_file_follows_the_rule_when_an_entry_names_its_schemas() -> None:
    assert _extension_entry({})[0].schema.id == "urn:example:x:1.0:User"  # optional in the file
    assert _extension_entry({"schemas": [SCHEMA_SCHEMA.upper()]})[0].schema.name == "X"
    for bad in ([], ["urn:x"], "x", [3]):
        with pytest.raises(ValueError, match="'schemas' attribute"):
            _extension_entry({"schemas": bad})


def test_the_same_rule_over_http(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    scim = Scim(app.test_client(), new_org(get_state(app), "acme"))
    try:
        ann = scim.post("/Users", {"SCHEMAS": [USER_SCHEMA.lower()], "userName": "ann"})
        assert ann.status_code == 201
        path = f"/Users/{ann.get_json()['id']}"
        lowered = {"Schemas": [PATCH_OP_SCHEMA.lower()], "operations": [{"op": "add", "path": "title", "value": "x"}]}
        assert scim.request("PATCH", path, lowered).status_code == 200
        search = scim.post("/Users/.search", {"schemas": [SEARCH_REQUEST_SCHEMA.upper()], "FILTER": "title pr"})
        assert search.get_json()["totalResults"] == 1
        bulk = {"schemas": [BULK_REQUEST_SCHEMA.lower()], "operations": [{"METHOD": "delete", "path": path}]}
        assert [op["status"] for op in scim.post("/Bulk", bulk).get_json()["Operations"]] == ["204"]
        for endpoint, method in (("/Users", "POST"), (path, "PATCH"), ("/.search", "POST"), ("/Bulk", "POST")):
            assert_scim_error(scim.request(method, endpoint, {"userName": "x"}), 400, "invalidValue")
            wrong = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "userName": "x"}
            assert_scim_error(scim.request(method, endpoint, wrong), 400, "invalidValue")
    finally:
        get_state(app).close()


# -- the other checks of each message -------------------------------------------------------------------


def test_patch_operations_parse_to_plain_objects() -> None:
    active = ActiveProfile(ENTRA)
    body = {
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [
            {"op": "Replace", "path": " ", "value": {"title": "x"}},
            {"OP": "remove", "Path": "emails", "VALUE": None},
        ],
    }
    first, second = load_patch_op(body, active)
    assert (first.op, first.path, first.value, first.has_value, first.index) == (
        "replace",
        None,
        {"title": "x"},
        True,
        1,
    )
    assert (second.op, second.path, second.value, second.has_value) == ("remove", "emails", None, True)
    assert first.profile is active and [t.value for t in active.fired] == ["capitalised_ops"]
    assert (
        load_patch_op({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "path": "x"}]})[0].has_value
        is False
    )


@pytest.mark.parametrize(
    ("operations", "error", "fragment"),
    [
        (None, InvalidSyntax, "non-empty list"),
        ({"op": "add"}, InvalidSyntax, "non-empty list"),
        ([{"op": "add", "path": "title", "value": 1}, 7], InvalidSyntax, "Operation 2 must be an object"),
        (
            [{"op": "Add", "path": "title", "value": 1}],
            InvalidSyntax,
            "Operation 1: op must be add, replace or remove in lower",
        ),
        ([{"op": None}], InvalidSyntax, "Operation 1: op must be add, replace or remove"),
        ([{"op": "add", "path": ["x"], "value": 1}], InvalidPath, "Operation 1: path must be a string"),
        ([{"op": "replace", "path": "title"}], InvalidValue, "Operation 1: a value is required for replace"),
        # The first problem in order is the one reported: op before path before value.
        ([{"op": "jump", "path": 3}], InvalidSyntax, "op must be"),
    ],
)
def test_patch_op_errors(operations: Any, error: type[ScimError], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        load_patch_op({"schemas": [PATCH_OP_SCHEMA], "Operations": operations})


def test_search_request_parameters() -> None:
    params = load_search_request(
        {"schemas": [SEARCH_REQUEST_SCHEMA], "sortBy": "userName", "STARTINDEX": 3, "attributes": ["a"], "x": 1}
    )
    assert params == {"sortby": "userName", "startindex": 3, "attributes": ["a"]}
    with pytest.raises(InvalidSyntax, match="must be a JSON object"):
        load_search_request("filter=x")


def test_bulk_request_envelope_and_operations() -> None:
    parsed = load_bulk_request(
        {
            "schemas": [BULK_REQUEST_SCHEMA],
            "failOnErrors": 2,
            "Operations": [
                {"method": "post", "path": "/Users", "bulkId": "a", "data": {"userName": "x"}},
                {"method": "PATCH", "path": "/Users/1", "version": 'W/"3"', "data": {}},
                {"method": "MOVE", "path": "/Users/1", "bulkId": "m"},
                {"method": "DELETE", "path": "/Users/bulkId:a", "version": 5},
            ],
        },
        max_operations=5,
    )
    assert parsed.fail_on_errors == 2
    post, patch, move, delete = parsed.operations
    assert (post.method, post.path, post.bulk_id, post.data, post.error) == (
        "POST",
        "/Users",
        "a",
        {"userName": "x"},
        None,
    )
    assert (patch.method, patch.version) == ("PATCH", "3")
    assert isinstance(move.error, InvalidValue) and "Unknown bulk method" in move.error.detail and move.bulk_id == "m"
    assert (delete.error, delete.version, delete.references) == (None, None, frozenset({"a"}))
    # What no operation can run with fails the whole request before any runs.
    envelope = {"schemas": [BULK_REQUEST_SCHEMA]}
    refused = [
        ([{"method": "DELETE", "path": "/Users/1", "bulkId": 5}], InvalidValue, "bulkId must be a string"),
        ([{"method": "DELETE", "path": "/Users/1"}, []], InvalidSyntax, "Operation 2 of the BulkRequest must be an"),
        ([{"method": "DELETE", "path": "/Users/bulkId:x"}], InvalidValue, "which no operation of this request defines"),
        ([{"method": "POST", "bulkId": "a"}, {"method": "POST", "bulkId": "a"}], InvalidValue, "more than one"),
    ]
    for operations, error, message in refused:
        with pytest.raises(error, match=message):
            load_bulk_request({**envelope, "Operations": operations}, max_operations=5)
    with pytest.raises(PayloadTooLarge, match="at most 4"):
        load_bulk_request({"schemas": [BULK_REQUEST_SCHEMA], "Operations": [{}] * 5}, max_operations=4)
    for bad in (0, -1, True, "2", 1.5):
        with pytest.raises(InvalidValue, match="failOnErrors must be a positive integer"):
            load_bulk_request(
                {"schemas": [BULK_REQUEST_SCHEMA], "Operations": [{}], "failOnErrors": bad}, max_operations=4
            )
