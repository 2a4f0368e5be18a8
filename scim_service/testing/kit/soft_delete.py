"""A soft-deleted user is gone to SCIM but kept for reactivation and still holds its userName."""

from __future__ import annotations

from datetime import UTC, datetime

from scim_service.backend import Backend
from scim_service.errors import InvalidValue, NotFound
from scim_service.model import GroupChanges, Member, Tenant
from scim_service.testing.data import (
    full_user_document,
    group_document,
    group_filter,
    query,
    user_document,
    user_filter,
)
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import all_users, assert_raises, group_ids_of, member_ids, tick, user_ids

__all__ = ["SoftDeleteTests"]


class SoftDeleteTests(KitBase):
    """delete_user(hard=False): kept but invisible; remove_inactive_users."""

    def test_soft_deleted_user_is_not_found(self, backend: Backend, tenant: Tenant) -> None:
        user = backend.create_user(tenant, user_document("gone"))
        backend.delete_user(tenant, user.id, hard=False)
        assert_raises(
            NotFound, "get_user must raise NotFound for a soft-deleted user", backend.get_user, tenant, user.id
        )

    def test_soft_deleted_user_is_kept_for_include_deleted(self, backend: Backend, tenant: Tenant) -> None:
        document = full_user_document("gone")
        user = backend.create_user(tenant, document)
        backend.delete_user(tenant, user.id, hard=False)
        kept = backend.get_user(tenant, user.id, include_deleted=True)
        assert kept.id == user.id and kept.deleted is True, (
            "a soft delete must keep the record, with deleted=True, for get_user(include_deleted=True)"
        )
        assert kept.active is False and kept.data.get("active") is False, "a soft delete must leave active false"
        assert kept.user_name == "gone" and kept.data.get("emails") == document["emails"], (
            "a soft delete must keep the user's attributes"
        )

    def test_soft_deleted_user_is_in_no_list_or_filter(self, backend: Backend, tenant: Tenant) -> None:
        keep = backend.create_user(tenant, user_document("keep", title="x"))
        gone = backend.create_user(tenant, user_document("gone", title="x"))
        backend.delete_user(tenant, gone.id, hard=False)
        page = backend.list_users(tenant, query())
        assert user_ids(page.resources) == [keep.id] and page.total_results == 1, (
            "list_users must skip soft-deleted users, in resources and in total_results"
        )
        texts = ('userName eq "gone"', "active eq false", 'title eq "x"', f'id eq "{gone.id}"', "not (active pr)")
        for text in texts if backend.capabilities.filter else ():
            ids = user_ids(backend.list_users(tenant, query(filter=user_filter(text))).resources)
            assert gone.id not in ids, f"a soft-deleted user must match no filter (it matched {text!r})"

    def test_soft_deleted_user_leaves_its_groups(self, backend: Backend, tenant: Tenant) -> None:
        stay = backend.create_user(tenant, user_document("stay"))
        gone = backend.create_user(tenant, user_document("gone"))
        group = backend.create_group(tenant, group_document("g"), [Member(stay.id), Member(gone.id)])
        backend.delete_user(tenant, gone.id, hard=False)
        assert member_ids(backend.get_group(tenant, group.id)) == {stay.id}, (
            "a soft-deleted user must be in no group (get_group)"
        )
        listed = backend.list_groups(tenant, query()).resources
        assert member_ids(listed[0]) == {stay.id}, "a soft-deleted user must be in no group (list_groups)"
        if backend.capabilities.filter:
            found = user_ids(
                backend.list_groups(tenant, query(filter=group_filter(f'members.value eq "{gone.id}"'))).resources
            )
            assert found == [], "a soft-deleted user must be in no group (members filter)"
        back = backend.replace_user(tenant, gone.id, user_document("gone"), undelete=True)
        assert group_ids_of(backend.get_user(tenant, back.id)) == set(), (
            "a soft delete removes memberships: a reactivated user must not be back in its old groups"
        )

    def test_soft_deleted_user_cannot_become_a_member(self, backend: Backend, tenant: Tenant) -> None:
        gone = backend.create_user(tenant, user_document("gone"))
        backend.delete_user(tenant, gone.id, hard=False)
        assert_raises(
            InvalidValue,
            "create_group must refuse a soft-deleted user as member",
            backend.create_group,
            tenant,
            group_document("g"),
            [Member(gone.id)],
        )
        group = backend.create_group(tenant, group_document("h"), [])
        assert_raises(
            InvalidValue,
            "patch_group must refuse to add a soft-deleted user",
            backend.patch_group,
            tenant,
            group.id,
            GroupChanges(add=(Member(gone.id),)),
        )

    def test_soft_deleted_user_needs_undelete_to_be_replaced(self, backend: Backend, tenant: Tenant) -> None:
        user = backend.create_user(tenant, user_document("gone", title="old"))
        backend.delete_user(tenant, user.id, hard=False)
        assert_raises(
            NotFound,
            "replace_user without undelete must raise NotFound for a soft-deleted user",
            backend.replace_user,
            tenant,
            user.id,
            user_document("gone", title="new"),
        )
        assert_raises(
            NotFound,
            "delete_user must raise NotFound for an already soft-deleted user",
            backend.delete_user,
            tenant,
            user.id,
            hard=False,
        )
        back = backend.replace_user(tenant, user.id, user_document("gone", title="new"), undelete=True)
        assert back.id == user.id and back.deleted is False and back.active is True, (
            "replace_user(undelete=True) must make the same record visible and active again"
        )
        assert backend.get_user(tenant, user.id).data.get("title") == "new", (
            "replace_user(undelete=True) must store the new document"
        )
        assert user.id in user_ids(all_users(backend, tenant)), "an undeleted user must be listed again"

    def test_remove_inactive_users_removes_inactive_and_soft_deleted(self, backend: Backend, tenant: Tenant) -> None:
        active = backend.create_user(tenant, user_document("active"))
        inactive = backend.create_user(tenant, user_document("inactive", active=False))
        gone = backend.create_user(tenant, user_document("gone"))
        backend.delete_user(tenant, gone.id, hard=False)
        group = backend.create_group(tenant, group_document("g"), [Member(active.id), Member(inactive.id)])
        removed = backend.remove_inactive_users(tenant)
        assert sorted(removed) == sorted([inactive.id, gone.id]), (
            "remove_inactive_users must remove exactly the inactive and soft-deleted users and return their ids"
        )
        for user_id in (inactive.id, gone.id):
            assert_raises(
                NotFound,
                "remove_inactive_users must hard-delete the records",
                backend.get_user,
                tenant,
                user_id,
                include_deleted=True,
            )
        assert backend.get_user(tenant, active.id).active, "remove_inactive_users must keep active users"
        assert member_ids(backend.get_group(tenant, group.id)) == {active.id}, (
            "remove_inactive_users must remove the memberships of the removed users"
        )
        assert backend.create_user(tenant, user_document("GONE")).id, (
            "remove_inactive_users must free the userNames of the removed users"
        )

    def test_remove_inactive_users_honours_inactive_since(self, backend: Backend, tenant: Tenant) -> None:
        old = backend.create_user(tenant, user_document("old", active=False))
        tick()
        cutoff = datetime.now(UTC)
        tick()
        new = backend.create_user(tenant, user_document("new", active=False))
        assert backend.remove_inactive_users(tenant, inactive_since=cutoff) == [old.id], (
            "remove_inactive_users(inactive_since=t) must remove only users last modified before t"
        )
        assert backend.get_user(tenant, new.id).id == new.id, "users modified after inactive_since must stay"
