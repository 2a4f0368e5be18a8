"""Filters and sorting compiled to LDAP, run on slapd and checked against the reference evaluator.

Each case asserts the exact set of matching users, and the same query through
:func:`scim_service.query.evaluator.evaluate_list` over the rendered documents must agree (ids, order
and totalResults). What the directory cannot evaluate faithfully is narrowed there and decided by the
evaluator over the candidates, with the same results.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from scim_ldap.backend import LdapBackend
from scim_ldap.filters import FALSE, TRUE, FilterCompiler, escape
from scim_ldap.mapping import LdapMapping
from scim_ldap.plan import FilterPlan, FilterSplitter

from scim_service.errors import InvalidFilter
from scim_service.model import ENTERPRISE_SCHEMA, Member, Tenant, UserRecord
from scim_service.query.ast import AttrPath, Compare, ListQuery, Not
from scim_service.query.evaluator import evaluate_list
from scim_service.query.parser import parse_attr_path, parse_filter
from scim_service.query.resolve import resolve_filter, resolve_path
from scim_service.schemas.definitions import GROUP_RESOURCE, USER_RESOURCE

ENT = ENTERPRISE_SCHEMA

PEOPLE: dict[str, dict[str, Any]] = {
    "alice": {
        "userName": "Alice",
        "displayName": "Alice A",
        "active": True,
        "title": "Boss",
        "externalId": "X-1",
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "emails": [
            {"value": "alice@Example.com", "type": "work", "primary": True},
            {"value": "a@home.org", "type": "home"},
        ],
        ENT: {"employeeNumber": "100"},
    },
    "bob": {"userName": "bob", "active": False, "title": "", "emails": [{"value": "bob@example.com"}]},
    "carol": {
        "userName": "Carol",
        "displayName": "carol c",
        "active": True,
        "emails": [],
        "name": {},
        "externalId": "x-1",
        "phoneNumbers": [{"value": "555-1", "type": "work"}],
    },
    "emile": {
        "userName": "ÉMILE",
        "displayName": "Émile",
        "active": True,
        "title": "boss",
        "emails": [{"value": "EMILE@x.fr"}],
        ENT: {"employeeNumber": "20"},
    },
    "dave": {
        "userName": "dave_1",
        "displayName": "Dave",
        "active": True,
        "emails": [
            {"value": "d@x.com", "type": "work", "primary": False},
            {"value": "d2@x.com", "type": "work", "primary": True},
        ],
    },
}


@dataclass
class World:
    backend: LdapBackend
    tenant: Tenant
    ids: dict[str, str]
    names: dict[str, str]
    docs: list[Mapping[str, Any]]


def render(record: UserRecord) -> dict[str, Any]:
    """The SCIM document the evaluator sees for a stored user."""
    doc = dict(record.data)
    doc["id"] = record.id
    doc["meta"] = {
        "resourceType": "User",
        "created": record.created.isoformat(),
        "lastModified": record.last_modified.isoformat(),
    }
    return doc


@pytest.fixture
def world(backend: LdapBackend, tenant: Tenant) -> World:
    ids: dict[str, str] = {}
    for key, data in PEOPLE.items():
        ids[key] = backend.create_user(tenant, data).id
        time.sleep(0.002)
    # A soft-deleted user that would match almost anything: it must never appear.
    ghost = backend.create_user(tenant, {**PEOPLE["alice"], "userName": "ghost", "emails": []})
    backend.delete_user(tenant, ghost.id, hard=False)
    records = backend.list_users(tenant, ListQuery(count=100)).resources
    return World(backend, tenant, ids, {v: k for k, v in ids.items()}, [render(r) for r in records])


def resolved(text: str) -> Any:
    return resolve_filter(parse_filter(text), USER_RESOURCE)


def run(world: World, query: ListQuery) -> list[str]:
    page = world.backend.list_users(world.tenant, query)
    oracle, total = evaluate_list(world.docs, query)
    assert [u.id for u in page.resources] == [d["id"] for d in oracle], "differs from the reference evaluator"
    assert page.total_results == total
    return [world.names[u.id] for u in page.resources]


ALL = {"alice", "bob", "carol", "emile", "dave"}
CASES: list[tuple[str, set[str]]] = [
    ('userName eq "alice"', {"alice"}),
    ('userName eq "émile"', {"emile"}),
    ('userName ne "alice"', ALL - {"alice"}),
    ('userName co "A"', {"alice", "carol", "dave"}),
    ('userName sw "C"', {"carol"}),
    ('userName ew "_1"', {"dave"}),
    ('userName eq ""', set()),
    ('userName co ""', ALL),
    ('displayName eq "alice a"', {"alice"}),
    ('displayName ne "alice a"', ALL - {"alice"}),
    ("displayName pr", ALL - {"bob"}),
    ("not (displayName pr)", {"bob"}),
    ('title eq "boss"', {"alice", "emile"}),
    ("title pr", {"alice", "emile"}),  # "" is not present
    ('title ne "boss"', {"bob", "carol", "dave"}),
    ('externalId eq "X-1"', {"alice"}),  # caseExact
    ('externalId eq "x-1"', {"carol"}),
    ('externalId gt "X-1"', {"carol"}),
    ('externalId ge "X-1"', {"alice", "carol"}),
    ('externalId lt "x-1"', {"alice"}),
    ("externalId pr", {"alice", "carol"}),
    ("active eq true", ALL - {"bob"}),
    ("active eq false", {"bob"}),
    ("active ne true", {"bob"}),
    ("active pr", ALL),
    ('name.familyName eq "smith"', {"alice"}),
    ("name.familyName pr", {"alice"}),  # the sn fillers of the others are no values
    ('name.familyName ne "smith"', ALL - {"alice"}),
    ('name.familyName eq "bob"', set()),  # bob's filler sn is his userName: still no match
    ("name.givenName pr", {"alice"}),
    ("name pr", {"alice"}),
    ('emails co "example.com"', {"alice", "bob"}),
    ('emails.value eq "A@HOME.ORG"', {"alice"}),
    ('emails.value ew ".com"', {"alice", "bob", "dave"}),
    ("emails pr", {"alice", "bob", "emile", "dave"}),
    ('emails.value ne "bob@example.com"', ALL - {"bob"}),
    ('emails[value eq "d@x.com"]', {"dave"}),
    ('not (emails[value co "x"])', {"carol"}),
    ('phoneNumbers.value sw "555"', {"carol"}),
    (f'{ENT}:employeeNumber eq "100"', {"alice"}),
    (f"{ENT}:employeeNumber pr", {"alice", "emile"}),
    ('title eq "boss" and not (userName eq "alice")', {"emile"}),
    ('userName eq "bob" or displayName eq "dave"', {"bob", "dave"}),
    ('not (userName eq "bob" or title pr)', {"carol", "dave"}),
    ('meta.resourceType eq "User"', ALL),
    ('meta.resourceType eq "Group"', set()),
    ("meta.created pr", ALL),
    ('meta.created gt "2000-01-01T00:00:00Z"', ALL),
    ('meta.created lt "2000-01-01T00:00:00+02:00"', set()),
    ('id eq "not-an-id"', set()),
    ('not (id eq "not-an-id")', ALL),
    # Ordering on attributes without an ORDERING rule: extensible match with caseIgnoreOrderingMatch.
    ('userName gt "c"', {"carol", "dave", "emile"}),
    ('userName le "BOB"', {"alice", "bob"}),
    ('displayName lt "c"', {"alice"}),
    ('not (displayName gt "b")', {"alice", "bob"}),  # bob has none: gt is false, its negation true
    ('name.familyName ge "a"', {"alice"}),  # fillers are no values
    (f'{ENT}:employeeNumber gt "11"', {"emile"}),  # strings: "100" < "11" < "20"
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filter_matrix(world: World, text: str, expected: set[str]) -> None:
    assert set(run(world, ListQuery(filter=resolved(text), count=100))) == expected


def test_filter_by_id(world: World) -> None:
    alice = world.ids["alice"]
    assert run(world, ListQuery(filter=resolved(f'id eq "{alice}"'))) == ["alice"]
    assert run(world, ListQuery(filter=resolved(f'id eq "{alice.upper()}"'))) == []  # caseExact
    assert set(run(world, ListQuery(filter=resolved(f'id ge "{alice}"')))) == {
        k for k, v in world.ids.items() if v >= alice
    }


def test_datetime_filters_compare_instants(world: World) -> None:
    created = {d["id"]: d["meta"]["created"] for d in world.docs}
    third = sorted(created.values())[2]
    expected = {world.names[i] for i, c in created.items() if c > third}
    assert set(run(world, ListQuery(filter=resolved(f'meta.created gt "{third}"')))) == expected
    expected_le = {world.names[i] for i, c in created.items() if c <= third}
    assert set(run(world, ListQuery(filter=resolved(f'meta.created le "{third}"')))) == expected_le


# What the directory cannot evaluate itself: the pushed part narrows, the reference evaluator decides.
EVALUATED: list[tuple[str, set[str]]] = [
    ('emails.value gt "a"', {"alice", "bob", "emile", "dave"}),  # multi-valued: some value, not every value
    ('phoneNumbers.value lt "6"', {"carol"}),  # telephoneNumber has no ordering rule in the mapping
    (f'{ENT}:manager.value eq "x"', set()),  # a reference is stored as a DN only when it named a user
    (f"{ENT}:manager pr", set()),
    ('emails.type eq "work"', {"alice", "dave"}),  # the directory keeps email values only
    ('emails[type eq "work" and value co "a"]', {"alice"}),
    ('emails[type eq "work" and primary eq true] and title pr', {"alice"}),
    ('not (emails[type eq "work"])', {"bob", "carol", "emile"}),
    ('nickName eq "x"', set()),  # no home in the default mapping
    ('id co "-"', ALL),
    ("groups pr", set()),
    ('emails.type eq "work" or userName eq "bob"', {"alice", "dave", "bob"}),
]


@pytest.mark.parametrize(("text", "expected"), EVALUATED, ids=[c[0] for c in EVALUATED])
def test_filters_the_directory_cannot_evaluate_are_answered_like_the_evaluator(
    world: World, text: str, expected: set[str]
) -> None:
    assert set(run(world, ListQuery(filter=resolved(text), count=100))) == expected


# Not title: the evaluator sorts bob's "" first, the directory stores no empty string (documented).
SORTS = ["userName", "displayName", "emails.value", "meta.created", "meta.lastModified", "id",
         "externalId", f"{ENT}:employeeNumber"]  # fmt: skip


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("sort_by", SORTS)
def test_sorting_matches_the_evaluator(world: World, sort_by: str, descending: bool) -> None:
    path = resolve_path(parse_attr_path(sort_by), USER_RESOURCE)
    run(world, ListQuery(sort_by=path, descending=descending, count=100))


def test_sorting_missing_values_last_ascending_first_descending(world: World) -> None:
    path = resolve_path(parse_attr_path("displayName"), USER_RESOURCE)
    assert run(world, ListQuery(sort_by=path))[-1] == "bob"
    assert run(world, ListQuery(sort_by=path, descending=True))[0] == "bob"
    emails = resolve_path(parse_attr_path("emails"), USER_RESOURCE)
    # The primary email sorts dave as d2@x.com; carol has none.
    assert run(world, ListQuery(sort_by=emails)) == ["alice", "bob", "dave", "emile", "carol"]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("sort_by", ["active", "name.familyName", "phoneNumbers", "nickName", "emails.type"])
def test_keys_the_directory_cannot_order_are_sorted_like_the_evaluator(
    world: World, sort_by: str, descending: bool
) -> None:
    path = resolve_path(parse_attr_path(sort_by), USER_RESOURCE)
    run(world, ListQuery(sort_by=path, descending=descending, count=100))
    run(world, ListQuery(sort_by=path, descending=descending, start_index=2, count=2))


def test_sorted_paging_and_totals(world: World) -> None:
    path = resolve_path(parse_attr_path("userName"), USER_RESOURCE)
    active = resolved("active eq true")
    assert run(world, ListQuery(filter=active, sort_by=path, start_index=2, count=2)) == ["carol", "dave"]
    assert run(world, ListQuery(filter=active, sort_by=path, start_index=4, count=2)) == ["emile"]
    page = world.backend.list_users(world.tenant, ListQuery(filter=active, count=0))
    assert page.resources == [] and page.total_results == 4


def test_cursor_pages_sorted_in_python_survive_inserts_and_deletes(backend: LdapBackend, tenant: Tenant) -> None:
    for i, family in enumerate(["b", None, "a", "b", "c", None, "a"]):
        data: dict[str, Any] = {"userName": f"p{i}", "emails": [{"value": f"p{i}@x.example", "type": "work"}]}
        if family:
            data["name"] = {"familyName": family}
        backend.create_user(tenant, data)
    works = resolved('emails.type eq "work"')  # emails.type and name.familyName: filtered and sorted here
    family = resolve_path(parse_attr_path("name.familyName"), USER_RESOURCE)

    def whole() -> list[str]:
        page = backend.list_users(tenant, ListQuery(filter=works, sort_by=family, count=100))
        return [u.id for u in page.resources]

    before = whole()
    first = backend.list_users(tenant, ListQuery(filter=works, sort_by=family, cursor="", count=3))
    assert [u.id for u in first.resources] == before[:3] and first.total_results == 7 and first.next_cursor
    # Between pages: one user sorting before the cursor, one after it, and a delete of an unseen one.
    early = backend.create_user(
        tenant, {"userName": "early", "name": {"familyName": "a"}, "emails": [{"value": "e@x", "type": "work"}]}
    )
    late = backend.create_user(
        tenant, {"userName": "late", "name": {"familyName": "z"}, "emails": [{"value": "l@x", "type": "work"}]}
    )
    backend.delete_user(tenant, before[4], hard=False)
    after = whole()
    walked: list[str] = []
    cursor = first.next_cursor
    while cursor is not None:
        page = backend.list_users(tenant, ListQuery(filter=works, sort_by=family, cursor=cursor, count=2))
        assert page.total_results == 8
        walked += [u.id for u in page.resources]
        cursor = page.next_cursor
    assert walked == after[after.index(before[2]) + 1 :]
    assert late.id in walked and early.id not in walked and before[4] not in walked


def test_filters_on_a_users_groups_push_the_members(backend: LdapBackend, tenant: Tenant) -> None:
    users = {n: backend.create_user(tenant, {"userName": n}) for n in ("a", "b", "c", "d")}
    ops = backend.create_group(tenant, {"displayName": "Ops"}, [Member(users["a"].id), Member(users["b"].id)])
    dev = backend.create_group(tenant, {"displayName": "dev"}, [Member(users["b"].id), Member(users["c"].id)])

    def names(text: str) -> tuple[set[str], int]:
        before = backend.stats.snapshot().entries
        page = backend.list_users(tenant, ListQuery(filter=resolved(text), count=100))
        assert page.total_results == len(page.resources)
        return {u.user_name for u in page.resources}, backend.stats.snapshot().entries - before

    assert names('groups.display eq "ops"')[0] == {"a", "b"}
    assert names('groups[display eq "dev" and type eq "direct"]')[0] == {"b", "c"}
    assert names(f'groups eq "{ops.id}"')[0] == {"a", "b"}
    assert names(f'groups.value eq "{dev.id}" and userName ne "b"')[0] == {"c"}
    assert names("groups pr")[0] == {"a", "b", "c"}
    assert names("not (groups pr)")[0] == {"d"}
    assert names('groups.display ne "ops"')[0] == {"c", "d"}
    assert names('groups[not (display eq "ops")]')[0] == {"b", "c"}
    nobody, read = names('groups.display eq "nope"')
    assert nobody == set() and read == 2, "no group matches: only the two groups are read, no user"
    # ops: the two groups, ops's member list, its two members, and each member's groups (a: 1, b: 2).
    assert names('groups.display eq "ops"') == ({"a", "b"}, 2 + 1 + 2 + 3)


# -- escaping ------------------------------------------------------------------------------------

NASTY = ["a*b", "a(b)", "a\\b", "a\x00b", "ab", "a", "x)(uid=*", "*"]


def test_values_full_of_filter_syntax_match_literally(backend: LdapBackend, tenant: Tenant) -> None:
    ids = {
        value: backend.create_user(tenant, {"userName": f"u{i}", "displayName": value, "externalId": value}).id
        for i, value in enumerate(NASTY)
    }

    def found(attr: str, op: str, value: str) -> set[str]:
        path = resolve_path(parse_attr_path(attr), USER_RESOURCE)
        page = backend.list_users(tenant, ListQuery(filter=Compare(path, op, value), count=100))
        by_id = {v: k for k, v in ids.items()}
        return {by_id[u.id] for u in page.resources}

    for attr in ("displayName", "externalId"):
        for value in NASTY:
            assert found(attr, "eq", value) == {value}, (attr, value)
        assert found(attr, "co", "*") == {"a*b", "*", "x)(uid=*"}
        assert found(attr, "co", "(") == {"a(b)", "x)(uid=*"}
        assert found(attr, "co", "\\") == {"a\\b"}
        assert found(attr, "co", "\x00") == {"a\x00b"}
        assert found(attr, "sw", "a*") == {"a*b"}  # never a wildcard: "ab" does not match
        assert found(attr, "ew", ")") == {"a(b)"}
        assert found(attr, "eq", "x)(uid=*") == {"x)(uid=*"}  # no injected term
        assert found(attr, "eq", "*)(|(objectClass=*") == set()


def test_escape_and_compile_strings() -> None:
    assert escape("a*(b)\\\x00") == "a\\2a\\28b\\29\\5c\\00"
    compiler = FilterCompiler(LdapMapping(), "User", lambda _ref: None)
    user_name = resolve_path(parse_attr_path("userName"), USER_RESOURCE)
    assert compiler.compile(Compare(user_name, "co", "*)")) == "(uid=*\\2a\\29*)"
    assert compiler.compile(Not(Compare(user_name, "eq", "x"))) == "(!(uid=x))"
    family = resolve_path(parse_attr_path("name.familyName"), USER_RESOURCE)
    assert compiler.compile(Compare(family, "eq", "x")) == "(&(sn=x)(!(scimFiller=sn)))"
    assert compiler.compile(Compare(user_name, "eq", 3)) == FALSE  # a number never equals a string
    active = resolve_path(parse_attr_path("active"), USER_RESOURCE)
    assert compiler.compile(Compare(active, "eq", "true")) == FALSE  # a string never equals a boolean
    created = resolve_path(parse_attr_path("meta.created"), USER_RESOURCE)
    assert compiler.compile(Compare(created, "eq", "not a date")) == FALSE
    assert compiler.compile(Compare(created, "gt", "2024-01-01T00:00:00+01:00")) == (
        "(&(scimCreated>=20231231230000.000000Z)(!(scimCreated=20231231230000.000000Z)))"
    )
    with pytest.raises(InvalidFilter):
        compiler.compile(Compare(AttrPath("meta", "version"), "eq", "x"))


def test_the_split_pushes_what_the_directory_evaluates() -> None:
    plan = FilterSplitter(FilterCompiler(LdapMapping(), "User", lambda _ref: None)).plan
    assert plan(resolved('emails[type eq "work" and value co "x"]')) == FilterPlan(
        "(mail=*x*)", False, ("emails.type",)
    )
    # eq on a name compares comparison keys (docs/rules.md): the directory gets the key's characters in
    # order, a necessary condition, and Python decides.
    assert plan(resolved('userName eq "a" and nickName eq "b"')) == FilterPlan(
        "(uid=*a*)", False, ("userName", "nickName")
    )
    assert plan(resolved('userName eq "\uff22o-B "')).pushed == "(uid=*b*o*b*)"
    assert plan(resolved('userName eq "ss"')).pushed == TRUE  # no sure character: every entry
    assert plan(resolved('userName eq "a" or nickName eq "b"')).pushed == TRUE  # the or may hold by nickName
    assert plan(resolved('not (nickName eq "b")')).pushed == TRUE
    assert plan(resolved('not (userName eq "a")')) == FilterPlan(TRUE, False, ("userName",))
    assert plan(resolved('not (externalId eq "a")')) == FilterPlan("(!(scimExternalId=a))", True)
    assert plan(resolved('emails[value eq "x"]')) == FilterPlan("(mail=*x*)", False, ("emails.value",))
    assert plan(resolved('emails[type eq "w"] or emails[value sw "x"]')).pushed == TRUE
    assert (
        plan(resolved('emails[value sw "a" or value sw "b"] and title pr')).pushed
        == "(&(|(mail=a*)(mail=b*))(title=*))"
    )
    assert plan(resolved('emails[not (value eq "x")]')).pushed == TRUE  # some other value: nothing to push
    assert plan(resolved('id eq "nope" and nickName pr')).pushed == FALSE  # known empty: no search at all
    with pytest.raises(InvalidFilter, match=r"meta\.location"):
        plan(resolved('meta.location eq "x"'))


# -- groups --------------------------------------------------------------------------------------


def test_group_filters(backend: LdapBackend, tenant: Tenant) -> None:
    a = backend.create_user(tenant, {"userName": "a", "displayName": "Ann"})
    b = backend.create_user(tenant, {"userName": "b"})
    g1 = backend.create_group(tenant, {"displayName": "Ops", "externalId": "X1"}, [Member(a.id)])
    g2 = backend.create_group(tenant, {"displayName": "dev"}, [Member(a.id), Member(b.id)])
    g3 = backend.create_group(tenant, {"displayName": "empty"}, [])

    def ids(text: str, **kw: Any) -> list[str]:
        f = resolve_filter(parse_filter(text), GROUP_RESOURCE) if text else None
        return [g.id for g in backend.list_groups(tenant, ListQuery(filter=f, **kw)).resources]

    assert ids('displayName eq "OPS"') == [g1.id]
    assert ids(f'members.value eq "{b.id}"') == [g2.id]
    assert set(ids(f'members[value eq "{a.id}"] and displayName sw "d"')) == {g2.id}
    assert set(ids("members pr")) == {g1.id, g2.id}
    assert ids("not (members pr)") == [g3.id]
    assert ids('externalId eq "X1"') == [g1.id]
    assert ids('externalId eq "x1"') == []
    assert ids('members.value eq "00000000-0000-0000-0000-000000000000"') == []
    sort = resolve_path(parse_attr_path("displayName"), GROUP_RESOURCE)
    assert ids("", sort_by=sort) == [g2.id, g3.id, g1.id]
    page = backend.list_groups(tenant, ListQuery(count=1, start_index=2, sort_by=sort, include_members=False))
    assert page.total_results == 3 and [g.id for g in page.resources] == [g3.id]
    assert page.resources[0].members is None
    # members.display is computed (the user's displayName here): the evaluator answers it over the candidates.
    assert set(ids('members.display eq "ann"')) == {g1.id, g2.id}
    assert ids('members[display eq "ann"] and displayName eq "ops"') == [g1.id]
