"""The reference evaluator (the backends' oracle) and the resolution of filters against the schemas."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim_service.errors import InvalidFilter, InvalidValue
from scim_service.model import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from scim_service.query.ast import AttrPath, Compare, ListQuery, Not, Present, ValuePath
from scim_service.query.evaluator import evaluate_list, is_present, matches, parse_datetime, sort_key
from scim_service.query.parser import parse_attr_path, parse_filter
from scim_service.query.resolve import resolve_filter, resolve_path
from scim_service.schemas.definitions import GROUP_RESOURCE, USER_RESOURCE

BJENSEN: dict[str, Any] = {
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "Bjensen-EXT",
    "userName": "bjensen@example.com",
    "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen"},
    "displayName": "Babs Jensen",
    "title": "",
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "phoneNumbers": [],
    "addresses": None,
    "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34+02:00",
    },
    ENTERPRISE_SCHEMA: {"employeeNumber": "701984", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
}


def ev(text: str, doc: dict[str, Any] = BJENSEN) -> bool:
    """Parse, resolve against the User resource and evaluate."""
    return matches(resolve_filter(parse_filter(text), USER_RESOURCE), doc)


# -- the semantics table ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # strings: case-insensitive unless caseExact
        ('userName eq "BJENSEN@example.com"', True),
        ('userName ne "BJENSEN@example.com"', False),
        ('userName ne "other"', True),
        ('userName co "JENSEN@"', True),
        ('userName sw "bJ"', True),
        ('userName ew ".COM"', True),
        ('userName sw "jensen"', False),
        ('userName gt "a"', True),
        ('userName lt "a"', False),
        ('userName ge "BJENSEN@example.com"', True),
        ('userName le "bjensen@example.com"', True),
        ('externalId eq "bjensen-ext"', False),  # caseExact
        ('externalId eq "Bjensen-EXT"', True),
        ('id eq "2819C223-7F76-453A-919D-413861904646"', False),  # caseExact
        ('name.givenName eq "barbara"', True),
        ('NAME.GIVENNAME eq "barbara"', True),  # names case-insensitive
        # missing / null / empty
        ('nickName eq "x"', False),
        ('nickName ne "x"', True),
        ('nickName co ""', False),
        ('nickName gt "a"', False),
        ("nickName eq null", True),
        ("userName eq null", False),
        ("userName ne null", True),
        ("nickName ne null", False),
        ("addresses eq null", True),
        ("phoneNumbers eq null", True),
        # pr
        ("userName pr", True),
        ("nickName pr", False),
        ("title pr", False),  # ""
        ("phoneNumbers pr", False),  # []
        ("addresses pr", False),  # null
        ("name pr", True),
        ("emails pr", True),
        ("emails.display pr", False),
        # booleans
        ("active eq true", True),
        ("active eq false", False),
        ("active ne false", True),
        # multi-valued: any value
        ('emails eq "babs@jensen.org"', True),  # emails -> emails.value
        ('emails co "@JENSEN"', True),
        ('emails.type eq "home"', True),
        ('emails.type ne "home"', False),  # ne: no value equals
        ('emails.type ne "other"', True),
        ("emails.primary eq true", True),
        # dateTime as instants
        ('meta.lastModified eq "2011-05-13T02:42:34Z"', True),
        ('meta.lastModified gt "2011-05-13T02:42:33Z"', True),
        ('meta.lastModified lt "2011-05-13T04:42:34+02:00"', False),
        ('meta.lastModified le "2011-05-13T04:42:34+02:00"', True),
        ('meta.created ge "2010-01-23T04:56:22.000Z"', True),
        ('meta.created gt "2010-01-23T05:56:22+01:00"', False),
        # extension
        (f'{ENTERPRISE_SCHEMA}:employeeNumber eq "701984"', True),
        ('employeeNumber eq "701984"', True),  # found without the URN too
        (f"{ENTERPRISE_SCHEMA}:manager.value pr", True),
        (f'{ENTERPRISE_SCHEMA}:department eq "x"', False),
        # value paths: one element must satisfy the whole inner filter
        ('emails[type eq "work" and value co "@example.com"]', True),
        ('emails[type eq "home" and value co "@example.com"]', False),
        ('emails.type eq "home" and emails.value co "@example.com"', True),  # different elements: true
        ('emails[type eq "home" and not (primary eq true)]', True),
        ('emails[primary eq true and type eq "home"]', False),
        ('phoneNumbers[type eq "work"]', False),
        ('addresses[type eq "work"]', False),
        ('not (emails[type eq "other"])', True),
        # logic
        ('userName sw "bj" and (active eq false or name.familyName eq "jensen")', True),
        ('not (userName sw "bj")', False),
    ],
)
def test_semantics(text: str, expected: bool) -> None:
    assert ev(text) is expected


def test_case_exact_strings_compare_exactly() -> None:
    path = AttrPath("userName", schema=USER_SCHEMA, case_exact=True)
    assert not matches(Compare(path, "eq", "BJENSEN@example.com"), BJENSEN)
    assert matches(Compare(path, "eq", "bjensen@example.com"), BJENSEN)
    assert not matches(Compare(path, "co", "JENSEN"), BJENSEN)


def test_keys_are_looked_up_case_insensitively() -> None:
    doc = {"USERNAME": "Alice", "Emails": [{"Value": "a@x.org", "TYPE": "work"}]}
    assert ev('userName eq "alice"', doc)
    assert ev('emails[type eq "work" and value ew ".org"]', doc)


def test_wrong_python_types_never_match() -> None:
    doc = {"userName": 5, "active": "true", "x": [1, "a"]}
    assert not matches(Compare(AttrPath("userName", type="string"), "eq", "5"), doc)
    assert not matches(Compare(AttrPath("active", type="boolean"), "eq", True), doc)
    assert matches(Compare(AttrPath("active", type="boolean"), "ne", True), doc)
    assert matches(Compare(AttrPath("x", type="integer"), "gt", 0), doc)
    assert not matches(Compare(AttrPath("x", type="integer"), "co", 1), doc)


def test_booleans_only_support_eq() -> None:
    path = AttrPath("active", type="boolean")
    for op in ("gt", "ge", "lt", "le", "co", "sw", "ew"):
        assert not matches(Compare(path, op, True), {"active": True})


def test_numbers_compare_numerically() -> None:
    path = AttrPath("n", type="integer")
    doc = {"n": 10}
    assert matches(Compare(path, "gt", 9), doc)
    assert matches(Compare(path, "eq", 10.0), doc)
    assert not matches(Compare(path, "lt", 2), doc)  # not "10" < "2"
    assert not matches(Compare(path, "co", 1), doc)


def test_unparsable_datetimes_do_not_match() -> None:
    path = AttrPath("meta", "created", type="dateTime")
    assert not matches(Compare(path, "eq", "2010-01-23T04:56:22Z"), {"meta": {"created": "yesterday"}})
    assert matches(Compare(path, "ne", "2010-01-23T04:56:22Z"), {"meta": {"created": "yesterday"}})
    assert not matches(Compare(path, "co", "2010"), BJENSEN)


def test_null_with_other_operators_is_false() -> None:
    path = AttrPath("userName")
    for op in ("co", "sw", "ew", "gt", "ge", "lt", "le"):
        assert not matches(Compare(path, op, None), BJENSEN)
        assert not matches(Compare(path, op, None), {})


def test_is_present() -> None:
    for value in (None, "", [], {}, [None, ""], {"a": None, "b": ""}, [{}]):
        assert not is_present(value)
    for value in ("x", 0, False, [0], {"a": False}, [{"value": "x"}]):
        assert is_present(value)


def test_parse_datetime() -> None:
    assert parse_datetime("2011-05-13T04:42:34Z") == parse_datetime("2011-05-13T06:42:34+02:00")
    assert parse_datetime("2011-05-13T04:42:34") == parse_datetime("2011-05-13T04:42:34Z")
    assert parse_datetime("2011-05-13T04:42:34.123456Z") is not None
    for bad in ("", "yesterday", "13/05/2011", 5, None, "T04:42"):
        assert parse_datetime(bad) is None


def test_group_members_filter() -> None:
    group = {"id": "g1", "displayName": "Admins", "members": [{"value": "u1", "type": "User"}, {"value": "u2"}]}
    f = resolve_filter(parse_filter('members[value eq "u2"]'), GROUP_RESOURCE)
    assert matches(f, group)
    assert not matches(resolve_filter(parse_filter('members.value eq "U2"'), GROUP_RESOURCE), group)
    assert matches(resolve_filter(parse_filter('displayName eq "admins"'), GROUP_RESOURCE), group)


# -- resolution ----------------------------------------------------------------------------------


def test_resolve_canonical_paths() -> None:
    f = resolve_filter(parse_filter('USERNAME eq "x"'), USER_RESOURCE)
    assert f == Compare(AttrPath("userName", None, USER_SCHEMA, "string", False, False), "eq", "x")
    f = resolve_filter(parse_filter('urn:ietf:params:scim:schemas:core:2.0:user:Name.GivenName eq "x"'), USER_RESOURCE)
    assert f.path == AttrPath("name", "givenName", USER_SCHEMA, "string", False, False)  # type: ignore[union-attr]
    f = resolve_filter(parse_filter('employeeNUMBER eq "7"'), USER_RESOURCE)
    assert f.path == AttrPath("employeeNumber", None, ENTERPRISE_SCHEMA)  # type: ignore[union-attr]
    f = resolve_filter(parse_filter('meta.lastModified gt "2020-01-01T00:00:00Z"'), USER_RESOURCE)
    assert f.path == AttrPath("meta", "lastModified", USER_SCHEMA, "dateTime")  # type: ignore[union-attr]
    f = resolve_filter(parse_filter('id eq "x"'), GROUP_RESOURCE)
    assert f.path == AttrPath("id", None, GROUP_SCHEMA, "string", True)  # type: ignore[union-attr]


def test_resolve_multi_valued_complex_means_value() -> None:
    f = resolve_filter(parse_filter('emails co "@x"'), USER_RESOURCE)
    assert f == Compare(AttrPath("emails", "value", USER_SCHEMA, "string", False, True), "co", "@x")
    f = resolve_filter(parse_filter("emails pr"), USER_RESOURCE)
    assert f == Present(AttrPath("emails", "value", USER_SCHEMA, "string", False, True))


def test_resolve_value_path() -> None:
    f = resolve_filter(parse_filter('EMAILS[TYPE eq "work" and not (Primary eq true)]'), USER_RESOURCE)
    assert isinstance(f, ValuePath)
    assert f.attr == AttrPath("emails", None, USER_SCHEMA, "complex", False, True)
    assert f.filter.left.path == AttrPath("emails", "type", USER_SCHEMA, "string", False, True)  # type: ignore[union-attr]
    assert f.filter.right == Not(  # type: ignore[union-attr]
        Compare(AttrPath("emails", "primary", USER_SCHEMA, "boolean", False, True), "eq", True)
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('nosuch eq "x"', "Unknown attribute 'nosuch'"),
        ('name.nosuch eq "x"', "Unknown attribute 'name.nosuch'"),
        ('urn:example:other:thing eq "x"', "Unknown attribute 'urn:example:other:thing'"),
        ('emails[nosuch eq "x"]', "nosuch"),
        ("active gt true", "'gt' does not apply to the boolean attribute"),
        ("active co true", "'co' does not apply"),
        ('active eq "yes"', "Expected true or false"),
        ('active eq "true"', "Expected true or false"),
        ('x509Certificates.value gt "abc"', "'gt' does not apply to the binary attribute"),
        ('meta.lastModified gt "yesterday"', "ISO 8601"),
        ("meta.lastModified gt 2011", "ISO 8601"),
        ('meta.created co "2011"', "'co' does not apply to the dateTime"),
        ("userName eq 5", "Expected a string"),
        ("userName eq true", "Expected a string"),
        ("userName co null", "Only eq and ne compare with null"),
        ('name eq "x"', "is complex"),
        ('userName[value eq "x"]', "needs a complex attribute"),
        ('emails[primary eq "True"]', "Expected true or false"),
    ],
)
def test_resolve_errors(text: str, fragment: str) -> None:
    with pytest.raises(InvalidFilter) as info:
        resolve_filter(parse_filter(text), USER_RESOURCE)
    assert fragment in info.value.detail


def test_resolve_path_for_sorting() -> None:
    assert resolve_path(parse_attr_path("name.familyname"), USER_RESOURCE) == AttrPath(
        "name", "familyName", USER_SCHEMA
    )
    assert resolve_path(parse_attr_path("emails"), USER_RESOURCE) == AttrPath(
        "emails", "value", USER_SCHEMA, multi_valued=True
    )
    with pytest.raises(InvalidFilter, match="is complex"):
        resolve_path(parse_attr_path("name"), USER_RESOURCE)
    with pytest.raises(InvalidValue, match="Unknown attribute"):
        resolve_path(parse_attr_path("nosuch"), USER_RESOURCE, error=InvalidValue)


# -- sorting and paging ---------------------------------------------------------------------------


def _user(uid: str, user_name: str | None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": uid, **extra}
    if user_name is not None:
        doc["userName"] = user_name
    return doc


USER_NAME = AttrPath("userName", schema=USER_SCHEMA)


def test_sort_missing_last_ascending_first_descending() -> None:
    docs = [_user("3", None), _user("1", "b"), _user("2", "A")]
    page, total = evaluate_list(docs, ListQuery(sort_by=USER_NAME))
    assert [d["id"] for d in page] == ["2", "1", "3"]
    assert total == 3
    page, _ = evaluate_list(docs, ListQuery(sort_by=USER_NAME, descending=True))
    assert [d["id"] for d in page] == ["3", "1", "2"]


def test_sort_case_exact() -> None:
    docs = [_user("1", "b"), _user("2", "A"), _user("3", "a")]
    path = AttrPath("userName", case_exact=True)
    assert [d["id"] for d in evaluate_list(docs, ListQuery(sort_by=path))[0]] == ["2", "3", "1"]


def test_ties_keep_id_ascending_in_both_directions() -> None:
    docs = [_user("c", "x"), _user("a", "X"), _user("b", "y")]
    assert [d["id"] for d in evaluate_list(docs, ListQuery(sort_by=USER_NAME))[0]] == ["a", "c", "b"]
    assert [d["id"] for d in evaluate_list(docs, ListQuery(sort_by=USER_NAME, descending=True))[0]] == [
        "b",
        "a",
        "c",
    ]


def test_sort_multi_valued_by_primary_then_first() -> None:
    emails = AttrPath("emails", "value", USER_SCHEMA, multi_valued=True)
    d1 = {"id": "1", "emails": [{"value": "z@x"}, {"value": "a@x", "primary": True}]}
    d2 = {"id": "2", "emails": [{"value": "m@x"}, {"value": "b@x"}]}
    assert sort_key(emails, d1) == (0, "a@x")
    assert sort_key(emails, d2) == (0, "m@x")
    assert [d["id"] for d in evaluate_list([d2, d1], ListQuery(sort_by=emails))[0]] == ["1", "2"]


def test_sort_datetimes_as_instants_and_numbers_numerically() -> None:
    created = AttrPath("meta", "created", type="dateTime")
    docs = [
        {"id": "1", "meta": {"created": "2020-01-01T10:00:00+02:00"}},  # 08:00Z
        {"id": "2", "meta": {"created": "2020-01-01T09:00:00Z"}},
        {"id": "3", "meta": {"created": "not a date"}},
    ]
    assert [d["id"] for d in evaluate_list(docs, ListQuery(sort_by=created))[0]] == ["1", "2", "3"]
    n = AttrPath("n", type="integer")
    nums = [{"id": "1", "n": 10}, {"id": "2", "n": 9}]
    assert [d["id"] for d in evaluate_list(nums, ListQuery(sort_by=n))[0]] == ["2", "1"]


def test_paging() -> None:
    docs = [_user(f"{i:02d}", f"user{i:02d}") for i in range(10)]
    page, total = evaluate_list(docs, ListQuery(start_index=3, count=4))
    assert [d["id"] for d in page] == ["02", "03", "04", "05"]
    assert total == 10
    page, total = evaluate_list(docs, ListQuery(start_index=9, count=4))
    assert [d["id"] for d in page] == ["08", "09"]
    assert evaluate_list(docs, ListQuery(count=0)) == ([], 10)
    assert evaluate_list(docs, ListQuery(start_index=11)) == ([], 10)


def test_filter_then_page() -> None:
    docs = [_user(f"{i:02d}", f"user{i:02d}", active=i % 2 == 0) for i in range(10)]
    f = resolve_filter(parse_filter("active eq true"), USER_RESOURCE)
    page, total = evaluate_list(docs, ListQuery(filter=f, sort_by=USER_NAME, descending=True, count=2))
    assert total == 5
    assert [d["id"] for d in page] == ["08", "06"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "B", None, "c"]), max_size=12), st.booleans())
def test_sorted_output_is_a_permutation_ordered_by_key(names: list[str | None], descending: bool) -> None:
    docs = [_user(f"{i:03d}", name) for i, name in enumerate(names)]
    page, total = evaluate_list(docs, ListQuery(sort_by=USER_NAME, descending=descending, count=1000))
    assert total == len(docs)
    assert sorted(d["id"] for d in page) == [d["id"] for d in docs]
    keys = [sort_key(USER_NAME, d) for d in page]
    assert keys == sorted(keys, reverse=descending)


def test_names_sort_by_their_comparison_key() -> None:
    """userName sorts by the key uniqueness compares (the column a store indexes): a ligature or a
    fullwidth letter sorts where its plain spelling does, not after every ASCII letter."""
    docs = [_user("1", "fz"), _user("2", "\ufb01x"), _user("3", "\uff21b")]  # "fz", "ﬁx", fullwidth "Ab"
    assert [d["id"] for d in evaluate_list(docs, ListQuery(sort_by=USER_NAME))[0]] == ["3", "2", "1"]
    display = AttrPath("displayName", schema=USER_SCHEMA)  # a user's displayName is no name: str.lower order
    docs = [{"id": "1", "displayName": "fz"}, {"id": "2", "displayName": "\ufb01x"}]
    assert [d["id"] for d in evaluate_list(docs, ListQuery(sort_by=display))[0]] == ["1", "2"]
