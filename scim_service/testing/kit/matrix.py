"""The populated tenant of the filter and sort tests: users, groups, the cases, and what they must select.

The users are created one tick apart; ``zed`` is soft-deleted afterwards and a user ``alice`` of
another tenant exists too: neither may ever match. Filter texts may name placeholders (``{id_Bob}``,
``{mid_2_3}``: the instant between the second and third user's lastModified) that :class:`Matrix`
fills with the values of its tenant.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from scim_service.backend import Backend
from scim_service.model import GroupChanges, Member, Tenant
from scim_service.query import evaluator
from scim_service.testing.data import aware, group_filter, iso, new_tenant, rendered_group, rendered_user, user_filter
from scim_service.testing.kit.helpers import ENT, midpoint, tick

__all__ = ["GROUP_FILTERS", "MATRIX_GROUPS", "MATRIX_USERS", "USER_FILTERS", "USER_SORTS", "Matrix"]

MATRIX_USERS: list[dict[str, Any]] = [
    {
        "userName": "alice",
        "name": {"givenName": "Alice", "familyName": "Smith", "formatted": "Alice Smith"},
        "displayName": "Alice Smith",
        "title": "Engineer",
        "userType": "Employee",
        "externalId": "EXT-A",
        "emails": [
            {"value": "alice@work.example", "type": "work", "primary": True},
            {"value": "alice@home.example", "type": "home", "primary": False},
        ],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
        "addresses": [{"locality": "Paris", "country": "FR", "type": "work"}],
        "photos": [{"value": "https://photos.example.com/Alice.png"}],
        ENT: {"employeeNumber": "100", "department": "R&D", "manager": {"value": "mgr-1"}},
        "active": True,
    },
    {
        "userName": "Bob",
        "name": {"familyName": "Brown"},
        "displayName": "Bob Brown",
        "title": "Manager",
        "externalId": "ext-b",
        "emails": [
            {"value": "bob@work.example", "type": "home"},
            {"value": "bob2@other.example", "type": "work"},
        ],
        "roles": [{"value": "admin"}],
        ENT: {"employeeNumber": "200", "department": "Sales"},
        "active": True,
    },
    {"userName": "carol", "externalId": "ext-a", "nickName": "", "emails": [], "active": False},
    {
        "userName": "Dave",
        "name": {"givenName": "Dave"},
        "title": "engineer",
        "locale": "de-DE",
        "emails": [{"value": "DAVE@Work.Example", "type": "work", "primary": True}],
        "addresses": [{"locality": "Berlin", "country": "DE"}],
        ENT: {"department": "r&d"},
        "active": True,
    },
    {
        "userName": "eve",
        "name": {"familyName": "smith"},
        "displayName": "Eve",
        "title": "Director",
        "userType": "Contractor",
        "emails": [
            {"value": "a-first@x.example", "type": "home"},
            {"value": "zz@x.example", "type": "work", "primary": True},
        ],
        "phoneNumbers": [{"value": "+49 30 1234", "type": "mobile"}],
        "active": True,
    },
    {"userName": "Frank", "active": True},
    {"userName": "zed", "title": "Engineer", "emails": [{"value": "zed@work.example", "type": "work"}], "active": True},
]

ENT_PREFIX = ENT + ":"

USER_FILTERS: list[str] = [
    'userName eq "ALICE"',
    'userName eq "alice"',
    'userName ne "alice"',
    'userName co "A"',
    'userName sw "b"',
    'userName ew "E"',
    'userName gt "carol"',
    'userName ge "CAROL"',
    'userName lt "carol"',
    'userName le "Carol"',
    'title eq "engineer"',
    'title ne "engineer"',
    "title pr",
    "not (title pr)",
    "title eq null",
    "title ne null",
    "nickName pr",
    'displayName co "brown"',
    'externalId eq "EXT-A"',
    'externalId eq "ext-a"',
    'externalId sw "EXT"',
    "active eq true",
    "active eq false",
    "active ne true",
    'name.familyName eq "SMITH"',
    "name.givenName pr",
    "name pr",
    "not (name pr)",
    'emails eq "alice@home.example"',
    'emails.value ew "@WORK.example"',
    'emails.type eq "work"',
    "emails.primary eq true",
    "emails pr",
    "not (emails pr)",
    'emails.value ne "alice@work.example"',
    'emails[type eq "work" and value sw "bob"]',
    'emails[type eq "home" and value co "bob"]',
    'emails[type eq "work" and primary eq true]',
    'emails[type eq "home"] and userName sw "a"',
    'not (emails[type eq "home"])',
    'phoneNumbers.value co "555"',
    'phoneNumbers[type eq "mobile"]',
    'addresses[country eq "fr"]',
    'addresses.locality co "ER"',
    'photos.value eq "https://photos.example.com/alice.png"',
    'photos.value eq "https://photos.example.com/Alice.png"',
    "roles pr",
    'locale sw "de"',
    'userType eq "contractor"',
    ENT_PREFIX + 'department eq "R&D"',
    ENT_PREFIX + 'employeeNumber gt "150"',
    ENT_PREFIX + 'manager.value eq "mgr-1"',
    ENT_PREFIX + 'manager.value eq "MGR-1"',
    ENT_PREFIX + "employeeNumber pr",
    "not (" + ENT_PREFIX + "department pr)",
    'userName sw "a" or title eq "engineer"',
    'userName sw "a" and title eq "engineer"',
    'not (userName eq "alice") and active eq true',
    '(title pr and active eq false) or emails.type eq "home"',
    'id eq "{id_Bob}"',
    'id ne "{id_Bob}"',
    'meta.lastModified gt "{mid_2_3}"',
    'meta.lastModified ge "{mid_2_3}"',
    'meta.lastModified lt "{mid_4_5}"',
    'meta.lastModified le "{mid_4_5_offset}"',
    'meta.created gt "{mid_1_2_offset}" and meta.created lt "{mid_5_6}"',
    'meta.resourceType eq "User"',
]

MATRIX_GROUPS: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"displayName": "Admins", "externalId": "G-1"}, ("alice", "Bob")),
    ({"displayName": "engineering"}, ("Dave",)),
    ({"displayName": "Empty", "externalId": "g-1"}, ()),
]

GROUP_FILTERS: list[str] = [
    'displayName eq "admins"',
    'displayName co "IN"',
    'displayName sw "e"',
    'displayName gt "B"',
    'externalId eq "G-1"',
    "externalId pr",
    "members pr",
    "not (members pr)",
    'members.value eq "{id_alice}"',
    'members eq "{id_Dave}"',
    'members[value eq "{id_Bob}"]',
    'members.value eq "{id_zed}"',
    'meta.lastModified gt "{gmid_1_2}"',
    'id eq "{gid_engineering}"',
]

USER_SORTS = [
    "userName",
    "title",
    "name.familyName",
    "emails",
    "externalId",
    "displayName",
    "active",
    "meta.lastModified",
    "meta.created",
    ENT_PREFIX + "department",
]


class Matrix:
    """The populated tenant of the filter and sort tests, and the values filter templates use."""

    def __init__(self, backend: Backend, tenant: Tenant) -> None:
        self.backend = backend
        self.tenant = tenant
        records = []
        for document in MATRIX_USERS:
            records.append(backend.create_user(tenant, document))
            tick()
        backend.create_user(new_tenant(), dict(MATRIX_USERS[0]))
        zed = records[-1]
        self.values: dict[str, str] = {f"id_{r.user_name}": r.id for r in records}
        groups = []
        by_name = {r.user_name: r.id for r in records}
        for document, members in MATRIX_GROUPS:
            groups.append(backend.create_group(tenant, document, [Member(by_name[m]) for m in members]))
            tick()
        backend.patch_group(tenant, groups[-1].id, GroupChanges(add=(Member(zed.id),)))
        backend.delete_user(tenant, zed.id, hard=False)
        plus_two = timezone(timedelta(hours=2))
        for i in range(len(records) - 2):
            mid = midpoint(records[i].last_modified, records[i + 1].last_modified)
            self.values[f"mid_{i + 1}_{i + 2}"] = iso(mid)
            self.values[f"mid_{i + 1}_{i + 2}_offset"] = mid.astimezone(plus_two).isoformat(timespec="microseconds")
        # Groups are read back: adding zed and deleting zed may have changed their lastModified.
        fresh = [backend.get_group(tenant, g.id) for g in groups]
        ordered = sorted(fresh, key=lambda g: aware(g.last_modified))
        self.values["gmid_1_2"] = iso(midpoint(ordered[0].last_modified, ordered[1].last_modified))
        self.values.update({f"gid_{g.display_name}": g.id for g in groups})
        self.user_docs = [rendered_user(backend.get_user(tenant, r.id)) for r in records[:-1]]
        self.group_docs = [rendered_group(g) for g in fresh]

    def expected_users(self, text: str) -> tuple[str, list[str]]:
        """The filter text with its placeholders filled, and the ids the reference evaluator selects."""
        filled = text.format(**self.values)
        f = user_filter(filled)
        return filled, sorted(d["id"] for d in self.user_docs if evaluator.matches(f, d))

    def expected_groups(self, text: str) -> tuple[str, list[str]]:
        """As :meth:`expected_users`, for groups."""
        filled = text.format(**self.values)
        f = group_filter(filled)
        return filled, sorted(d["id"] for d in self.group_docs if evaluator.matches(f, d))

    def names(self, ids: list[str]) -> list[str]:
        """userNames (or displayNames) of ids, to make failure messages readable."""
        by_id = {d["id"]: d.get("userName") or d.get("displayName") for d in self.user_docs + self.group_docs}
        return [str(by_id.get(i, i)) for i in ids]
