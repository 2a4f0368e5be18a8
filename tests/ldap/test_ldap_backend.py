"""The backend contract on a real OpenLDAP slapd: users, uniqueness, seats, soft delete, groups,
membership deltas, tenant isolation, paging, versions and the two concurrency races.

Each test works in a tenant of its own (a fresh subtree ``ou=<tenant>,<base>``); some read the
directory directly with ldap3 to show what an operator sees there.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import ldap3
import pytest
from click.testing import CliRunner
from scim_ldap.backend import LdapBackend
from scim_ldap.plugin import ldap_group
from scim_ldap.pool import LdapSettings
from scim_ldap.schema import SCHEMA_LDIF

from scim_service.errors import (
    InvalidValue,
    NotFound,
    SeatLimitReached,
    Unavailable,
    UniquenessConflict,
    VersionMismatch,
)
from scim_service.model import ENTERPRISE_SCHEMA, GroupChanges, MatchPolicy, Member, SeatPolicy, Tenant
from scim_service.query.ast import ListQuery
from scim_service.query.parser import parse_attr_path
from scim_service.query.resolve import resolve_path
from scim_service.schemas.definitions import USER_RESOURCE


def user(user_name: str, /, **extra: Any) -> dict[str, Any]:
    """A minimal user document."""
    return {"userName": user_name, "active": True, **extra}


def read_entry(settings: LdapSettings, dn: str) -> dict[str, list[str]]:
    """The attributes of an entry, read straight from the directory."""
    conn = ldap3.Connection(settings.url, settings.bind_dn, settings.password, auto_bind=True)
    try:
        conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["*", "entryUUID"])
        assert conn.entries, f"no entry {dn}"
        return {k: list(v) if isinstance(v, list) else [v] for k, v in conn.response[0]["attributes"].items()}
    finally:
        conn.unbind()


def find_dn(settings: LdapSettings, base: str, flt: str) -> str | None:
    """The DN of the one entry matching ``flt`` under ``base``."""
    conn = ldap3.Connection(settings.url, settings.bind_dn, settings.password, auto_bind=True)
    try:
        conn.search(base, flt, ldap3.SUBTREE, attributes=["1.1"])
        return conn.response[0]["dn"] if conn.entries else None
    finally:
        conn.unbind()


# -- users ---------------------------------------------------------------------------------------


def test_create_stores_an_inetorgperson_under_the_tenant_people(
    backend: LdapBackend, tenant: Tenant, settings: LdapSettings
) -> None:
    data = user(
        "jdoe",
        name={"givenName": "Jane", "familyName": "Doe"},
        displayName="Jane Doe",
        emails=[{"value": "jane@example.com", "type": "work", "primary": True}],
        phoneNumbers=[{"value": "+1 555 0100", "type": "work"}],
        title="Engineer",
        externalId="ext-1",
        nickName="JJ",
        **{ENTERPRISE_SCHEMA: {"employeeNumber": "42", "department": "R&D"}},
    )
    created = backend.create_user(tenant, data)
    assert created.version == "1" and created.data == data
    dn = f"uid=jdoe,ou=People,ou={tenant.id},{settings.base_dn}"
    entry = read_entry(settings, dn)
    assert entry["entryUUID"] == [created.id]
    assert entry["mail"] == ["jane@example.com"] and entry["givenName"] == ["Jane"] and entry["sn"] == ["Doe"]
    assert entry["telephoneNumber"] == ["+1 555 0100"] and entry["employeeNumber"] == ["42"]
    assert entry["departmentNumber"] == ["R&D"] and entry["scimExternalId"] == ["ext-1"]
    assert entry["cn"] == ["Jane Doe"] and entry["scimFiller"] == ["cn"]  # person requires cn
    fetched = backend.get_user(tenant, created.id)
    assert fetched.data == data and fetched.id == created.id and not fetched.deleted
    assert "," not in fetched.id  # never the DN


def test_id_is_stable_across_a_rename(backend: LdapBackend, tenant: Tenant, settings: LdapSettings) -> None:
    created = backend.create_user(tenant, user("old.name"))
    renamed = backend.replace_user(tenant, created.id, user("New.Name", displayName="N"))
    assert renamed.id == created.id and renamed.user_name == "New.Name" and renamed.version == "2"
    people = f"ou=People,ou={tenant.id},{settings.base_dn}"
    assert read_entry(settings, f"uid=New.Name,{people}")["uid"] == ["New.Name"]
    assert find_dn(settings, people, "(uid=old.name)") is None
    assert backend.get_user(tenant, created.id).user_name == "New.Name"
    # a change of case only
    assert backend.replace_user(tenant, created.id, user("new.name")).user_name == "new.name"


def test_username_is_unique_case_insensitively(backend: LdapBackend, tenant: Tenant) -> None:
    first = backend.create_user(tenant, user("Alice"))
    with pytest.raises(UniquenessConflict) as info:
        backend.create_user(tenant, user("ALICE"))
    assert info.value.existing_id == first.id
    other = backend.create_user(tenant, user("bob"))
    with pytest.raises(UniquenessConflict):
        backend.replace_user(tenant, other.id, user("alice"))
    assert backend.get_user(tenant, other.id).user_name == "bob"


def test_primary_email_is_a_matching_key_only_under_the_email_policy(
    backend: LdapBackend, make_tenant: Callable[..., Tenant]
) -> None:
    emails = [{"value": "x@example.com", "primary": True}]
    by_email = make_tenant()
    first = backend.create_user(by_email, user("a", emails=emails))
    with pytest.raises(UniquenessConflict) as info:
        backend.create_user(by_email, user("b", emails=[{"value": "X@Example.com"}]))
    assert info.value.existing_id == first.id
    by_name = make_tenant(match_policy=MatchPolicy.USERNAME)
    backend.create_user(by_name, user("a", emails=emails))
    backend.create_user(by_name, user("b", emails=emails))


def test_version_mismatch_writes_nothing(backend: LdapBackend, tenant: Tenant) -> None:
    created = backend.create_user(tenant, user("v"))
    with pytest.raises(VersionMismatch):
        backend.replace_user(tenant, created.id, user("v", title="x"), expected_version="7")
    assert "title" not in backend.get_user(tenant, created.id).data
    assert backend.replace_user(tenant, created.id, user("v", title="x"), expected_version="1").version == "2"


def test_unknown_and_malformed_ids_are_not_found(backend: LdapBackend, tenant: Tenant) -> None:
    for bad in ("nope", "*", "00000000-0000-0000-0000-000000000000", ")(uid=*"):
        with pytest.raises(NotFound):
            backend.get_user(tenant, bad)
        with pytest.raises(NotFound):
            backend.get_group(tenant, bad)


def test_tenants_are_isolated(backend: LdapBackend, make_tenant: Callable[..., Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    alice = backend.create_user(a, user("alice"))
    backend.create_user(b, user("alice"))  # the same userName in another tenant is fine
    with pytest.raises(NotFound):
        backend.get_user(b, alice.id)
    with pytest.raises(InvalidValue):
        backend.create_group(b, {"displayName": "g"}, [Member(alice.id)])
    assert [u.id for u in backend.list_users(a, ListQuery()).resources] == [alice.id]
    assert backend.list_users(make_tenant(), ListQuery()).total_results == 0  # a tenant never written to


# -- seats ---------------------------------------------------------------------------------------


def test_seats_all_policy_counts_inactive_and_deleted(backend: LdapBackend, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant(max_seats=2)
    first = backend.create_user(tenant, user("a"))
    backend.create_user(tenant, user("b", active=False))
    with pytest.raises(SeatLimitReached):
        backend.create_user(tenant, user("c"))
    backend.delete_user(tenant, first.id, hard=False)
    assert backend.count_seats(tenant) == 2
    with pytest.raises(SeatLimitReached):
        backend.create_user(tenant, user("c"))
    removed = backend.remove_inactive_users(tenant)
    assert len(removed) == 2 and backend.count_seats(tenant) == 0
    backend.create_user(tenant, user("c"))


def test_seats_active_policy(backend: LdapBackend, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)
    a = backend.create_user(tenant, user("a"))
    b = backend.create_user(tenant, user("b", active=False))  # holds no seat
    with pytest.raises(SeatLimitReached):
        backend.replace_user(tenant, b.id, user("b", active=True))
    backend.replace_user(tenant, a.id, user("a", active=False))  # deactivation frees the seat
    assert backend.count_seats(tenant) == 0
    assert backend.replace_user(tenant, b.id, user("b", active=True)).active
    assert backend.count_seats(tenant) == 1


# -- soft delete ---------------------------------------------------------------------------------


def test_soft_delete_hides_keeps_the_name_and_reactivates_in_place(backend: LdapBackend, tenant: Tenant) -> None:
    gone = backend.create_user(tenant, user("gone", emails=[{"value": "g@example.com"}]))
    group = backend.create_group(tenant, {"displayName": "team"}, [Member(gone.id)])
    backend.delete_user(tenant, gone.id, hard=False)
    with pytest.raises(NotFound):
        backend.get_user(tenant, gone.id)
    with pytest.raises(NotFound):
        backend.delete_user(tenant, gone.id, hard=False)
    kept = backend.get_user(tenant, gone.id, include_deleted=True)
    assert kept.deleted and not kept.active and kept.data["emails"] == [{"value": "g@example.com"}]
    assert backend.list_users(tenant, ListQuery()).total_results == 0
    assert backend.get_group(tenant, group.id).members == ()
    with pytest.raises(UniquenessConflict) as info:
        backend.create_user(tenant, user("GONE"))
    assert info.value.existing_id == gone.id
    with pytest.raises(NotFound):
        backend.replace_user(tenant, gone.id, user("gone"))
    back = backend.replace_user(tenant, gone.id, user("gone"), undelete=True, expected_version=kept.version)
    assert back.id == gone.id and back.active and not back.deleted
    assert backend.get_user(tenant, gone.id).groups == ()  # memberships were removed by the delete


def test_hard_delete_removes_the_entry_and_its_memberships(
    backend: LdapBackend, tenant: Tenant, settings: LdapSettings
) -> None:
    a, b = backend.create_user(tenant, user("a")), backend.create_user(tenant, user("b"))
    group = backend.create_group(tenant, {"displayName": "g"}, [Member(a.id), Member(b.id)])
    backend.delete_user(tenant, a.id, hard=True)
    with pytest.raises(NotFound):
        backend.get_user(tenant, a.id, include_deleted=True)
    assert [m.value for m in backend.get_group(tenant, group.id).members or ()] == [b.id]
    dn = f"cn=g,ou=Groups,ou={tenant.id},{settings.base_dn}"
    assert read_entry(settings, dn)["member"] == [f"uid=b,ou=People,ou={tenant.id},{settings.base_dn}"]
    backend.create_user(tenant, user("a"))  # the name is free again


# -- groups --------------------------------------------------------------------------------------


def test_empty_groups_hold_the_placeholder_and_membership_changes_are_deltas(
    backend: LdapBackend, tenant: Tenant, settings: LdapSettings
) -> None:
    a, b = backend.create_user(tenant, user("a")), backend.create_user(tenant, user("b"))
    group = backend.create_group(tenant, {"displayName": "Eng", "externalId": "e1"}, [])
    dn = f"cn=Eng,ou=Groups,ou={tenant.id},{settings.base_dn}"
    placeholder = backend.mapping.group_placeholder
    assert group.members == () and read_entry(settings, dn)["member"] == [placeholder]
    g = backend.patch_group(tenant, group.id, GroupChanges(add=(Member(a.id), Member(b.id))))
    assert {m.value for m in g.members or ()} == {a.id, b.id} and g.version == "2"
    assert placeholder not in read_entry(settings, dn)["member"]
    # adding a present member and removing an absent one are no-ops
    g = backend.patch_group(tenant, group.id, GroupChanges(add=(Member(a.id),), remove=("0" * 8,)))
    assert {m.value for m in g.members or ()} == {a.id, b.id}
    g = backend.patch_group(tenant, group.id, GroupChanges(remove=(a.id, b.id)))
    assert g.members == () and read_entry(settings, dn)["member"] == [placeholder]
    assert backend.get_user(tenant, a.id).groups == ()
    with pytest.raises(InvalidValue):
        backend.patch_group(tenant, group.id, GroupChanges(add=(Member("not-a-user"),)))
    with pytest.raises(InvalidValue):
        backend.create_group(tenant, {"displayName": "nested"}, [Member(group.id, type="Group")])


def test_user_groups_come_from_a_member_search(backend: LdapBackend, tenant: Tenant) -> None:
    a = backend.create_user(tenant, user("a"))
    g1 = backend.create_group(tenant, {"displayName": "one"}, [Member(a.id)])
    g2 = backend.create_group(tenant, {"displayName": "two"}, [Member(a.id)])
    groups = backend.get_user(tenant, a.id).groups
    assert {(m.value, m.display) for m in groups} == {(g1.id, "one"), (g2.id, "two")}
    assert backend.get_user(tenant, a.id, include_groups=False).groups == ()
    listed = backend.list_users(tenant, ListQuery()).resources[0]
    assert {m.value for m in listed.groups} == {g1.id, g2.id}


def test_replace_patch_rename_and_delete_group(backend: LdapBackend, tenant: Tenant) -> None:
    a, b = backend.create_user(tenant, user("a")), backend.create_user(tenant, user("b"))
    group = backend.create_group(tenant, {"displayName": "old"}, [Member(a.id)])
    replaced = backend.replace_group(tenant, group.id, {"displayName": "new"}, [Member(b.id)], expected_version="1")
    assert replaced.id == group.id and replaced.display_name == "new"
    assert [m.value for m in replaced.members or ()] == [b.id]
    with pytest.raises(VersionMismatch):
        backend.patch_group(tenant, group.id, GroupChanges(add=(Member(a.id),)), expected_version="1")
    patched = backend.patch_group(
        tenant, group.id, GroupChanges(data={"displayName": "newer"}, add=(Member(a.id),), clear_members=True)
    )
    assert patched.display_name == "newer" and [m.value for m in patched.members or ()] == [a.id]
    assert backend.get_group(tenant, group.id, include_members=False).members is None
    other = backend.create_group(tenant, {"displayName": "other"}, [])
    with pytest.raises(UniquenessConflict):
        backend.create_group(tenant, {"displayName": "NEWER"}, [])
    with pytest.raises(UniquenessConflict):
        backend.replace_group(tenant, other.id, {"displayName": "newer"}, [Member(a.id)])
    unchanged = backend.get_group(tenant, other.id)  # a method that raises has written nothing
    assert unchanged.display_name == "other" and unchanged.version == "1" and unchanged.members == ()
    backend.delete_group(tenant, group.id)
    with pytest.raises(NotFound):
        backend.get_group(tenant, group.id)
    assert backend.get_user(tenant, a.id).user_name == "a"  # members untouched


def _displays(members: Any) -> dict[str, str | None]:
    return {m.value: m.display for m in members or ()}


def test_member_displays_the_client_gave_are_kept(backend: LdapBackend, tenant: Tenant, settings: LdapSettings) -> None:
    a = backend.create_user(tenant, user("a", displayName="Alice"))
    b = backend.create_user(tenant, user("b"))
    c = backend.create_user(tenant, user("c"))
    group = backend.create_group(tenant, {"displayName": "crew"}, [Member(a.id, display="Boss"), Member(b.id)])
    # a given display wins; an absent one is computed (displayName, else userName)
    assert _displays(group.members) == {a.id: "Boss", b.id: "b"}
    dn = f"cn=crew,ou=Groups,ou={tenant.id},{settings.base_dn}"
    stored = json.loads(read_entry(settings, dn)["scimDocument"][0])
    assert stored["$memberDisplays"] == {a.id: "Boss"}
    assert "$memberDisplays" not in backend.get_group(tenant, group.id).data  # a storage detail only
    # renaming a user changes computed displays, never a given one
    backend.replace_user(tenant, a.id, user("a2", displayName="Alice Two"))
    backend.replace_user(tenant, b.id, user("b2", displayName="Bea"))
    assert _displays(backend.get_group(tenant, group.id).members) == {a.id: "Boss", b.id: "Bea"}
    # PATCH add: a new member keeps the display given; re-adding a present member keeps what it had
    g = backend.patch_group(
        tenant, group.id, GroupChanges(add=(Member(c.id, display="Cee"), Member(b.id, display="ignored")))
    )
    assert _displays(g.members) == {a.id: "Boss", b.id: "Bea", c.id: "Cee"}
    # a removed member loses its display: added back without one, it is computed
    g = backend.patch_group(tenant, group.id, GroupChanges(remove=(a.id,)))
    assert _displays(g.members) == {b.id: "Bea", c.id: "Cee"}
    g = backend.patch_group(tenant, group.id, GroupChanges(add=(Member(a.id),)))
    assert _displays(g.members) == {a.id: "Alice Two", b.id: "Bea", c.id: "Cee"}
    # an attribute change keeps the displays; replace members keeps exactly those given with the new list
    g = backend.patch_group(tenant, group.id, GroupChanges(data={"displayName": "crew", "externalId": "x"}))
    assert g.data["externalId"] == "x" and _displays(g.members)[c.id] == "Cee"
    g = backend.patch_group(
        tenant, group.id, GroupChanges(add=(Member(b.id, display="B!"), Member(c.id)), clear_members=True)
    )
    assert _displays(g.members) == {b.id: "B!", c.id: "c"}
    # PUT replaces the stored displays with the given ones, and renames keep them
    g = backend.replace_group(tenant, group.id, {"displayName": "crew2"}, [Member(a.id, display="")])
    assert _displays(g.members) == {a.id: ""}
    # a deleted member's display leaves the document with it
    backend.delete_user(tenant, a.id, hard=False)
    dn = f"cn=crew2,ou=Groups,ou={tenant.id},{settings.base_dn}"
    assert "$memberDisplays" not in json.loads(read_entry(settings, dn)["scimDocument"][0])
    with pytest.raises(InvalidValue, match="512"):
        backend.patch_group(tenant, group.id, GroupChanges(add=(Member(b.id, display="x" * 513),)))


def test_a_renamed_user_stays_in_its_groups(backend: LdapBackend, tenant: Tenant, settings: LdapSettings) -> None:
    a, b = backend.create_user(tenant, user("a")), backend.create_user(tenant, user("b"))
    group = backend.create_group(tenant, {"displayName": "g"}, [Member(a.id), Member(b.id)])
    backend.replace_user(tenant, a.id, user("anna"))
    backend.replace_user(tenant, b.id, user("B"))  # only the case changes: the DN still matches
    assert _displays(backend.get_group(tenant, group.id).members) == {a.id: "anna", b.id: "B"}
    assert [m.value for m in backend.get_user(tenant, a.id).groups] == [group.id]
    dn = f"cn=g,ou=Groups,ou={tenant.id},{settings.base_dn}"
    people = f"ou=People,ou={tenant.id},{settings.base_dn}".lower()
    assert sorted(v.lower() for v in read_entry(settings, dn)["member"]) == [f"uid=anna,{people}", f"uid=b,{people}"]


def test_patch_add_with_displays_changes_member_by_single_value_deltas(
    backend: LdapBackend, tenant: Tenant, settings: LdapSettings
) -> None:
    a, b = backend.create_user(tenant, user("a")), backend.create_user(tenant, user("b"))
    group = backend.create_group(tenant, {"displayName": "g"}, [Member(a.id, display="A")])
    dn = f"cn=g,ou=Groups,ou={tenant.id},{settings.base_dn}"
    a_dn, b_dn = (f"uid={n},ou=People,ou={tenant.id},{settings.base_dn}" for n in "ab")
    # Another tool adds b straight in the directory; a SCIM patch adding a display for a new member must not
    # rewrite (and so drop) the member values it did not read.
    conn = ldap3.Connection(settings.url, settings.bind_dn, settings.password, auto_bind=True)
    try:
        assert conn.modify(dn, {"member": [(ldap3.MODIFY_ADD, [b_dn])]})
    finally:
        conn.unbind()
    c = backend.create_user(tenant, user("c"))
    c_dn = f"uid=c,ou=People,ou={tenant.id},{settings.base_dn}"
    g = backend.patch_group(tenant, group.id, GroupChanges(add=(Member(c.id, display="C"),)))
    assert sorted(read_entry(settings, dn)["member"]) == sorted([a_dn, b_dn, c_dn])
    assert _displays(g.members) == {a.id: "A", b.id: "b", c.id: "C"}


def test_concurrent_patches_of_one_group_keep_every_member_and_display(backend: LdapBackend, tenant: Tenant) -> None:
    n = 8
    users = [backend.create_user(tenant, user(f"u{i}")) for i in range(n)]
    group = backend.create_group(tenant, {"displayName": "busy"}, [])

    def add(i: int) -> object:
        return backend.patch_group(tenant, group.id, GroupChanges(add=(Member(users[i].id, display=f"D{i}"),)))

    wins, errors = _race(n, add)
    assert wins == n and not errors, errors
    final = backend.get_group(tenant, group.id)
    assert _displays(final.members) == {u.id: f"D{i}" for i, u in enumerate(users)}
    assert final.version == str(1 + n)


# -- paging --------------------------------------------------------------------------------------


def test_paging_totals_are_the_servers_count(backend: LdapBackend, tenant: Tenant) -> None:
    ids = [backend.create_user(tenant, user(f"user{i:02d}")).id for i in range(7)]
    sort = resolve_path(parse_attr_path("userName"), USER_RESOURCE)
    seen: list[str] = []
    for start in (1, 4, 7):
        page = backend.list_users(tenant, ListQuery(sort_by=sort, start_index=start, count=3))
        assert page.total_results == 7
        seen += [u.user_name for u in page.resources]
    assert seen == [f"user{i:02d}" for i in range(7)]
    past = backend.list_users(tenant, ListQuery(start_index=9, count=3))
    assert past.total_results == 7 and past.resources == []
    only_total = backend.list_users(tenant, ListQuery(count=0))
    assert only_total.total_results == 7 and only_total.resources == []
    unsorted = backend.list_users(tenant, ListQuery(count=100))
    assert [u.id for u in unsorted.resources] == sorted(ids)  # no sortBy: id order
    descending = backend.list_users(tenant, ListQuery(sort_by=sort, descending=True, count=2))
    assert [u.user_name for u in descending.resources] == ["user06", "user05"]


# -- concurrency ---------------------------------------------------------------------------------


def _race(n: int, work: Callable[[int], object]) -> tuple[int, list[BaseException]]:
    barrier = threading.Barrier(n)
    wins: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            result = work(i)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                wins.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return len(wins), errors


def test_twelve_concurrent_creates_of_one_username_have_one_winner(backend: LdapBackend, tenant: Tenant) -> None:
    wins, errors = _race(12, lambda i: backend.create_user(tenant, user("Racer" if i % 2 else "racer")))
    assert wins == 1
    assert len(errors) == 11 and all(isinstance(e, UniquenessConflict) for e in errors), errors
    assert backend.list_users(tenant, ListQuery()).total_results == 1


def test_twelve_concurrent_creates_for_the_last_seat_have_one_winner(
    backend: LdapBackend, make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant(max_seats=3)
    backend.create_user(tenant, user("first"))
    backend.create_user(tenant, user("second"))
    wins, errors = _race(12, lambda i: backend.create_user(tenant, user(f"seat{i}")))
    assert wins == 1
    assert len(errors) == 11 and all(isinstance(e, SeatLimitReached) for e in errors), errors
    assert backend.count_seats(tenant) == 3


# -- set-up --------------------------------------------------------------------------------------


def test_schema_command_prints_the_cn_config_ldif() -> None:
    result = CliRunner().invoke(ldap_group, ["schema"])
    assert result.exit_code == 0 and result.output == SCHEMA_LDIF
    assert "dn: cn=scim,cn=schema,cn=config" in result.output and "AUXILIARY" in result.output


def test_settings_read_the_password_file_and_refuse_missing_ones(tmp_path: Any) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    settings = LdapSettings.from_config(
        {"SCIM_LDAP_URL": "ldap://x", "SCIM_LDAP_BASE_DN": "dc=x", "SCIM_LDAP_BIND_PASSWORD_FILE": str(secret)}
    )
    assert settings.password == "s3cret"
    with pytest.raises(ValueError, match="SCIM_LDAP_BASE_DN"):
        LdapSettings.from_config({"SCIM_LDAP_URL": "ldap://x"})
    with pytest.raises(ValueError, match="SCIM_LDAP_TIMEOUT"):
        LdapSettings.from_config({"SCIM_LDAP_URL": "ldap://x", "SCIM_LDAP_BASE_DN": "dc=x", "SCIM_LDAP_TIMEOUT": "-1"})


def test_the_scan_limit_setting() -> None:
    base = {"SCIM_LDAP_URL": "ldap://x", "SCIM_LDAP_BASE_DN": "dc=x"}
    assert LdapSettings.from_config(base).max_scan == 10_000
    assert LdapSettings.from_config({**base, "SCIM_LDAP_MAX_SCAN": " 250 "}).max_scan == 250
    for bad in ("0", "-3", "many", "1.5"):
        with pytest.raises(ValueError, match="SCIM_LDAP_MAX_SCAN"):
            LdapSettings.from_config({**base, "SCIM_LDAP_MAX_SCAN": bad})


def test_unreachable_directory_is_unavailable() -> None:
    from scim_service.errors import Unavailable

    dead = LdapBackend.from_config(
        {"SCIM_LDAP_URL": "ldap://127.0.0.1:1", "SCIM_LDAP_BASE_DN": "dc=x", "SCIM_LDAP_CONNECT_TIMEOUT": "1"}
    )
    with pytest.raises(Unavailable):
        dead.get_user(Tenant(id="t", name="t"), "00000000-0000-0000-0000-000000000000")
    dead.close()


def _set_lock(settings: LdapSettings, backend: LdapBackend, tenant: Tenant, value: str) -> None:
    conn = ldap3.Connection(settings.url, settings.bind_dn, settings.password, auto_bind=True)
    try:
        assert conn.modify(
            f"cn=scim-lock,{backend.tenant_dn(tenant)}", {"description": [(ldap3.MODIFY_REPLACE, [value])]}
        )
    finally:
        conn.unbind()


def test_a_held_lock_blocks_writers_and_an_expired_one_is_taken_over(
    ldap_settings: dict[str, str], settings: LdapSettings, tenant: Tenant
) -> None:
    impatient = LdapBackend.from_config({**ldap_settings, "SCIM_LDAP_LOCK_TIMEOUT": "0.3"})
    try:
        impatient.create_user(tenant, user("first"))  # creates the tenant subtree and its lock entry
        _set_lock(settings, impatient, tenant, f"{time.time() + 60:.3f} someone-else")
        with pytest.raises(Unavailable, match="lock"):
            impatient.create_user(tenant, user("second"))
        _set_lock(settings, impatient, tenant, f"{time.time() - 1:.3f} a-dead-holder")
        impatient.create_user(tenant, user("second"))
        assert read_entry(settings, f"cn=scim-lock,{impatient.tenant_dn(tenant)}")["description"] == ["free"]
    finally:
        impatient.close()
