"""create_user, get_user, replace_user and a hard delete_user: shapes and round trips."""

from __future__ import annotations

import uuid
from datetime import datetime

from scim_service.backend import Backend
from scim_service.errors import NotFound
from scim_service.model import Member, Tenant
from scim_service.testing.data import aware, full_user_document, group_document, plain, query, user_document
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import ENT, all_users, assert_raises, group_ids_of, member_ids, tick, user_ids

__all__ = ["UserCrudTests"]


class UserCrudTests(KitBase):
    """create_user, get_user, replace_user, delete_user(hard=True): shapes and round trips."""

    def test_create_user_returns_id_timestamps_version(self, backend: Backend, tenant: Tenant) -> None:
        a = backend.create_user(tenant, user_document("alice"))
        b = backend.create_user(tenant, user_document("bob"))
        assert isinstance(a.id, str) and a.id, "create_user must return a non-empty string id"
        assert a.id != b.id, "create_user must give every user a fresh id"
        assert isinstance(a.created, datetime) and isinstance(a.last_modified, datetime), (
            "create_user must return created and last_modified datetimes"
        )
        assert aware(a.last_modified) >= aware(a.created), "a new user's last_modified must not precede created"
        assert isinstance(a.version, str) and a.version, "create_user must return a non-empty string version"
        assert a.deleted is False, "a created user must not be deleted"
        assert a.user_name == "alice", "create_user must return the stored userName"

    def test_create_get_round_trip_every_user_attribute(self, backend: Backend, tenant: Tenant) -> None:
        document = full_user_document()
        created = backend.create_user(tenant, document)
        assert plain(created.data) == document, "create_user must return every attribute it was given, unchanged"
        fetched = backend.get_user(tenant, created.id)
        assert plain(fetched.data) == document, (
            "get_user must return every attribute of User and the enterprise extension exactly as stored"
        )
        assert fetched.id == created.id and fetched.version == created.version, (
            "get_user must return the id and version create_user returned"
        )
        assert aware(fetched.created) == aware(created.created), "get_user must return the created time of the create"
        listed = backend.list_users(tenant, query()).resources
        assert [plain(u.data) for u in listed] == [document], "list_users must return the same full document"

    def test_create_user_stores_a_copy_of_the_document(self, backend: Backend, tenant: Tenant) -> None:
        document = full_user_document()
        created = backend.create_user(tenant, document)
        document["title"] = "changed after the call"
        document["emails"].append({"value": "late@example.com"})
        document[ENT]["department"] = "changed"
        stored = backend.get_user(tenant, created.id)
        assert stored.data.get("title") == "Tour Guide" and len(stored.data["emails"]) == 2, (
            "create_user must store a copy: changing the caller's dict afterwards must not change the user"
        )
        assert stored.data[ENT]["department"] == "Tour Operations", (
            "create_user must store a deep copy (nested dicts included)"
        )

    def test_inactive_user_round_trip_and_stays_visible(self, backend: Backend, tenant: Tenant) -> None:
        created = backend.create_user(tenant, user_document("inactive", active=False))
        fetched = backend.get_user(tenant, created.id)
        assert fetched.active is False and fetched.data.get("active") is False, (
            "a user created with active=false must be stored inactive"
        )
        assert created.id in user_ids(all_users(backend, tenant)), (
            "an inactive (deactivated, not deleted) user must stay visible to list_users"
        )

    def test_get_user_unknown_id_is_not_found(self, backend: Backend, tenant: Tenant) -> None:
        assert_raises(NotFound, "get_user must raise NotFound for an unknown id", backend.get_user, tenant, "nope")
        assert_raises(
            NotFound,
            "get_user must raise NotFound for an unknown id, also with include_deleted",
            backend.get_user,
            tenant,
            str(uuid.uuid4()),
            include_deleted=True,
        )

    def test_replace_user_replaces_the_whole_document(self, backend: Backend, tenant: Tenant) -> None:
        created = backend.create_user(tenant, full_user_document())
        tick()
        new = user_document("bjensen", title="Boss", displayName="B. Jensen")
        replaced = backend.replace_user(tenant, created.id, new)
        assert plain(replaced.data) == new, "replace_user must return exactly the new document (no merge)"
        stored = backend.get_user(tenant, created.id)
        assert plain(stored.data) == new, (
            "replace_user must replace the whole document: attributes absent from it must be gone"
        )
        assert aware(stored.created) == aware(created.created), "replace_user must keep the created time"
        assert aware(stored.last_modified) > aware(created.last_modified), "replace_user must advance last_modified"
        assert replaced.id == created.id, "replace_user must keep the id"

    def test_replace_user_can_change_username_case(self, backend: Backend, tenant: Tenant) -> None:
        created = backend.create_user(tenant, user_document("carol"))
        replaced = backend.replace_user(tenant, created.id, user_document("CAROL"))
        assert replaced.user_name == "CAROL", "replace_user must let a user change the case of its own userName"

    def test_replace_user_unknown_is_not_found(self, backend: Backend, tenant: Tenant) -> None:
        assert_raises(
            NotFound,
            "replace_user must raise NotFound for an unknown id",
            backend.replace_user,
            tenant,
            str(uuid.uuid4()),
            user_document("ghost"),
        )
        assert all_users(backend, tenant) == [], "replace_user of an unknown id must not create a user"

    def test_replace_user_keeps_group_memberships(self, backend: Backend, tenant: Tenant) -> None:
        user = backend.create_user(tenant, user_document("dave"))
        group = backend.create_group(tenant, group_document("staff"), [Member(user.id)])
        backend.replace_user(tenant, user.id, user_document("dave", title="new"))
        assert group_ids_of(backend.get_user(tenant, user.id)) == {group.id}, (
            "replace_user must keep the user's group memberships"
        )
        assert member_ids(backend.get_group(tenant, group.id)) == {user.id}, (
            "replace_user must keep the user in its groups"
        )

    def test_hard_delete_removes_the_record(self, backend: Backend, tenant: Tenant) -> None:
        user = backend.create_user(tenant, user_document("erin"))
        backend.delete_user(tenant, user.id, hard=True)
        assert_raises(NotFound, "after a hard delete get_user must raise NotFound", backend.get_user, tenant, user.id)
        assert_raises(
            NotFound,
            "a hard delete must remove the record: get_user(include_deleted=True) must raise NotFound",
            backend.get_user,
            tenant,
            user.id,
            include_deleted=True,
        )
        again = backend.create_user(tenant, user_document("ERIN"))
        assert again.id != user.id, "a hard delete must free the userName for a new user with a new id"

    def test_delete_user_unknown_is_not_found(self, backend: Backend, tenant: Tenant) -> None:
        for hard in (True, False):
            assert_raises(
                NotFound,
                f"delete_user(hard={hard}) must raise NotFound for an unknown id",
                backend.delete_user,
                tenant,
                str(uuid.uuid4()),
                hard=hard,
            )

    def test_get_user_fills_groups_when_asked(self, backend: Backend, tenant: Tenant) -> None:
        user = backend.create_user(tenant, user_document("gina"))
        g1 = backend.create_group(tenant, group_document("one"), [Member(user.id)])
        g2 = backend.create_group(tenant, group_document("two"), [Member(user.id)])
        backend.create_group(tenant, group_document("three"), [])
        assert group_ids_of(backend.get_user(tenant, user.id)) == {g1.id, g2.id}, (
            "get_user(include_groups=True) must list exactly the groups the user is a direct member of"
        )
        listed = backend.list_users(tenant, query(include_groups=True)).resources
        assert group_ids_of(listed[0]) == {g1.id, g2.id}, "list_users with include_groups must fill each user's groups"
