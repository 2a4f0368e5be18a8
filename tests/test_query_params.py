"""List parameters (RFC 7644 §3.4.2) and POST .search bodies (§3.4.3) parsed into ListRequest."""

from __future__ import annotations

from typing import Any

import pytest

from scim_service.errors import InvalidFilter, InvalidSyntax, InvalidValue
from scim_service.model import ENTERPRISE_SCHEMA, USER_SCHEMA
from scim_service.query.ast import AttrPath, Compare, ListQuery
from scim_service.query.params import SEARCH_REQUEST_SCHEMA, ListRequest, parse_list_params, parse_search_request
from scim_service.schemas.definitions import GROUP_RESOURCE, USER_RESOURCE


def parse(args: dict[str, Any], resource: Any = USER_RESOURCE) -> ListRequest:
    return parse_list_params(args, resource, default_count=100, max_count=500)


def search(body: dict[str, Any], resource: Any = USER_RESOURCE) -> ListRequest:
    return parse_search_request(
        {"schemas": [SEARCH_REQUEST_SCHEMA], **body}, resource, default_count=100, max_count=500
    )


def test_defaults() -> None:
    assert parse({}) == ListRequest(query=ListQuery(start_index=1, count=100))


@pytest.mark.parametrize(("start", "expected"), [("1", 1), ("5", 5), ("0", 1), ("-3", 1), (" 7 ", 7), ("", 1)])
def test_start_index_clamped(start: str, expected: int) -> None:
    assert parse({"startIndex": start}).query.start_index == expected


@pytest.mark.parametrize(
    ("count", "expected"), [("10", 10), ("0", 0), ("-1", 0), ("500", 500), ("501", 500), ("", 100)]
)
def test_count_clamped(count: str, expected: int) -> None:
    assert parse({"count": count}).query.count == expected


def test_default_count_is_clamped_too() -> None:
    assert parse_list_params({}, USER_RESOURCE, default_count=1000, max_count=200).query.count == 200


@pytest.mark.parametrize("args", [{"startIndex": "one"}, {"count": "1.5"}, {"count": "ten"}, {"startIndex": "2e3"}])
def test_non_integers_are_invalid_values(args: dict[str, str]) -> None:
    with pytest.raises(InvalidValue, match="must be an integer"):
        parse(args)


def test_parameter_names_are_case_insensitive() -> None:
    q = parse({"startindex": "3", "COUNT": "4", "SortBy": "userName", "sortorder": "DESCENDING"}).query
    assert (q.start_index, q.count, q.descending) == (3, 4, True)
    assert q.sort_by == AttrPath("userName", schema=USER_SCHEMA)


def test_filter_is_parsed_and_resolved() -> None:
    q = parse({"filter": 'username eq "bjensen"'}).query
    assert q.filter == Compare(AttrPath("userName", schema=USER_SCHEMA), "eq", "bjensen")
    assert parse({"filter": "  "}).query.filter is None


@pytest.mark.parametrize(("text", "fragment"), [("userName eq", "position"), ('nosuch eq "x"', "nosuch")])
def test_bad_filters(text: str, fragment: str) -> None:
    with pytest.raises(InvalidFilter, match=fragment):
        parse({"filter": text})


def test_sort_by_resolves_urns_and_multi_valued() -> None:
    assert parse({"sortBy": f"{ENTERPRISE_SCHEMA}:employeeNumber"}).query.sort_by == AttrPath(
        "employeeNumber", schema=ENTERPRISE_SCHEMA
    )
    assert parse({"sortBy": "emails"}).query.sort_by == AttrPath("emails", "value", USER_SCHEMA, multi_valued=True)
    assert parse({"sortBy": "meta.created"}).query.sort_by == AttrPath("meta", "created", USER_SCHEMA, "dateTime")


@pytest.mark.parametrize(
    ("sort_by", "fragment"),
    [
        ("nosuch", "Unknown attribute"),
        ("name", "is complex"),
        ("userName eq", "end of the attribute path"),
        ("a..b", "at most one sub-attribute"),
        ("a.", "Expected an attribute name"),
    ],
)
def test_bad_sort_by_is_invalid_value(sort_by: str, fragment: str) -> None:
    with pytest.raises(InvalidValue, match=fragment) as info:
        parse({"sortBy": sort_by})
    assert info.value.scim_type == "invalidValue"


@pytest.mark.parametrize(("order", "descending"), [("ascending", False), ("Descending", True), ("", False)])
def test_sort_order(order: str, descending: bool) -> None:
    assert parse({"sortBy": "userName", "sortOrder": order}).query.descending is descending


def test_bad_sort_order() -> None:
    with pytest.raises(InvalidValue, match="sortOrder must be 'ascending' or 'descending'"):
        parse({"sortOrder": "up"})


def test_attributes_and_excluded_attributes() -> None:
    r = parse({"attributes": "userName, emails ,name.givenName,"})
    assert r.attributes == ("userName", "emails", "name.givenName")
    assert r.excluded_attributes is None
    assert r.query.include_groups is False
    r = parse({"excludedAttributes": "groups"})
    assert r.excluded_attributes == ("groups",)
    assert r.query.include_groups is False
    assert r.query.include_members is True
    with pytest.raises(InvalidValue, match="not both"):
        parse({"attributes": "userName", "excludedAttributes": "emails"})


def test_include_members_follows_the_projection() -> None:
    assert parse({}, GROUP_RESOURCE).query.include_members is True
    assert parse({"attributes": "displayName"}, GROUP_RESOURCE).query.include_members is False
    assert parse({"attributes": "displayName,members.value"}, GROUP_RESOURCE).query.include_members is True
    assert (
        parse(
            {"attributes": "urn:ietf:params:scim:schemas:core:2.0:Group:members"}, GROUP_RESOURCE
        ).query.include_members
        is True
    )
    assert parse({"excludedAttributes": "Members"}, GROUP_RESOURCE).query.include_members is False
    assert parse({"attributes": "groups"}).query.include_groups is True


def test_cursor() -> None:
    assert parse({}).query.cursor is None
    assert parse({"cursor": ""}).query.cursor == ""  # present and empty: the first page (RFC 9865)
    assert parse({"cursor": "abc"}).query.cursor == "abc"


# -- POST .search --------------------------------------------------------------------------------


def test_search_request() -> None:
    r = search(
        {
            "filter": 'displayName sw "smith"',
            "attributes": ["displayName", "userName"],
            "sortBy": "userName",
            "sortOrder": "descending",
            "startIndex": 2,
            "count": 1000,
        }
    )
    assert r.attributes == ("displayName", "userName")
    assert r.query.filter == Compare(AttrPath("displayName", schema=USER_SCHEMA), "sw", "smith")
    assert (r.query.start_index, r.query.count, r.query.descending) == (2, 500, True)


def test_search_request_defaults() -> None:
    assert search({}) == ListRequest(query=ListQuery(count=100))


@pytest.mark.parametrize(
    ("body", "error", "fragment"),
    [
        ({"schemas": []}, InvalidValue, "does not contain urn:ietf:params:scim:api:messages:2.0:SearchRequest"),
        ({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}, InvalidValue, "SearchRequest"),
        ({}, InvalidValue, "'schemas' attribute is missing: a SearchRequest"),
    ],
)
def test_search_request_needs_its_schema(body: dict[str, Any], error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        parse_search_request(body, USER_RESOURCE, default_count=100, max_count=500)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"count": "10"}, "count must be a JSON integer"),
        ({"startIndex": 1.5}, "startIndex must be a JSON integer"),
        ({"count": True}, "count must be a JSON integer"),
        ({"attributes": "userName"}, "attributes must be a JSON array"),
        ({"excludedAttributes": "userName"}, "excludedAttributes must be a JSON array"),
        ({"attributes": [1]}, "list of attribute names"),
    ],
)
def test_search_request_types(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidValue, match=fragment):
        search(body)


def test_search_body_must_be_an_object() -> None:
    with pytest.raises(InvalidSyntax):
        parse_search_request([], USER_RESOURCE, default_count=1, max_count=1)  # type: ignore[arg-type]
