"""patch_group: attribute changes and membership deltas, applied atomically."""

from __future__ import annotations

import uuid

import pytest

from scim_service.backend import Backend
from scim_service.errors import InvalidValue
from scim_service.model import GroupChanges, Member, Tenant, UserRecord
from scim_service.testing.data import full_group_document, group_document, plain, user_document
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import assert_raises, group_ids_of, member_ids

__all__ = ["MembershipTests"]


class MembershipTests(KitBase):
    """patch_group: attribute changes and membership deltas, atomically."""

    @pytest.fixture
    def people(self, backend: Backend, tenant: Tenant) -> list[UserRecord]:
        """Three users of the tenant."""
        return [backend.create_user(tenant, user_document(name)) for name in ("ann", "ben", "cid")]

    def test_add_members(self, backend: Backend, tenant: Tenant, people: list[UserRecord]) -> None:
        ann, ben, _ = people
        group = backend.create_group(tenant, group_document("g"), [Member(ann.id)])
        patched = backend.patch_group(tenant, group.id, GroupChanges(add=(Member(ben.id),)))
        assert member_ids(patched) == {ann.id, ben.id}, "patch_group must add members and return the group's members"
        assert member_ids(backend.get_group(tenant, group.id)) == {ann.id, ben.id}, "patch_group must store additions"
        assert group_ids_of(backend.get_user(tenant, ben.id)) == {group.id}, "an added member must list the group"

    def test_adding_a_present_member_is_a_no_op(
        self, backend: Backend, tenant: Tenant, people: list[UserRecord]
    ) -> None:
        ann, _, _ = people
        group = backend.create_group(tenant, group_document("g"), [Member(ann.id)])
        patched = backend.patch_group(tenant, group.id, GroupChanges(add=(Member(ann.id), Member(ann.id))))
        values = [m.value for m in patched.members or ()]
        assert values == [ann.id], "patch_group adding a present member (even twice) must be a no-op, not a duplicate"

    def test_removing_an_absent_member_is_a_no_op(
        self, backend: Backend, tenant: Tenant, people: list[UserRecord]
    ) -> None:
        ann, ben, _ = people
        group = backend.create_group(tenant, group_document("g"), [Member(ann.id)])
        patched = backend.patch_group(tenant, group.id, GroupChanges(remove=(ben.id, str(uuid.uuid4()))))
        assert member_ids(patched) == {ann.id}, "patch_group removing an absent member must be a no-op, not an error"

    def test_remove_members(self, backend: Backend, tenant: Tenant, people: list[UserRecord]) -> None:
        ann, ben, cid = people
        group = backend.create_group(tenant, group_document("g"), [Member(u.id) for u in people])
        patched = backend.patch_group(tenant, group.id, GroupChanges(remove=(ann.id, cid.id)))
        assert member_ids(patched) == {ben.id}, "patch_group must remove the given members"
        assert group_ids_of(backend.get_user(tenant, ann.id)) == set(), "a removed member must no longer list the group"

    def test_clear_members_then_add(self, backend: Backend, tenant: Tenant, people: list[UserRecord]) -> None:
        ann, ben, cid = people
        group = backend.create_group(tenant, group_document("g"), [Member(ann.id), Member(ben.id)])
        patched = backend.patch_group(tenant, group.id, GroupChanges(clear_members=True, add=(Member(cid.id),)))
        assert member_ids(patched) == {cid.id}, "clear_members must drop every member before add is applied"
        cleared = backend.patch_group(tenant, group.id, GroupChanges(clear_members=True))
        assert member_ids(cleared) == set(), "clear_members alone must leave the group empty"

    def test_patch_applies_clear_then_removals_then_additions(
        self, backend: Backend, tenant: Tenant, people: list[UserRecord]
    ) -> None:
        ann, ben, cid = people
        group = backend.create_group(tenant, group_document("g"), [Member(ann.id), Member(ben.id)])
        changes = GroupChanges(clear_members=True, remove=(cid.id,), add=(Member(cid.id), Member(ann.id)))
        patched = backend.patch_group(tenant, group.id, changes)
        assert member_ids(patched) == {ann.id, cid.id}, (
            "patch_group must apply clear_members, then the removals, then the additions"
        )

    def test_patch_without_members_returns_none(
        self, backend: Backend, tenant: Tenant, people: list[UserRecord]
    ) -> None:
        ann, ben, _ = people
        group = backend.create_group(tenant, group_document("g"), [Member(ann.id)])
        patched = backend.patch_group(tenant, group.id, GroupChanges(add=(Member(ben.id),)), include_members=False)
        assert patched.members is None, "patch_group(include_members=False) must return members=None"
        assert member_ids(backend.get_group(tenant, group.id)) == {ann.id, ben.id}, (
            "patch_group(include_members=False) must still apply the membership changes"
        )

    def test_patch_attributes_keep_members(self, backend: Backend, tenant: Tenant, people: list[UserRecord]) -> None:
        ann, _, _ = people
        group = backend.create_group(tenant, full_group_document(), [Member(ann.id)])
        patched = backend.patch_group(tenant, group.id, GroupChanges(data=group_document("renamed")))
        assert patched.display_name == "renamed" and member_ids(patched) == {ann.id}, (
            "patch_group with data must change the attributes and keep the members"
        )
        assert plain(backend.get_group(tenant, group.id).data) == group_document("renamed"), (
            "patch_group with data must store the new attribute document"
        )
        only_members = backend.patch_group(tenant, group.id, GroupChanges(remove=(ann.id,)))
        assert plain(only_members.data) == group_document("renamed"), (
            "patch_group with data=None must keep the attributes"
        )

    def test_foreign_member_is_refused_and_nothing_written(
        self, backend: Backend, tenant: Tenant, other_tenant: Tenant, people: list[UserRecord]
    ) -> None:
        ann, ben, _ = people
        stranger = backend.create_user(other_tenant, user_document("stranger"))
        group = backend.create_group(tenant, group_document("g"), [Member(ann.id)])
        changes = GroupChanges(
            data=group_document("renamed"), remove=(ann.id,), add=(Member(ben.id), Member(stranger.id))
        )
        assert_raises(
            InvalidValue,
            "patch_group must raise InvalidValue when an added member is a user of another tenant",
            backend.patch_group,
            tenant,
            group.id,
            changes,
        )
        stored = backend.get_group(tenant, group.id)
        assert stored.display_name == "g" and member_ids(stored) == {ann.id} and stored.version == group.version, (
            "a patch_group refused with InvalidValue must write nothing (attributes, removals and additions)"
        )
        assert group_ids_of(backend.get_user(other_tenant, stranger.id)) == set(), (
            "a user of another tenant must not become a member"
        )

    def test_unknown_member_is_refused(self, backend: Backend, tenant: Tenant, people: list[UserRecord]) -> None:
        group = backend.create_group(tenant, group_document("g"), [])
        assert_raises(
            InvalidValue,
            "patch_group must raise InvalidValue when an added member does not exist",
            backend.patch_group,
            tenant,
            group.id,
            GroupChanges(add=(Member(str(uuid.uuid4())),)),
        )
        assert member_ids(backend.get_group(tenant, group.id)) == set(), "a refused patch_group must write nothing"

    def test_users_groups_follow_membership(self, backend: Backend, tenant: Tenant, people: list[UserRecord]) -> None:
        ann, _, _ = people
        g1 = backend.create_group(tenant, group_document("g1"), [])
        g2 = backend.create_group(tenant, group_document("g2"), [])
        backend.patch_group(tenant, g1.id, GroupChanges(add=(Member(ann.id),)))
        backend.patch_group(tenant, g2.id, GroupChanges(add=(Member(ann.id),)))
        assert group_ids_of(backend.get_user(tenant, ann.id)) == {g1.id, g2.id}, "a user's groups must list every group"
        backend.patch_group(tenant, g1.id, GroupChanges(remove=(ann.id,)))
        assert group_ids_of(backend.get_user(tenant, ann.id)) == {g2.id}, "a user's groups must drop a group it left"
