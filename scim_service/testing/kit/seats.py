"""Seat counting under SeatPolicy.ALL and SeatPolicy.ACTIVE, and the limit on creates and reactivations."""

from __future__ import annotations

from typing import Any

from scim_service.backend import Backend
from scim_service.errors import NotFound, SeatLimitReached
from scim_service.model import SeatPolicy, Tenant
from scim_service.testing.data import user_document
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import all_users, assert_raises

__all__ = ["SeatTests"]


class SeatTests(KitBase):
    """The seat limit under SeatPolicy.ALL and SeatPolicy.ACTIVE, and count_seats."""

    def test_all_policy_counts_every_record(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(max_seats=10, seat_policy=SeatPolicy.ALL)
        backend.create_user(tenant, user_document("active"))
        backend.create_user(tenant, user_document("inactive", active=False))
        gone = backend.create_user(tenant, user_document("gone"))
        backend.delete_user(tenant, gone.id, hard=False)
        assert backend.count_seats(tenant) == 3, (
            "under SeatPolicy.ALL count_seats must count every record: active, inactive and soft-deleted"
        )
        hard = backend.create_user(tenant, user_document("hard"))
        backend.delete_user(tenant, hard.id, hard=True)
        assert backend.count_seats(tenant) == 3, "a hard-deleted record must not hold a seat"

    def test_active_policy_counts_only_active_users(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(max_seats=10, seat_policy=SeatPolicy.ACTIVE)
        backend.create_user(tenant, user_document("active"))
        backend.create_user(tenant, user_document("inactive", active=False))
        gone = backend.create_user(tenant, user_document("gone"))
        backend.delete_user(tenant, gone.id, hard=False)
        assert backend.count_seats(tenant) == 1, (
            "under SeatPolicy.ACTIVE count_seats must count only active, not deleted users"
        )

    def test_all_policy_refuses_create_beyond_limit(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(max_seats=2, seat_policy=SeatPolicy.ALL)
        backend.create_user(tenant, user_document("one"))
        backend.create_user(tenant, user_document("two", active=False))
        for active in (True, False):
            assert_raises(
                SeatLimitReached,
                f"under SeatPolicy.ALL create_user(active={active}) must raise SeatLimitReached in a full tenant",
                backend.create_user,
                tenant,
                user_document(f"three-{active}", active=active),
            )
        assert len(all_users(backend, tenant)) == 2, "a create refused with SeatLimitReached must write nothing"

    def test_all_policy_frees_seats_only_by_removal(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(max_seats=1, seat_policy=SeatPolicy.ALL)
        one = backend.create_user(tenant, user_document("one"))
        backend.replace_user(tenant, one.id, user_document("one", active=False))
        assert_raises(
            SeatLimitReached,
            "under SeatPolicy.ALL deactivation must not free a seat",
            backend.create_user,
            tenant,
            user_document("two"),
        )
        backend.delete_user(tenant, one.id, hard=False)
        assert_raises(
            SeatLimitReached,
            "under SeatPolicy.ALL a soft-deleted record must keep its seat",
            backend.create_user,
            tenant,
            user_document("two"),
        )
        assert backend.remove_inactive_users(tenant) == [one.id], "remove_inactive_users must remove the record"
        assert backend.create_user(tenant, user_document("two")).id, "remove_inactive_users must free the seat"

    def test_all_policy_reactivation_needs_no_new_seat(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(max_seats=1, seat_policy=SeatPolicy.ALL)
        one = backend.create_user(tenant, user_document("one"))
        backend.delete_user(tenant, one.id, hard=False)
        back = backend.replace_user(tenant, one.id, user_document("one"), undelete=True)
        assert back.active and not back.deleted, (
            "under SeatPolicy.ALL replace_user(undelete=True) of a full tenant's own deleted record must succeed"
        )

    def test_active_policy_refuses_active_create_beyond_limit(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)
        backend.create_user(tenant, user_document("one"))
        assert_raises(
            SeatLimitReached,
            "under SeatPolicy.ACTIVE create_user of an active user must raise SeatLimitReached when the tenant is full",
            backend.create_user,
            tenant,
            user_document("two"),
        )
        inactive = backend.create_user(tenant, user_document("three", active=False))
        assert inactive.id, "under SeatPolicy.ACTIVE an inactive user holds no seat: its create must succeed when full"
        assert backend.count_seats(tenant) == 1, "a refused create must not change count_seats"

    def test_active_policy_deactivation_frees_a_seat(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)
        one = backend.create_user(tenant, user_document("one"))
        backend.replace_user(tenant, one.id, user_document("one", active=False))
        assert backend.count_seats(tenant) == 0, "under SeatPolicy.ACTIVE deactivation must free the seat"
        assert backend.create_user(tenant, user_document("two")).id, (
            "under SeatPolicy.ACTIVE a seat freed by deactivation must be usable"
        )

    def test_active_policy_refuses_reactivation_beyond_limit(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)
        backend.create_user(tenant, user_document("one"))
        sleeper = backend.create_user(tenant, user_document("two", active=False))
        assert_raises(
            SeatLimitReached,
            "under SeatPolicy.ACTIVE replace_user activating a user must raise SeatLimitReached in a full tenant",
            backend.replace_user,
            tenant,
            sleeper.id,
            user_document("two", active=True),
        )
        assert backend.get_user(tenant, sleeper.id).active is False, "a refused reactivation must write nothing"
        same = backend.replace_user(tenant, sleeper.id, user_document("two", active=False, title="x"))
        assert same.data.get("title") == "x", "an update that keeps a user inactive needs no seat"

    def test_active_policy_refuses_undelete_beyond_limit(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)
        gone = backend.create_user(tenant, user_document("gone"))
        backend.delete_user(tenant, gone.id, hard=False)
        backend.create_user(tenant, user_document("new"))
        assert_raises(
            SeatLimitReached,
            "under SeatPolicy.ACTIVE replace_user(undelete=True) must raise SeatLimitReached when the tenant is full",
            backend.replace_user,
            tenant,
            gone.id,
            user_document("gone"),
            undelete=True,
        )
        assert_raises(
            NotFound,
            "a refused undelete must write nothing: the user stays soft-deleted",
            backend.get_user,
            tenant,
            gone.id,
        )

    def test_unlimited_tenant_has_no_seat_limit(self, backend: Backend, tenant: Tenant) -> None:
        for i in range(5):
            backend.create_user(tenant, user_document(f"u{i}"))
        assert backend.count_seats(tenant) == 5, "count_seats must count the records of a tenant without max_seats"
