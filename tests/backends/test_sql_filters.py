"""Filters and sorting compiled to SQL, checked against fixed expectations and the reference evaluator.

Every case asserts the exact set of matching users (so it fails on its own if the SQL is wrong), and
the same query run through :func:`scim_service.query.evaluator.evaluate_list` over the rendered
documents must give the same result (the evaluator is the oracle of the conformance kit).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

import pytest
from scim_sql.backend import SqlBackend
from scim_sql.dialects import like_escape

from scim_service.errors import InvalidFilter
from scim_service.model import ENTERPRISE_SCHEMA, Member, Page, Tenant, UserRecord
from scim_service.query.ast import And, AttrPath, Compare, ListQuery, Not, Present, ValuePath
from scim_service.query.evaluator import evaluate_list
from scim_service.query.parser import parse_attr_path, parse_filter
from scim_service.query.resolve import resolve_filter, resolve_path
from scim_service.schemas.definitions import GROUP_RESOURCE, USER_RESOURCE

PEOPLE: dict[str, dict[str, Any]] = {
    "alice": {
        "userName": "Alice",
        "displayName": "Alice A",
        "active": True,
        "title": "Boss",
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "emails": [
            {"value": "alice@Example.com", "type": "work", "primary": True},
            {"value": "a@home.org", "type": "home"},
        ],
        ENTERPRISE_SCHEMA: {"employeeNumber": "100", "manager": {"value": "m1"}},
    },
    "bob": {
        "userName": "bob",
        "active": False,
        "title": "",
        "nickName": "50%_off\\x",
        "emails": [{"value": "bob@example.com", "type": "home"}],
    },
    "carol": {
        "userName": "Carol",
        "displayName": "carol c",
        "active": True,
        "emails": [],
        "name": {},
        "phoneNumbers": [{"value": "555-1", "type": "work"}],
    },
    "emile": {
        "userName": "ÉMILE",
        "displayName": "Émile",
        "active": True,
        "title": "boss",
        "emails": [{"value": "EMILE@x.fr"}],
        ENTERPRISE_SCHEMA: {"employeeNumber": "20"},
    },
    "dave": {
        "userName": "dave_1",
        "displayName": "Dave",
        "active": True,
        "nickName": "dave%",
        "emails": [
            {"value": "d@x.com", "type": "work", "primary": False},
            {"value": "d2@x.com", "type": "work", "primary": True},
        ],
    },
}


@dataclass
class World:
    backend: SqlBackend
    tenant: Tenant
    ids: dict[str, str]  # key of PEOPLE -> id
    names: dict[str, str]  # id -> key
    docs: list[Mapping[str, Any]]
    records: dict[str, UserRecord]
    group_id: str


def render(record: UserRecord) -> dict[str, Any]:
    """The SCIM document the evaluator sees for a stored user."""
    doc = dict(record.data)
    doc["id"] = record.id
    doc["meta"] = {
        "resourceType": "User",
        "created": record.created.isoformat(),
        "lastModified": record.last_modified.isoformat(),
    }
    if record.groups:
        doc["groups"] = [{"value": g.value, "display": g.display, "type": "direct"} for g in record.groups]
    return doc


@pytest.fixture
def world(backend: SqlBackend, tenant: Tenant) -> World:
    ids: dict[str, str] = {}
    for key, data in PEOPLE.items():
        ids[key] = backend.create_user(tenant, data).id
        time.sleep(0.002)  # distinct meta.created instants (the backend stores milliseconds)
    # A soft-deleted user that would match almost anything: it must never appear.
    ghost = backend.create_user(tenant, {**PEOPLE["alice"], "userName": "ghost", "emails": []})
    group = backend.create_group(tenant, {"displayName": "Admins"}, [Member(ids["alice"]), Member(ids["dave"])])
    backend.delete_user(tenant, ghost.id, hard=False)
    records = {r.id: r for r in backend.list_users(tenant, ListQuery(count=100)).resources}
    return World(
        backend=backend,
        tenant=tenant,
        ids=ids,
        names={v: k for k, v in ids.items()},
        docs=[render(r) for r in records.values()],
        records=records,
        group_id=group.id,
    )


def resolved(text: str) -> Any:
    return resolve_filter(parse_filter(text), USER_RESOURCE)


def run(world: World, query: ListQuery) -> list[str]:
    """The userNames list_users returns for ``query``, once :func:`assert_page_agrees` has checked them."""
    page = world.backend.list_users(world.tenant, query)
    assert_page_agrees(world, query, page)
    return [world.names[u.id] for u in page.resources]


def assert_page_agrees(world: World, query: ListQuery, page: Page) -> None:
    """``page`` holds what the reference evaluator selects for ``query``, in its order and with its total."""
    oracle, total = evaluate_list(world.docs, query)
    assert [u.id for u in page.resources] == [d["id"] for d in oracle], "differs from the reference evaluator"
    assert page.total_results == total


ENT = ENTERPRISE_SCHEMA

CASES: list[tuple[str, set[str]]] = [
    # userName: case-insensitive, Unicode-aware
    ('userName eq "alice"', {"alice"}),
    ('userName eq "émile"', {"emile"}),
    ('userName ne "alice"', {"bob", "carol", "emile", "dave"}),
    ('userName co "A"', {"alice", "carol", "dave"}),
    ('userName sw "C"', {"carol"}),
    ('userName ew "_1"', {"dave"}),
    ('userName co "_"', {"dave"}),  # _ is literal, not a wildcard
    ('userName gt "c"', {"carol", "emile", "dave"}),
    ('userName ge "carol"', {"carol", "emile", "dave"}),
    ('userName lt "bob"', {"alice"}),
    ('userName le "bob"', {"alice", "bob"}),
    # id is caseExact
    # (built per world below)
    # displayName: missing on bob
    ('displayName eq "alice a"', {"alice"}),
    ('displayName ne "alice a"', {"bob", "carol", "emile", "dave"}),
    ("displayName pr", {"alice", "carol", "emile", "dave"}),
    ("not (displayName pr)", {"bob"}),
    ('displayName lt "z"', {"alice", "carol", "dave"}),  # É sorts after z by code point
    # JSON string attributes, LIKE escaping
    ('title eq "boss"', {"alice", "emile"}),
    ("title pr", {"alice", "emile"}),  # "" is not present
    ('title ne "boss"', {"bob", "carol", "dave"}),
    ('nickName co "%"', {"bob", "dave"}),
    ('nickName co "%_"', {"bob"}),
    ('nickName co "\\\\"', {"bob"}),
    ('nickName ew "%"', {"dave"}),
    ('nickName sw "50%"', {"bob"}),
    # booleans
    ("active eq true", {"alice", "carol", "emile", "dave"}),
    ("active eq false", {"bob"}),
    ("active ne true", {"bob"}),
    ("active pr", {"alice", "bob", "carol", "emile", "dave"}),
    # complex singular
    ('name.familyName eq "smith"', {"alice"}),
    ("name.givenName pr", {"alice"}),
    ("name pr", {"alice"}),  # carol's {} is not present
    ('name.familyName ne "smith"', {"bob", "carol", "emile", "dave"}),
    # multi-valued any-match
    ('emails co "example.com"', {"alice", "bob"}),
    ('emails.value eq "A@HOME.ORG"', {"alice"}),
    ('emails.value ew ".com"', {"alice", "bob", "dave"}),
    ('emails.type eq "work"', {"alice", "dave"}),
    ("emails pr", {"alice", "bob", "emile", "dave"}),  # carol's [] is not present
    ("emails.primary eq true", {"alice", "dave"}),
    ('emails.value ne "bob@example.com"', {"alice", "carol", "emile", "dave"}),
    ('phoneNumbers.value sw "555"', {"carol"}),
    # value paths: one element satisfies the whole inner filter
    ('emails[type eq "work" and value co "alice"]', {"alice"}),
    ('emails[type eq "home" and value co "alice"]', set()),
    ('emails[type eq "work" and primary eq true]', {"alice", "dave"}),
    ('emails[type eq "work" and not (primary eq true)]', {"dave"}),
    ("emails[primary pr]", {"alice", "dave"}),
    ("emails[not (type pr)]", {"emile"}),
    ('not (emails[type eq "home"])', {"carol", "emile", "dave"}),
    # the enterprise extension, under its URN key
    (f'{ENT}:employeeNumber eq "100"', {"alice"}),
    (f"{ENT}:employeeNumber pr", {"alice", "emile"}),
    (f'{ENT}:manager.value eq "m1"', {"alice"}),
    (f'{ENT}:manager.value eq "M1"', set()),  # caseExact in the enterprise schema
    (f'{ENT}:employeeNumber lt "3"', {"alice", "emile"}),  # strings compare as strings
    # logic
    ('title eq "boss" and not (userName eq "alice")', {"emile"}),
    ('userName eq "bob" or displayName eq "dave"', {"bob", "dave"}),
    ('not (userName eq "bob" or title pr)', {"carol", "dave"}),
    # meta
    ('meta.resourceType eq "User"', {"alice", "bob", "carol", "emile", "dave"}),
    ("meta.created pr", {"alice", "bob", "carol", "emile", "dave"}),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filter_matrix(world: World, text: str, expected: set[str]) -> None:
    assert set(run(world, ListQuery(filter=resolved(text), count=100))) == expected


def test_filter_by_id_is_case_exact(world: World) -> None:
    alice = world.ids["alice"]
    assert run(world, ListQuery(filter=resolved(f'id eq "{alice}"'))) == ["alice"]
    assert run(world, ListQuery(filter=resolved(f'id eq "{alice.upper()}"'))) == []


def test_filter_by_group_membership(world: World) -> None:
    gid = world.group_id
    assert set(run(world, ListQuery(filter=resolved(f'groups.value eq "{gid}"')))) == {"alice", "dave"}
    assert set(run(world, ListQuery(filter=resolved('groups.display eq "admins"')))) == {"alice", "dave"}
    assert set(run(world, ListQuery(filter=resolved("not (groups pr)")))) == {"bob", "carol", "emile"}


def test_filter_by_datetime_compares_instants(world: World) -> None:
    carol = world.records[world.ids["carol"]]
    later = {"carol", "emile", "dave"}
    at = carol.created
    assert set(run(world, ListQuery(filter=resolved(f'meta.created ge "{at.isoformat()}"')))) == later
    # The same instant written with another offset.
    shifted = at.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert set(run(world, ListQuery(filter=resolved(f'meta.created ge "{shifted}"')))) == later
    assert set(run(world, ListQuery(filter=resolved(f'meta.created lt "{shifted}"')))) == {"alice", "bob"}
    assert run(world, ListQuery(filter=resolved(f'meta.created eq "{shifted}"'))) == ["carol"]
    assert set(run(world, ListQuery(filter=resolved('meta.lastModified gt "2000-01-01T00:00:00Z"')))) == set(PEOPLE)


def test_case_exact_sub_string_operators(world: World) -> None:
    # A hand-built resolved path with caseExact true (no core attribute is both caseExact and free text).
    path = AttrPath("title", schema="urn:ietf:params:scim:schemas:core:2.0:User", case_exact=True)
    for op, value, expected in [
        ("eq", "boss", {"emile"}),
        ("co", "Bo", {"alice"}),
        ("sw", "b", {"emile"}),
        ("ew", "SS", set()),
        ("ew", "ss", {"alice", "emile"}),
        ("gt", "C", {"emile"}),
    ]:
        assert set(run(world, ListQuery(filter=Compare(path, op, value)))) == expected, (op, value)


def test_hand_built_ast_type_mismatches_never_match(world: World) -> None:
    core = "urn:ietf:params:scim:schemas:core:2.0:User"
    title = AttrPath("title", schema=core)
    active = AttrPath("active", schema=core, type="boolean")
    assert run(world, ListQuery(filter=Compare(title, "eq", 5))) == []
    assert run(world, ListQuery(filter=Compare(active, "eq", "true"))) == []
    assert run(world, ListQuery(filter=Compare(active, "gt", True))) == []
    # eq null: the attribute has no values
    assert set(run(world, ListQuery(filter=Compare(title, "eq", None)))) == {"carol", "dave"}
    assert set(run(world, ListQuery(filter=Compare(title, "ne", None)))) == {"alice", "bob", "emile"}
    emails = AttrPath("emails", "value", schema=core, multi_valued=True)
    assert run(world, ListQuery(filter=Compare(emails, "eq", None))) == ["carol"]
    # a hand-built value path and present
    vp = ValuePath(
        AttrPath("emails", schema=core, type="complex", multi_valued=True),
        And(
            Compare(AttrPath("emails", "type", schema=core), "eq", "WORK"),
            Not(Present(AttrPath("emails", "primary", schema=core, type="boolean"))),
        ),
    )
    assert run(world, ListQuery(filter=vp)) == []


SORTS = [
    "userName",
    "displayName",
    "title",
    "name.familyName",
    "emails.value",
    "emails.type",
    "meta.created",
    "meta.lastModified",
    "active",
    "nickName",
    f"{ENT}:employeeNumber",
    "id",
]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("sort_by", SORTS)
def test_sorting_matches_the_evaluator(world: World, sort_by: str, descending: bool) -> None:
    path = resolve_path(parse_attr_path(sort_by), USER_RESOURCE)
    run(world, ListQuery(sort_by=path, descending=descending, count=100))


def test_sorting_missing_values_last_ascending_first_descending(world: World) -> None:
    path = resolve_path(parse_attr_path("displayName"), USER_RESOURCE)
    assert run(world, ListQuery(sort_by=path)) == ["alice", "carol", "dave", "emile", "bob"]
    assert run(world, ListQuery(sort_by=path, descending=True)) == ["bob", "emile", "dave", "carol", "alice"]
    emails = resolve_path(parse_attr_path("emails.value"), USER_RESOURCE)
    # The primary email sorts dave as d2@x.com; carol has none.
    assert run(world, ListQuery(sort_by=emails)) == ["alice", "bob", "dave", "emile", "carol"]


def test_sorted_paging_and_totals(world: World) -> None:
    path = resolve_path(parse_attr_path("userName"), USER_RESOURCE)
    active = resolved("active eq true")
    assert run(world, ListQuery(filter=active, sort_by=path, start_index=2, count=2)) == ["carol", "dave"]
    assert run(world, ListQuery(filter=active, sort_by=path, start_index=4, count=2)) == ["emile"]
    page = world.backend.list_users(world.tenant, ListQuery(filter=active, count=0))
    assert page.resources == [] and page.total_results == 4


def test_group_filters(backend: SqlBackend, tenant: Tenant) -> None:
    a = backend.create_user(tenant, {"userName": "a", "displayName": "Ann"})
    b = backend.create_user(tenant, {"userName": "b"})
    g1 = backend.create_group(tenant, {"displayName": "Ops", "externalId": "X1"}, [Member(a.id)])
    g2 = backend.create_group(tenant, {"displayName": "dev"}, [Member(a.id), Member(b.id)])
    g3 = backend.create_group(tenant, {"displayName": "empty"}, [])

    def ids(text: str) -> set[str]:
        f = resolve_filter(parse_filter(text), GROUP_RESOURCE)
        return {g.id for g in backend.list_groups(tenant, ListQuery(filter=f)).resources}

    assert ids('displayName eq "OPS"') == {g1.id}
    assert ids(f'members.value eq "{b.id}"') == {g2.id}
    assert ids('members.display eq "ann"') == {g1.id, g2.id}
    assert ids(f'members[value eq "{a.id}"] and displayName sw "d"') == {g2.id}
    assert ids("members pr") == {g1.id, g2.id}
    assert ids("not (members pr)") == {g3.id}
    assert ids('externalId eq "X1"') == {g1.id}
    assert ids('externalId eq "x1"') == set()  # externalId is caseExact
    with pytest.raises(InvalidFilter):
        backend.list_groups(tenant, ListQuery(filter=Compare(AttrPath("meta", "version"), "eq", "x")))


def test_like_escape() -> None:
    assert like_escape("50%_a\\b") == "50\\%\\_a\\\\b"


def test_user_names_sort_by_the_key_column(backend: SqlBackend, tenant: Tenant) -> None:
    """sortBy userName orders by the stored comparison key (the indexed column), as the evaluator does:
    a ligature or fullwidth spelling sorts with its plain one, on SQLite and PostgreSQL alike."""
    names = ["fz", "\ufb01x", "\uff21b", "bob"]  # "ﬁx" sorts as "fix", fullwidth "Ab" as "ab"
    ids = {backend.create_user(tenant, {"userName": n}).id: n for n in names}
    path = resolve_path(parse_attr_path("userName"), USER_RESOURCE)
    for descending in (False, True):
        page = backend.list_users(tenant, ListQuery(sort_by=path, descending=descending, count=10))
        got = [ids[r.id] for r in page.resources]
        expected = ["\uff21b", "bob", "\ufb01x", "fz"]
        assert got == (expected[::-1] if descending else expected)
