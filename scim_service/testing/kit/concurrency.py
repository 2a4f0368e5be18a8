"""Racing writers: exactly one wins where a rule allows one, and no update is lost."""

from __future__ import annotations

from typing import Any

from scim_service.backend import Backend
from scim_service.errors import SeatLimitReached, UniquenessConflict, VersionMismatch
from scim_service.model import GroupChanges, GroupRecord, Member, SeatPolicy, Tenant, UserRecord
from scim_service.testing.data import group_document, query, user_document
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import all_users, member_ids, race
from scim_service.testing.kit.requirements import requires

__all__ = ["ConcurrencyTests"]


class ConcurrencyTests(KitBase):
    """The rules that must hold under concurrency: exactly one of racing writers wins.

    A backend that cannot be called from several threads may opt out only by declaring
    ``capabilities.concurrency=False``; the tests then skip saying so.
    """

    THREADS = 8

    @requires.concurrency
    def test_racing_creates_of_one_username_one_wins(self, backend: Backend, tenant: Tenant) -> None:
        results = race(
            self.THREADS, lambda i: backend.create_user(tenant, user_document("Racer" if i % 2 else "racer"))
        )
        winners = [r for r in results if isinstance(r, UserRecord)]
        others = [r for r in results if not isinstance(r, UserRecord)]
        assert len(winners) == 1, (
            f"concurrent create_user of one userName: exactly one must succeed, {len(winners)} did"
        )
        assert all(isinstance(r, UniquenessConflict) for r in others), (
            f"the losers of a userName race must get UniquenessConflict, got {[type(r).__name__ for r in others]}"
        )
        assert len(all_users(backend, tenant)) == 1, "a userName race must store exactly one user"

    @requires.concurrency
    def test_racing_creates_of_one_group_name_one_wins(self, backend: Backend, tenant: Tenant) -> None:
        results = race(
            self.THREADS, lambda i: backend.create_group(tenant, group_document("Admins" if i % 2 else "ADMINS"), [])
        )
        winners = [r for r in results if isinstance(r, GroupRecord)]
        others = [r for r in results if not isinstance(r, GroupRecord)]
        assert len(winners) == 1, (
            f"concurrent create_group of one displayName: exactly one must succeed, {len(winners)} did"
        )
        assert all(isinstance(r, UniquenessConflict) for r in others), (
            f"the losers of a group name race must get UniquenessConflict, got {[type(r).__name__ for r in others]}"
        )
        assert len(backend.list_groups(tenant, query()).resources) == 1, "a group name race must store one group"

    @requires.concurrency
    def test_racing_creates_for_the_last_seat_one_wins(self, backend: Backend, make_tenant: Any) -> None:
        for policy in (SeatPolicy.ALL, SeatPolicy.ACTIVE):
            tenant = make_tenant(max_seats=2, seat_policy=policy)
            backend.create_user(tenant, user_document("first"))
            results = race(self.THREADS, lambda i, t=tenant: backend.create_user(t, user_document(f"racer-{i}")))
            winners = [r for r in results if isinstance(r, UserRecord)]
            assert len(winners) == 1, (
                f"concurrent create_user for the last seat ({policy.value}): exactly one must win, {len(winners)} did"
            )
            assert all(isinstance(r, SeatLimitReached) for r in results if r not in winners), (
                "the losers of a seat race must get SeatLimitReached"
            )
            assert backend.count_seats(tenant) == 2, "a seat race must never exceed max_seats"

    @requires.concurrency
    def test_racing_reactivations_for_the_last_seat_one_wins(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)
        sleepers = [backend.create_user(tenant, user_document(f"s{i}", active=False)) for i in range(self.THREADS)]
        results = race(
            self.THREADS,
            lambda i: backend.replace_user(tenant, sleepers[i].id, user_document(f"s{i}", active=True)),
        )
        winners = [r for r in results if isinstance(r, UserRecord)]
        assert len(winners) == 1, (
            f"concurrent reactivations for the last seat (SeatPolicy.ACTIVE): exactly one must win, {len(winners)} did"
        )
        assert backend.count_seats(tenant) == 1, "a reactivation race must never exceed max_seats"

    @requires.concurrency
    @requires.etag
    def test_racing_replaces_with_one_version_one_wins(self, backend: Backend, tenant: Tenant) -> None:
        user = backend.create_user(tenant, user_document("v"))
        results = race(
            self.THREADS,
            lambda i: backend.replace_user(
                tenant, user.id, user_document("v", title=f"t{i}"), expected_version=user.version
            ),
        )
        winners = [r for r in results if isinstance(r, UserRecord)]
        assert len(winners) == 1, (
            f"concurrent replace_user with the same expected_version: exactly one must succeed, {len(winners)} did"
        )
        assert all(isinstance(r, VersionMismatch) for r in results if r not in winners), (
            "the losers of a version race must get VersionMismatch"
        )
        assert backend.get_user(tenant, user.id).data.get("title") == winners[0].data.get("title"), (
            "the stored user must be the winner's write"
        )

    @requires.concurrency
    def test_racing_member_additions_are_all_kept(self, backend: Backend, tenant: Tenant) -> None:
        people = [backend.create_user(tenant, user_document(f"m{i}")) for i in range(self.THREADS)]
        group = backend.create_group(tenant, group_document("g"), [])
        results = race(
            self.THREADS,
            lambda i: backend.patch_group(tenant, group.id, GroupChanges(add=(Member(people[i].id),))),
        )
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, f"concurrent patch_group additions without expected_version must all succeed: {errors!r}"
        assert member_ids(backend.get_group(tenant, group.id)) == {p.id for p in people}, (
            "concurrent membership additions must all be kept (no lost update)"
        )
