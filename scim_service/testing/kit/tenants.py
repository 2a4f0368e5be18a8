"""Tenants are walls: another tenant's resources do not exist, match nothing and join nothing."""

from __future__ import annotations

from typing import Any

import pytest

from scim_service.backend import Backend
from scim_service.errors import InvalidValue, NotFound
from scim_service.model import GroupChanges, GroupRecord, Member, Tenant, UserRecord
from scim_service.testing.data import group_document, query, user_document, user_filter
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import assert_raises, user_ids

__all__ = ["TenantIsolationTests"]


class TenantIsolationTests(KitBase):
    """Every method is scoped to its tenant: other tenants' resources do not exist for it."""

    @pytest.fixture
    def theirs(self, backend: Backend, other_tenant: Tenant) -> tuple[UserRecord, UserRecord, GroupRecord]:
        """Another tenant's active user, inactive user and group."""
        user = backend.create_user(other_tenant, user_document("shared", email="shared@example.com", title="t"))
        inactive = backend.create_user(other_tenant, user_document("sleeper", active=False))
        group = backend.create_group(other_tenant, group_document("Shared"), [Member(user.id)])
        return user, inactive, group

    def test_get_user_of_other_tenant_is_not_found(self, backend: Backend, tenant: Tenant, theirs: Any) -> None:
        user, _, _ = theirs
        assert_raises(NotFound, "get_user must not find another tenant's user", backend.get_user, tenant, user.id)
        assert_raises(
            NotFound,
            "get_user(include_deleted=True) must not find another tenant's user",
            backend.get_user,
            tenant,
            user.id,
            include_deleted=True,
        )

    def test_replace_user_of_other_tenant_is_not_found(
        self, backend: Backend, tenant: Tenant, other_tenant: Tenant, theirs: Any
    ) -> None:
        user, _, _ = theirs
        for undelete in (False, True):
            assert_raises(
                NotFound,
                f"replace_user(undelete={undelete}) must not reach another tenant's user",
                backend.replace_user,
                tenant,
                user.id,
                user_document("hijack"),
                undelete=undelete,
            )
        assert backend.get_user(other_tenant, user.id).user_name == "shared", "the other tenant's user must be intact"

    def test_delete_user_of_other_tenant_is_not_found(
        self, backend: Backend, tenant: Tenant, other_tenant: Tenant, theirs: Any
    ) -> None:
        user, _, _ = theirs
        for hard in (False, True):
            assert_raises(
                NotFound,
                f"delete_user(hard={hard}) must not reach another tenant's user",
                backend.delete_user,
                tenant,
                user.id,
                hard=hard,
            )
        assert backend.get_user(other_tenant, user.id).active, "the other tenant's user must be intact"

    def test_list_users_sees_only_own_tenant(self, backend: Backend, tenant: Tenant, theirs: Any) -> None:
        mine = backend.create_user(tenant, user_document("mine", title="t"))
        page = backend.list_users(tenant, query())
        assert user_ids(page.resources) == [mine.id] and page.total_results == 1, (
            "list_users must return only the tenant's own users"
        )
        texts = ('title eq "t"', 'userName eq "shared"', "active eq false", f'id eq "{theirs[0].id}"')
        for text in texts if backend.capabilities.filter else ():
            found = backend.list_users(tenant, query(filter=user_filter(text)))
            assert theirs[0].id not in user_ids(found.resources) and theirs[1].id not in user_ids(found.resources), (
                f"a filter must never match another tenant's user ({text!r})"
            )

    def test_same_username_and_email_allowed_in_other_tenant(
        self, backend: Backend, tenant: Tenant, theirs: Any
    ) -> None:
        user = backend.create_user(tenant, user_document("SHARED", email="shared@example.com"))
        assert user.id != theirs[0].id, "userName and email uniqueness must be per tenant"

    def test_seats_are_counted_per_tenant(self, backend: Backend, make_tenant: Any, theirs: Any) -> None:
        tenant = make_tenant(max_seats=1)
        assert backend.count_seats(tenant) == 0, "count_seats must count only the tenant's own records"
        assert backend.create_user(tenant, user_document("first")).id, "other tenants' users must not hold seats here"

    def test_remove_inactive_users_touches_only_own_tenant(
        self, backend: Backend, tenant: Tenant, other_tenant: Tenant, theirs: Any
    ) -> None:
        _, inactive, _ = theirs
        assert backend.remove_inactive_users(tenant) == [], "remove_inactive_users must not see other tenants"
        assert backend.get_user(other_tenant, inactive.id).id == inactive.id, (
            "remove_inactive_users must not remove another tenant's inactive users"
        )

    def test_group_methods_of_other_tenant_are_not_found(
        self, backend: Backend, tenant: Tenant, other_tenant: Tenant, theirs: Any
    ) -> None:
        _, _, group = theirs
        assert_raises(NotFound, "get_group must not find another tenant's group", backend.get_group, tenant, group.id)
        assert_raises(
            NotFound,
            "replace_group must not reach another tenant's group",
            backend.replace_group,
            tenant,
            group.id,
            group_document("x"),
            [],
        )
        assert_raises(
            NotFound,
            "patch_group must not reach another tenant's group",
            backend.patch_group,
            tenant,
            group.id,
            GroupChanges(clear_members=True),
        )
        assert_raises(
            NotFound, "delete_group must not reach another tenant's group", backend.delete_group, tenant, group.id
        )
        stored = backend.get_group(other_tenant, group.id)
        assert stored.display_name == "Shared" and len(stored.members or ()) == 1, "the other group must be intact"

    def test_list_groups_sees_only_own_tenant(self, backend: Backend, tenant: Tenant, theirs: Any) -> None:
        mine = backend.create_group(tenant, group_document("Shared"), [])
        page = backend.list_groups(tenant, query())
        assert user_ids(page.resources) == [mine.id] and page.total_results == 1, (
            "list_groups must return only the tenant's own groups"
        )

    def test_other_tenants_user_cannot_be_a_member(self, backend: Backend, tenant: Tenant, theirs: Any) -> None:
        user, _, group = theirs
        assert_raises(
            InvalidValue,
            "create_group must raise InvalidValue for a member of another tenant",
            backend.create_group,
            tenant,
            group_document("g"),
            [Member(user.id)],
        )
        mine = backend.create_group(tenant, group_document("mine"), [])
        assert_raises(
            InvalidValue,
            "replace_group must raise InvalidValue for a member of another tenant",
            backend.replace_group,
            tenant,
            mine.id,
            group_document("mine"),
            [Member(user.id)],
        )
        assert_raises(
            InvalidValue,
            "create_group must raise InvalidValue for another tenant's group as member",
            backend.create_group,
            tenant,
            group_document("g2"),
            [Member(group.id, "Group")],
        )
        assert backend.list_groups(tenant, query()).total_results == 1, "refused group writes must write nothing"
