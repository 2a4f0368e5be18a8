"""The sql backend against every method and error of the Backend contract, on real databases."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.util import CommandError
from scim_sql.backend import MIGRATIONS_DIR, VERSION_TABLE, SqlBackend
from scim_sql.tables import metadata, users

from scim_service.errors import (
    InvalidCursor,
    InvalidValue,
    NotFound,
    SeatLimitReached,
    Unavailable,
    UniquenessConflict,
    VersionMismatch,
)
from scim_service.model import (
    ENTERPRISE_SCHEMA,
    GroupChanges,
    MatchPolicy,
    Member,
    SeatPolicy,
    Tenant,
)
from scim_service.plugins import build_backend, installed_backends, make_plugin_manager
from scim_service.query.ast import ListQuery
from scim_service.sqlengine import write_transaction


def user(user_name: str, email: str | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"userName": user_name, "active": True, **extra}
    if email:
        data["emails"] = [{"value": email, "type": "work", "primary": True}]
    return data


# -- setup, plugin and migrations ------------------------------------------------------------------


def test_plugin_registers_the_backend(tmp_path: Path) -> None:
    pm = make_plugin_manager()
    assert installed_backends(pm)["sql"] is SqlBackend
    backend = build_backend(pm, {"SCIM_BACKEND": "sql", "SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/a.db"})
    assert isinstance(backend, SqlBackend)
    backend.close()


def test_from_config_needs_a_database_url() -> None:
    with pytest.raises(ValueError, match="SCIM_DATABASE_URL"):
        SqlBackend.from_config({})


def test_capabilities_follow_the_max_page_size(tmp_path: Path) -> None:
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/a.db", "SCIM_MAX_PAGE_SIZE": 50})
    assert backend.capabilities.max_results == 50
    assert backend.capabilities.filter and backend.capabilities.sort and backend.capabilities.cursor
    assert SqlBackend.name == "sql"
    backend.close()


def test_host_engine_is_used_and_not_disposed(tmp_path: Path, make_tenant: Callable[..., Tenant]) -> None:
    from scim_service.sqlengine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path}/host.db")
    backend = SqlBackend(engine)
    backend.migrate()
    t = make_tenant()
    created = backend.create_user(t, user("héllo"))
    backend.close()
    # The host's engine still works after close: the backend did not own it.
    with engine.connect() as conn:
        assert conn.execute(sa.select(users.c.id)).scalar_one() == created.id
    engine.dispose()


def test_migrate_creates_the_tables_in_its_own_version_table(backend: SqlBackend) -> None:
    backend.migrate()  # idempotent
    with backend.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        assert {
            "scim_users",
            "scim_groups",
            "scim_group_members",
            "scim_tenant_state",
            "scim_user_emails",
            VERSION_TABLE,
        } <= names
        assert "alembic_version" not in names
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one() == "0004"
        indexes = {ix["name"]: ix for ix in sa.inspect(conn).get_indexes("scim_users")}
        assert indexes["ux_scim_users_tenant_user_name"]["unique"]
        group_indexes = {ix["name"]: ix for ix in sa.inspect(conn).get_indexes("scim_groups")}
        assert group_indexes["uq_scim_groups_tenant_display_name_key"]["unique"]


def test_migration_matches_the_table_definitions(backend: SqlBackend) -> None:
    with backend.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # Only differences that matter: tables, columns, indexes (type rendering noise is ignored).
    relevant = [
        d
        for d in diff
        if isinstance(d, tuple)
        and d[0] in ("add_table", "remove_table", "add_column", "remove_column", "add_index", "remove_index")
    ]
    relevant = [d for d in relevant if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)]
    assert relevant == []


def test_unmigrated_database_is_unavailable(tmp_path: Path, make_tenant: Callable[..., Tenant]) -> None:
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"})
    with pytest.raises(Unavailable):
        backend.get_user(make_tenant(), "x")
    with pytest.raises(Unavailable):
        backend.create_user(make_tenant(), user("a"))
    backend.close()


# -- users -------------------------------------------------------------------------------------------


def test_create_and_get_user(backend: SqlBackend, tenant: Tenant) -> None:
    data = user("Alice", "Alice@Example.com", name={"givenName": "Alice"})
    created = backend.create_user(tenant, data)
    assert created.version == "1"
    assert created.created.tzinfo is not None and created.created == created.last_modified
    got = backend.get_user(tenant, created.id)
    assert got.id == created.id
    assert dict(got.data) == data
    assert got.version == "1" and not got.deleted and got.active
    assert got.created == created.created
    assert got.groups == ()


def test_get_unknown_user_is_not_found(backend: SqlBackend, tenant: Tenant) -> None:
    with pytest.raises(NotFound):
        backend.get_user(tenant, "no-such-id")


def test_create_requires_user_name(backend: SqlBackend, tenant: Tenant) -> None:
    with pytest.raises(InvalidValue, match="userName"):
        backend.create_user(tenant, {"active": True})


def test_user_name_is_unique_case_insensitively(backend: SqlBackend, tenant: Tenant) -> None:
    first = backend.create_user(tenant, user("bob"))
    with pytest.raises(UniquenessConflict) as info:
        backend.create_user(tenant, user("BOB"))
    assert info.value.existing_id == first.id
    assert info.value.status == 409 and info.value.scim_type == "uniqueness"


def test_unicode_user_name_is_unique_case_insensitively(backend: SqlBackend, tenant: Tenant) -> None:
    first = backend.create_user(tenant, user("ÉLODIE"))
    with pytest.raises(UniquenessConflict) as info:
        backend.create_user(tenant, user("élodie"))
    assert info.value.existing_id == first.id


def test_primary_email_is_unique_under_email_policy(backend: SqlBackend, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant(match_policy=MatchPolicy.EMAIL)
    first = backend.create_user(tenant, user("a", "Same@Example.com"))
    with pytest.raises(UniquenessConflict) as info:
        backend.create_user(tenant, user("b", "same@example.COM"))
    assert info.value.existing_id == first.id
    # The first entry counts when none is marked primary.
    second = backend.create_user(
        tenant, {"userName": "c", "emails": [{"value": "first@x.com"}, {"value": "other@x.com"}]}
    )
    with pytest.raises(UniquenessConflict) as info:
        backend.create_user(tenant, user("d", "FIRST@x.com"))
    assert info.value.existing_id == second.id
    # A non-primary, non-first email is not a key.
    backend.create_user(tenant, user("e", "other@x.com"))


def test_primary_email_is_not_a_key_under_username_policy(
    backend: SqlBackend, make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant(match_policy=MatchPolicy.USERNAME)
    backend.create_user(tenant, user("a", "same@example.com"))
    backend.create_user(tenant, user("b", "same@example.com"))
    assert backend.count_seats(tenant) == 2


def test_tenants_are_isolated(backend: SqlBackend, make_tenant: Callable[..., Tenant]) -> None:
    one, two = make_tenant(), make_tenant()
    u1 = backend.create_user(one, user("shared", "shared@x.com"))
    u2 = backend.create_user(two, user("shared", "shared@x.com"))  # same name in another tenant is fine
    with pytest.raises(NotFound):
        backend.get_user(two, u1.id)
    with pytest.raises(NotFound):
        backend.replace_user(two, u1.id, user("x"))
    with pytest.raises(NotFound):
        backend.delete_user(two, u1.id, hard=True)
    assert [u.id for u in backend.list_users(two, ListQuery()).resources] == [u2.id]
    group = backend.create_group(one, {"displayName": "g"}, [Member(u1.id)])
    with pytest.raises(NotFound):
        backend.get_group(two, group.id)
    with pytest.raises(InvalidValue, match=u2.id):
        backend.create_group(one, {"displayName": "h"}, [Member(u2.id)])
    with pytest.raises(InvalidValue):
        backend.patch_group(one, group.id, GroupChanges(add=(Member(u2.id),)))
    assert backend.list_groups(two, ListQuery()).total_results == 0
    assert backend.count_seats(one) == 1 and backend.count_seats(two) == 1


def test_replace_user(backend: SqlBackend, tenant: Tenant) -> None:
    created = backend.create_user(tenant, user("carol", displayName="Carol"))
    time.sleep(0.002)
    replaced = backend.replace_user(tenant, created.id, user("Caroline", displayName="Caro"))
    assert replaced.version == "2"
    assert replaced.last_modified > created.last_modified
    assert replaced.created == created.created
    got = backend.get_user(tenant, created.id)
    assert got.data["userName"] == "Caroline" and got.version == "2"
    # The old name is free again, the new one is taken.
    backend.create_user(tenant, user("carol"))
    with pytest.raises(UniquenessConflict):
        backend.create_user(tenant, user("CAROLINE"))


def test_replace_user_conflicts_with_another_record(backend: SqlBackend, tenant: Tenant) -> None:
    a = backend.create_user(tenant, user("a", "a@x.com"))
    b = backend.create_user(tenant, user("b", "b@x.com"))
    with pytest.raises(UniquenessConflict) as info:
        backend.replace_user(tenant, b.id, user("A"))
    assert info.value.existing_id == a.id
    with pytest.raises(UniquenessConflict) as info:
        backend.replace_user(tenant, b.id, user("b", "A@X.com"))
    assert info.value.existing_id == a.id
    # Keeping its own name and email is not a conflict.
    assert backend.replace_user(tenant, b.id, user("B", "b@x.com")).version == "2"
    assert backend.get_user(tenant, b.id).version == "2"


def test_versions_and_expected_version(backend: SqlBackend, tenant: Tenant) -> None:
    created = backend.create_user(tenant, user("dave"))
    with pytest.raises(VersionMismatch):
        backend.replace_user(tenant, created.id, user("dave2"), expected_version="7")
    assert backend.get_user(tenant, created.id).data["userName"] == "dave"  # nothing written
    second = backend.replace_user(tenant, created.id, user("dave2"), expected_version="1")
    assert second.version == "2"
    with pytest.raises(VersionMismatch):
        backend.delete_user(tenant, created.id, hard=False, expected_version="1")
    backend.delete_user(tenant, created.id, hard=False, expected_version="2")
    assert backend.get_user(tenant, created.id, include_deleted=True).version == "3"


def test_soft_delete_hides_the_user_but_keeps_name_and_seat(
    backend: SqlBackend, make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant(max_seats=2)
    u = backend.create_user(tenant, user("erin", "erin@x.com"))
    other = backend.create_user(tenant, user("frank"))
    group = backend.create_group(tenant, {"displayName": "team"}, [Member(u.id), Member(other.id)])
    backend.delete_user(tenant, u.id, hard=False)
    with pytest.raises(NotFound):
        backend.get_user(tenant, u.id)
    with pytest.raises(NotFound):
        backend.replace_user(tenant, u.id, user("erin"))
    with pytest.raises(NotFound):
        backend.delete_user(tenant, u.id, hard=False)
    kept = backend.get_user(tenant, u.id, include_deleted=True)
    assert kept.deleted and not kept.active and kept.data["active"] is False
    assert [x.id for x in backend.list_users(tenant, ListQuery()).resources] == [other.id]
    # Out of its group, whose version moved on.
    g = backend.get_group(tenant, group.id)
    assert [m.value for m in g.members or ()] == [other.id]
    assert g.version == "2"
    # Still holds its userName (naming the record) and, under SeatPolicy.ALL, its seat.
    with pytest.raises(UniquenessConflict) as info:
        backend.create_user(tenant, user("Erin"))
    assert info.value.existing_id == u.id
    assert backend.count_seats(tenant) == 2
    with pytest.raises(SeatLimitReached):
        backend.create_user(tenant, user("gina"))


def test_reactivation_by_undelete(backend: SqlBackend, tenant: Tenant) -> None:
    u = backend.create_user(tenant, user("hank"))
    backend.delete_user(tenant, u.id, hard=False)
    back = backend.replace_user(tenant, u.id, user("hank", title="Boss"), expected_version="2", undelete=True)
    assert back.id == u.id and not back.deleted and back.active and back.version == "3"
    got = backend.get_user(tenant, u.id)
    assert got.data["title"] == "Boss"
    assert backend.list_users(tenant, ListQuery()).total_results == 1


def test_hard_delete_removes_record_and_memberships(backend: SqlBackend, tenant: Tenant) -> None:
    u = backend.create_user(tenant, user("ivan"))
    group = backend.create_group(tenant, {"displayName": "g"}, [Member(u.id)])
    backend.delete_user(tenant, u.id, hard=True)
    with pytest.raises(NotFound):
        backend.get_user(tenant, u.id, include_deleted=True)
    g = backend.get_group(tenant, group.id)
    assert g.members == () and g.version == "2"
    backend.create_user(tenant, user("ivan"))  # the name is free
    assert backend.count_seats(tenant) == 1


def test_deactivation_keeps_groups(backend: SqlBackend, tenant: Tenant) -> None:
    u = backend.create_user(tenant, user("judy"))
    group = backend.create_group(tenant, {"displayName": "Admins"}, [Member(u.id)])
    inactive = backend.replace_user(tenant, u.id, {**user("judy"), "active": False})
    assert not inactive.active and not inactive.deleted
    assert [(m.value, m.display, m.type) for m in inactive.groups] == [(group.id, "Admins", "Group")]
    got = backend.get_user(tenant, u.id)
    assert not got.active and len(got.groups) == 1
    assert backend.get_user(tenant, u.id, include_groups=False).groups == ()


# -- seats -------------------------------------------------------------------------------------------


def test_seat_limit_all_policy_counts_inactive(backend: SqlBackend, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant(max_seats=2, seat_policy=SeatPolicy.ALL)
    backend.create_user(tenant, user("a"))
    b = backend.create_user(tenant, {**user("b"), "active": False})
    assert backend.count_seats(tenant) == 2
    with pytest.raises(SeatLimitReached) as info:
        backend.create_user(tenant, user("c"))
    assert info.value.status == 403 and info.value.max_seats == 2
    with pytest.raises(SeatLimitReached):
        backend.create_user(tenant, {**user("c"), "active": False})
    # Reactivating an inactive record under ALL takes no new seat.
    backend.replace_user(tenant, b.id, user("b"))
    assert backend.count_seats(tenant) == 2
    # Removing inactive users frees seats.
    backend.replace_user(tenant, b.id, {**user("b"), "active": False})
    assert backend.remove_inactive_users(tenant) == [b.id]
    backend.create_user(tenant, user("c"))


def test_seat_limit_active_policy(backend: SqlBackend, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)
    a = backend.create_user(tenant, user("a"))
    # An inactive record holds no seat: creating one is fine at the limit.
    b = backend.create_user(tenant, {**user("b"), "active": False})
    assert backend.count_seats(tenant) == 1
    with pytest.raises(SeatLimitReached):
        backend.create_user(tenant, user("c"))
    # Reactivation beyond the limit is refused and writes nothing.
    with pytest.raises(SeatLimitReached):
        backend.replace_user(tenant, b.id, user("b", title="x"))
    assert backend.get_user(tenant, b.id).version == "1"
    # Deactivation frees the seat.
    backend.replace_user(tenant, a.id, {**user("a"), "active": False})
    assert backend.count_seats(tenant) == 0
    backend.replace_user(tenant, b.id, user("b"))
    assert backend.count_seats(tenant) == 1
    # A soft-deleted user holds no seat under ACTIVE; its undelete needs one.
    backend.delete_user(tenant, b.id, hard=False)
    assert backend.count_seats(tenant) == 0
    c = backend.create_user(tenant, user("c"))
    with pytest.raises(SeatLimitReached):
        backend.replace_user(tenant, b.id, user("b"), undelete=True)
    backend.delete_user(tenant, c.id, hard=True)
    backend.replace_user(tenant, b.id, user("b"), undelete=True)


def test_unlimited_seats(backend: SqlBackend, tenant: Tenant) -> None:
    for i in range(5):
        backend.create_user(tenant, user(f"u{i}"))
    assert backend.count_seats(tenant) == 5


def test_remove_inactive_users_since(backend: SqlBackend, tenant: Tenant) -> None:
    old = backend.create_user(tenant, {**user("old"), "active": False})
    gone = backend.create_user(tenant, user("gone"))
    active = backend.create_user(tenant, user("active"))
    group = backend.create_group(tenant, {"displayName": "g"}, [Member(gone.id), Member(active.id)])
    backend.delete_user(tenant, gone.id, hard=False)
    time.sleep(0.01)
    cutoff = datetime.now(UTC)
    time.sleep(0.01)
    recent = backend.create_user(tenant, {**user("recent"), "active": False})
    assert sorted(backend.remove_inactive_users(tenant, inactive_since=cutoff)) == sorted([old.id, gone.id])
    assert backend.remove_inactive_users(tenant, inactive_since=cutoff - timedelta(days=1)) == []
    assert backend.remove_inactive_users(tenant) == [recent.id]
    assert [u.id for u in backend.list_users(tenant, ListQuery()).resources] == [active.id]
    assert [m.value for m in backend.get_group(tenant, group.id).members or ()] == [active.id]


# -- groups ------------------------------------------------------------------------------------------


def test_group_crud(backend: SqlBackend, tenant: Tenant) -> None:
    a = backend.create_user(tenant, user("a", displayName="Ann"))
    b = backend.create_user(tenant, user("b"))
    group = backend.create_group(tenant, {"displayName": "Eng", "externalId": "e1"}, [Member(a.id), Member(a.id)])
    assert group.version == "1"
    assert [(m.value, m.type, m.display) for m in group.members or ()] == [(a.id, "User", "Ann")]
    got = backend.get_group(tenant, group.id)
    assert got.data == {"displayName": "Eng", "externalId": "e1"} and got.display_name == "Eng"
    assert backend.get_group(tenant, group.id, include_members=False).members is None
    replaced = backend.replace_group(tenant, group.id, {"displayName": "Engineering"}, [Member(b.id)])
    assert replaced.version == "2" and [m.value for m in replaced.members or ()] == [b.id]
    assert replaced.members and replaced.members[0].display == "b"
    with pytest.raises(VersionMismatch):
        backend.replace_group(tenant, group.id, {"displayName": "x"}, [], expected_version="1")
    with pytest.raises(InvalidValue, match="nope"):
        backend.replace_group(tenant, group.id, {"displayName": "x"}, [Member("nope")])
    assert backend.get_group(tenant, group.id).display_name == "Engineering"
    # The user's groups follow.
    assert [g.value for g in backend.get_user(tenant, b.id).groups] == [group.id]
    with pytest.raises(VersionMismatch):
        backend.delete_group(tenant, group.id, expected_version="1")
    backend.delete_group(tenant, group.id, expected_version="2")
    with pytest.raises(NotFound):
        backend.get_group(tenant, group.id)
    with pytest.raises(NotFound):
        backend.delete_group(tenant, group.id)
    assert backend.get_user(tenant, b.id).groups == ()


def test_group_members_must_be_visible_users(backend: SqlBackend, tenant: Tenant) -> None:
    a = backend.create_user(tenant, user("a"))
    gone = backend.create_user(tenant, user("gone"))
    backend.delete_user(tenant, gone.id, hard=False)
    with pytest.raises(InvalidValue) as info:
        backend.create_group(tenant, {"displayName": "g"}, [Member(a.id), Member(gone.id), Member("missing")])
    assert gone.id in info.value.detail and "missing" in info.value.detail and a.id not in info.value.detail
    assert backend.list_groups(tenant, ListQuery()).total_results == 0  # nothing written
    with pytest.raises(InvalidValue, match="nested"):
        backend.create_group(tenant, {"displayName": "g"}, [Member(a.id, type="Group")])


def test_patch_group_deltas(backend: SqlBackend, tenant: Tenant) -> None:
    a, b, c = (backend.create_user(tenant, user(n)) for n in ("a", "b", "c"))
    group = backend.create_group(tenant, {"displayName": "g"}, [Member(a.id), Member(b.id)])
    patched = backend.patch_group(tenant, group.id, GroupChanges(add=(Member(c.id), Member(a.id)), remove=(b.id, "x")))
    assert sorted(m.value for m in patched.members or ()) == sorted([a.id, c.id])
    assert patched.version == "2" and patched.data == {"displayName": "g"}
    renamed = backend.patch_group(tenant, group.id, GroupChanges(data={"displayName": "G2"}), expected_version="2")
    assert renamed.display_name == "G2" and renamed.version == "3" and len(renamed.members or ()) == 2
    with pytest.raises(VersionMismatch):
        backend.patch_group(tenant, group.id, GroupChanges(remove=(a.id,)), expected_version="2")
    with pytest.raises(InvalidValue, match="ghost"):
        backend.patch_group(tenant, group.id, GroupChanges(remove=(a.id,), add=(Member("ghost"),)))
    after = backend.get_group(tenant, group.id)
    assert after.version == "3" and len(after.members or ()) == 2  # the failed patch wrote nothing
    cleared = backend.patch_group(tenant, group.id, GroupChanges(clear_members=True, add=(Member(b.id),)))
    assert [m.value for m in cleared.members or ()] == [b.id]
    with pytest.raises(NotFound):
        backend.patch_group(tenant, "nope", GroupChanges())


def test_patch_group_touches_only_changed_rows(backend: SqlBackend, tenant: Tenant) -> None:
    ids = [backend.create_user(tenant, user(f"m{i}")).id for i in range(30)]
    group = backend.create_group(tenant, {"displayName": "big"}, [Member(i) for i in ids[:25]])
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(backend.engine, "before_cursor_execute", record)
    try:
        backend.patch_group(tenant, group.id, GroupChanges(add=(Member(ids[26]),), remove=(ids[0],)))
    finally:
        sa.event.remove(backend.engine, "before_cursor_execute", record)
    writes = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "DELETE"))]
    member_writes = [s for s in writes if "scim_group_members" in s]
    assert len(member_writes) == 2  # one DELETE of the removed row, one INSERT of the added row
    deletes = [s for s in member_writes if s.lstrip().upper().startswith("DELETE")]
    assert len(deletes) == 1 and "member_id IN" in deletes[0]  # never the whole member list
    assert len(backend.get_group(tenant, group.id).members or ()) == 25


def test_list_groups(backend: SqlBackend, tenant: Tenant) -> None:
    a = backend.create_user(tenant, user("a"))
    g1 = backend.create_group(tenant, {"displayName": "beta"}, [Member(a.id)])
    g2 = backend.create_group(tenant, {"displayName": "Alpha"}, [])
    page = backend.list_groups(tenant, ListQuery(sort_by=_path("displayName", group=True)))
    assert [g.id for g in page.resources] == [g2.id, g1.id] and page.total_results == 2
    assert page.resources[1].members == (Member(a.id, "User", "a"),)
    no_members = backend.list_groups(tenant, ListQuery(include_members=False))
    assert all(g.members is None for g in no_members.resources)
    only = backend.list_groups(tenant, ListQuery(filter=_filter(f'members.value eq "{a.id}"', group=True)))
    assert [g.id for g in only.resources] == [g1.id]
    with pytest.raises(InvalidCursor):
        backend.list_groups(tenant, ListQuery(cursor="garbage"))


def test_list_users_paging_and_totals(backend: SqlBackend, tenant: Tenant) -> None:
    made = [backend.create_user(tenant, user(f"user{i:02d}")) for i in range(7)]
    by_id = sorted(u.id for u in made)
    page = backend.list_users(tenant, ListQuery(start_index=3, count=2))
    assert [u.id for u in page.resources] == by_id[2:4]
    assert page.total_results == 7 and page.start_index == 3
    assert backend.list_users(tenant, ListQuery(start_index=7, count=5)).resources[0].id == by_id[6]
    beyond = backend.list_users(tenant, ListQuery(start_index=20, count=5))
    assert beyond.resources == [] and beyond.total_results == 7
    only_total = backend.list_users(tenant, ListQuery(count=0))
    assert only_total.resources == [] and only_total.total_results == 7
    with pytest.raises(InvalidCursor):
        backend.list_users(tenant, ListQuery(cursor="garbage"))


def test_list_users_groups_projection(backend: SqlBackend, tenant: Tenant) -> None:
    a = backend.create_user(tenant, user("a"))
    g = backend.create_group(tenant, {"displayName": "G"}, [Member(a.id)])
    with_groups = backend.list_users(tenant, ListQuery())
    assert with_groups.resources[0].groups == (Member(g.id, "Group", "G"),)
    assert backend.list_users(tenant, ListQuery(include_groups=False)).resources[0].groups == ()


def test_enterprise_extension_round_trips(backend: SqlBackend, tenant: Tenant) -> None:
    data = user("ent", **{ENTERPRISE_SCHEMA: {"employeeNumber": "42", "manager": {"value": "boss"}}})
    u = backend.create_user(tenant, data)
    assert backend.get_user(tenant, u.id).data[ENTERPRISE_SCHEMA]["employeeNumber"] == "42"
    found = backend.list_users(tenant, ListQuery(filter=_filter(f'{ENTERPRISE_SCHEMA}:employeeNumber eq "42"')))
    assert [x.id for x in found.resources] == [u.id]


def test_too_long_values_are_invalid(backend: SqlBackend, tenant: Tenant) -> None:
    with pytest.raises(InvalidValue, match="userName"):
        backend.create_user(tenant, user("x" * 600))


# helpers shared with the filter tests


def _path(text: str, *, group: bool = False) -> Any:
    from scim_service.query.parser import parse_attr_path
    from scim_service.query.resolve import resolve_path
    from scim_service.schemas.definitions import GROUP_RESOURCE, USER_RESOURCE

    return resolve_path(parse_attr_path(text), GROUP_RESOURCE if group else USER_RESOURCE)


def _filter(text: str, *, group: bool = False) -> Any:
    from scim_service.query.parser import parse_filter
    from scim_service.query.resolve import resolve_filter
    from scim_service.schemas.definitions import GROUP_RESOURCE, USER_RESOURCE

    return resolve_filter(parse_filter(text), GROUP_RESOURCE if group else USER_RESOURCE)


def test_migration_0003_keys_existing_group_names_and_stops_on_duplicates(tmp_path: Path) -> None:
    """Groups stored before revision 0003 get their name keys; groups sharing a name stop the upgrade
    with a message naming them, and nothing changes until they are renamed."""
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/old.db"})
    backend.migrate("0002")
    now = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [("g1", "t1", "Eng"), ("g2", "t1", "Sales"), ("g3", "t2", "eng"), ("g4", "t1", "ENG")]
    with backend.engine.begin() as conn:
        for gid, tenant_id, name in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO scim_groups (id, tenant_id, display_name, data, created, last_modified, version) "
                    "VALUES (:id, :t, :n, :d, :c, :c, 1)"
                ),
                {"id": gid, "t": tenant_id, "n": name, "d": json.dumps({"displayName": name}), "c": now},
            )
    with pytest.raises(CommandError, match="share a name") as refused:
        backend.migrate()
    assert "tenant t1: 'Eng' (id g1), 'ENG' (id g4)" in str(refused.value)
    with backend.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one() == "0002"
        assert "display_name_key" not in {c["name"] for c in sa.inspect(conn).get_columns("scim_groups")}
    with backend.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM scim_groups WHERE id = 'g4'"))
    backend.migrate()
    with backend.engine.connect() as conn:
        keys = dict(conn.execute(sa.text("SELECT id, display_name_key FROM scim_groups")).all())
    assert keys == {"g1": "eng", "g2": "sales", "g3": "eng"}
    with pytest.raises(UniquenessConflict):
        backend.create_group(Tenant(id="t1", name="t1"), {"displayName": "SALES"}, [])
    backend.close()


def test_migration_0003_downgrade_keeps_groups_and_their_members(tmp_path: Path) -> None:
    backend = SqlBackend.from_config({"SCIM_DATABASE_URL": f"sqlite:///{tmp_path}/down.db"})
    backend.migrate()
    tenant = Tenant(id="t1", name="t1")
    alice = backend.create_user(tenant, {"userName": "alice"})
    group = backend.create_group(tenant, {"displayName": "Eng"}, [Member(alice.id)])
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    with write_transaction(backend.engine) as conn:  # the engine's connections have foreign keys on
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    with backend.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one() == "0002"
        assert "display_name_key" not in {c["name"] for c in sa.inspect(conn).get_columns("scim_groups")}
        members = conn.execute(sa.text("SELECT member_id FROM scim_group_members")).scalars().all()
    assert members == [alice.id]  # no cascade from rebuilding scim_groups
    backend.migrate()
    assert [m.value for m in backend.get_group(tenant, group.id).members or ()] == [alice.id]
    backend.close()
