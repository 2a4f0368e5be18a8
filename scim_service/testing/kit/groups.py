"""Group CRUD and the validity of members."""

from __future__ import annotations

import uuid

from scim_service.backend import Backend
from scim_service.errors import InvalidValue, NotFound
from scim_service.model import GroupChanges, Member, Tenant
from scim_service.testing.data import aware, full_group_document, group_document, plain, query, user_document
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import assert_raises, group_ids_of, member_ids, tick
from scim_service.testing.kit.requirements import requires

__all__ = ["GroupTests"]


class GroupTests(KitBase):
    """create_group, get_group, replace_group, delete_group, list_groups; members validity."""

    def test_create_get_round_trip_group(self, backend: Backend, tenant: Tenant) -> None:
        a = backend.create_user(tenant, user_document("a"))
        b = backend.create_user(tenant, user_document("b"))
        document = full_group_document()
        created = backend.create_group(tenant, document, [Member(a.id), Member(b.id, "User", "B")])
        assert created.id and created.version, "create_group must return an id and a version"
        assert plain(created.data) == document, "create_group must return the group's attributes unchanged"
        assert member_ids(created) == {a.id, b.id}, "create_group must return the group with its members"
        fetched = backend.get_group(tenant, created.id)
        assert plain(fetched.data) == document, "get_group must return the attributes exactly as stored"
        assert member_ids(fetched) == {a.id, b.id}, "get_group must return every member"
        assert all(m.type == "User" for m in fetched.members or ()), "a user member must have type 'User'"
        assert fetched.display_name == "Tour Guides", "get_group must return displayName"

    def test_create_group_stores_a_copy(self, backend: Backend, tenant: Tenant) -> None:
        document = full_group_document()
        created = backend.create_group(tenant, document, [])
        document["displayName"] = "changed after the call"
        assert backend.get_group(tenant, created.id).display_name == "Tour Guides", (
            "create_group must store a copy: changing the caller's dict afterwards must not change the group"
        )

    def test_get_group_without_members(self, backend: Backend, tenant: Tenant) -> None:
        user = backend.create_user(tenant, user_document("a"))
        group = backend.create_group(tenant, group_document("g"), [Member(user.id)])
        assert backend.get_group(tenant, group.id, include_members=False).members is None, (
            "get_group(include_members=False) must return members=None"
        )
        listed = backend.list_groups(tenant, query(include_members=False)).resources
        assert [g.members for g in listed] == [None], "list_groups with include_members=False must give members=None"
        listed = backend.list_groups(tenant, query(include_members=True)).resources
        assert member_ids(listed[0]) == {user.id}, "list_groups with include_members=True must fill members"

    def test_unknown_group_is_not_found(self, backend: Backend, tenant: Tenant) -> None:
        missing = str(uuid.uuid4())
        assert_raises(NotFound, "get_group must raise NotFound for an unknown id", backend.get_group, tenant, missing)
        assert_raises(
            NotFound,
            "replace_group must raise NotFound for an unknown id",
            backend.replace_group,
            tenant,
            missing,
            group_document("x"),
            [],
        )
        assert_raises(
            NotFound,
            "patch_group must raise NotFound for an unknown id",
            backend.patch_group,
            tenant,
            missing,
            GroupChanges(data=group_document("x")),
        )
        assert_raises(
            NotFound, "delete_group must raise NotFound for an unknown id", backend.delete_group, tenant, missing
        )
        assert backend.list_groups(tenant, query()).total_results == 0, "writes to an unknown group must create none"

    def test_replace_group_replaces_attributes_and_members(self, backend: Backend, tenant: Tenant) -> None:
        a = backend.create_user(tenant, user_document("a"))
        b = backend.create_user(tenant, user_document("b"))
        group = backend.create_group(tenant, full_group_document(), [Member(a.id)])
        tick()
        replaced = backend.replace_group(tenant, group.id, group_document("New name"), [Member(b.id)])
        assert plain(replaced.data) == group_document("New name"), (
            "replace_group must replace the whole attribute document (externalId dropped)"
        )
        stored = backend.get_group(tenant, group.id)
        assert member_ids(stored) == {b.id}, "replace_group must replace the whole member list"
        assert aware(stored.created) == aware(group.created), "replace_group must keep the created time"
        assert aware(stored.last_modified) > aware(group.last_modified), "replace_group must advance last_modified"
        assert group_ids_of(backend.get_user(tenant, a.id)) == set(), "a user dropped by replace_group leaves it"

    def test_replace_group_with_invalid_member_writes_nothing(self, backend: Backend, tenant: Tenant) -> None:
        a = backend.create_user(tenant, user_document("a"))
        group = backend.create_group(tenant, group_document("g"), [Member(a.id)])
        assert_raises(
            InvalidValue,
            "replace_group must raise InvalidValue for a member that is not a user of the tenant",
            backend.replace_group,
            tenant,
            group.id,
            group_document("renamed"),
            [Member(str(uuid.uuid4()))],
        )
        stored = backend.get_group(tenant, group.id)
        assert stored.display_name == "g" and member_ids(stored) == {a.id}, "a refused replace_group must write nothing"

    def test_create_group_with_unknown_member_writes_nothing(self, backend: Backend, tenant: Tenant) -> None:
        a = backend.create_user(tenant, user_document("a"))
        assert_raises(
            InvalidValue,
            "create_group must raise InvalidValue for a member that is not a user of the tenant",
            backend.create_group,
            tenant,
            group_document("g"),
            [Member(a.id), Member(str(uuid.uuid4()))],
        )
        assert backend.list_groups(tenant, query()).total_results == 0, "a refused create_group must write nothing"

    def test_delete_group_keeps_its_users(self, backend: Backend, tenant: Tenant) -> None:
        a = backend.create_user(tenant, user_document("a"))
        group = backend.create_group(tenant, group_document("g"), [Member(a.id)])
        backend.delete_group(tenant, group.id)
        assert_raises(NotFound, "delete_group must remove the group", backend.get_group, tenant, group.id)
        user = backend.get_user(tenant, a.id)
        assert user.active and group_ids_of(user) == set(), (
            "delete_group must remove the memberships and leave the member users untouched"
        )
        assert backend.list_groups(tenant, query()).total_results == 0, "a deleted group must not be listed"

    def test_hard_deleted_user_leaves_its_groups(self, backend: Backend, tenant: Tenant) -> None:
        a = backend.create_user(tenant, user_document("a"))
        b = backend.create_user(tenant, user_document("b"))
        group = backend.create_group(tenant, group_document("g"), [Member(a.id), Member(b.id)])
        backend.delete_user(tenant, a.id, hard=True)
        assert member_ids(backend.get_group(tenant, group.id)) == {b.id}, "a hard delete must remove memberships"

    @requires.flat_groups
    def test_group_is_no_member_without_nested_groups(self, backend: Backend, tenant: Tenant) -> None:
        inner = backend.create_group(tenant, group_document("inner"), [])
        for member in (Member(inner.id, "Group"), Member(inner.id)):
            assert_raises(
                InvalidValue,
                "without nested_groups create_group must raise InvalidValue for a group as member",
                backend.create_group,
                tenant,
                group_document("outer"),
                [member],
            )

    @requires.nested_groups
    def test_nested_groups(self, backend: Backend, tenant: Tenant) -> None:
        user = backend.create_user(tenant, user_document("a"))
        inner = backend.create_group(tenant, group_document("inner"), [Member(user.id)])
        outer = backend.create_group(tenant, group_document("outer"), [Member(inner.id, "Group")])
        members = backend.get_group(tenant, outer.id).members or ()
        assert [(m.value, m.type) for m in members] == [(inner.id, "Group")], (
            "with nested_groups a group member must be stored with type 'Group'"
        )
