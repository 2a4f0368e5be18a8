"""userName, the primary email under MatchPolicy.EMAIL, and a group's displayName are unique per tenant,
compared by :func:`scim_service.rules.comparison_key` (case, Unicode form, surrounding spaces and
zero-width characters ignored), and a filter's ``eq`` on them finds the holder of a look-alike."""

from __future__ import annotations

import json
from typing import Any

from scim_service.backend import Backend
from scim_service.errors import UniquenessConflict
from scim_service.model import GroupChanges, MatchPolicy, Tenant
from scim_service.testing.data import group_document, group_filter, query, user_document, user_filter
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import all_users, assert_raises

__all__ = ["LOOK_ALIKES", "UniquenessTests"]

LOOK_ALIKES: list[tuple[str, str, str]] = [
    # (what differs, the name stored, a name with the same comparison key)
    ("NFC / NFD", "caf\u00e9", "cafe\u0301"),
    ("a trailing space", "bob", "bob "),
    ("a trailing NBSP", "nbsp", "nbsp\u00a0"),
    ("a leading zero-width space", "zwsp", "\u200bzwsp"),
    ("a zero-width space inside", "zw.in", "zw\u200b.in"),
    ("fullwidth letters", "full", "\uff46\uff55\uff4c\uff4c"),
    ("a ligature", "\ufb01nance", "FINANCE"),
    ("casefolding", "stra\u00dfe", "STRASSE"),
]
"""Pairs of names that are one name under the uniqueness rule (docs/rules.md)."""


class UniquenessTests(KitBase):
    """userName (and primary email under MatchPolicy.EMAIL) is unique per tenant, by its comparison key."""

    # -- look-alikes: one comparison key (rules.comparison_key) ---------------------------------------

    def test_create_user_refuses_a_look_alike_username(self, backend: Backend, tenant: Tenant) -> None:
        for what, stored, alike in LOOK_ALIKES:
            holder = backend.create_user(tenant, user_document(stored))
            assert holder.user_name == stored, f"the userName is stored as sent ({what})"
            err = assert_raises(
                UniquenessConflict,
                f"create_user must refuse a userName that differs only by {what} ({stored!r} / {alike!r})",
                backend.create_user,
                tenant,
                user_document(alike),
            )
            assert err.existing_id == holder.id, f"existing_id must name the holder ({what})"
        assert len(all_users(backend, tenant)) == len(LOOK_ALIKES), "a refused create_user must write nothing"

    def test_a_username_eq_filter_finds_the_holder_of_a_look_alike(self, backend: Backend, tenant: Tenant) -> None:
        holders = {stored: backend.create_user(tenant, user_document(stored)).id for _w, stored, _a in LOOK_ALIKES}
        for what, stored, alike in LOOK_ALIKES:
            for text in (f"userName eq {json.dumps(alike)}", f"userName eq {json.dumps(stored)}"):
                found = backend.list_users(tenant, query(filter=user_filter(text))).resources
                assert [u.id for u in found] == [holders[stored]], (
                    f"{text} must find the user holding {stored!r}, the name a create was refused for ({what})"
                )
            text = f"not (userName eq {json.dumps(alike)})"
            found = backend.list_users(tenant, query(filter=user_filter(text))).resources
            assert holders[stored] not in {u.id for u in found}, f"{text}: ne is not eq ({what})"

    def test_a_look_alike_holder_refuses_the_plain_name(self, backend: Backend, tenant: Tenant) -> None:
        """The other way round: the stored name has the zero-width character, the ligature, the "ß"."""
        for what, plain, alike in LOOK_ALIKES:
            holder = backend.create_user(tenant, user_document(alike))
            assert holder.user_name == alike, f"the userName is stored as sent ({what})"
            err = assert_raises(
                UniquenessConflict,
                f"create_user must refuse {plain!r} when {alike!r} holds it (they differ by {what})",
                backend.create_user,
                tenant,
                user_document(plain),
            )
            assert err.existing_id == holder.id, f"existing_id must name the holder ({what})"
            text = f"userName eq {json.dumps(plain)}"
            found = backend.list_users(tenant, query(filter=user_filter(text))).resources
            assert [u.id for u in found] == [holder.id], f"{text} must find {alike!r} ({what})"
            group = backend.create_group(tenant, group_document(alike), [])
            assert_raises(
                UniquenessConflict,
                f"create_group must refuse {plain!r} when a group named {alike!r} exists ({what})",
                backend.create_group,
                tenant,
                group_document(plain),
                [],
            )
            text = f"displayName eq {json.dumps(plain)}"
            found_groups = backend.list_groups(tenant, query(filter=group_filter(text))).resources
            assert [g.id for g in found_groups] == [group.id], f"{text} must find the group {alike!r} ({what})"

    def test_create_user_refuses_a_look_alike_primary_email(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(match_policy=MatchPolicy.EMAIL)
        # The stored email is ASCII: a directory's mail attribute (IA5) takes nothing else.
        holder = backend.create_user(tenant, user_document("one", email="J.Doe@Example.com"))
        err = assert_raises(
            UniquenessConflict,
            "create_user must refuse a primary email whose comparison key is taken under MatchPolicy.EMAIL",
            backend.create_user,
            tenant,
            user_document("two", email="\uff4a.doe@example.com\u00a0"),
        )
        assert err.existing_id == holder.id, "UniquenessConflict.existing_id must name the holder of the email"
        for text in (
            'emails.value eq "j.doe@example.com\u200b"',
            'emails[value eq " J.DOE@EXAMPLE.COM"]',
            'emails[type eq "work" and value eq "j.doe@example.com"]',
        ):
            found = backend.list_users(tenant, query(filter=user_filter(text))).resources
            assert [u.id for u in found] == [holder.id], f"{text} must find the holder of the look-alike email"

    def test_create_group_refuses_a_look_alike_display_name(self, backend: Backend, tenant: Tenant) -> None:
        for what, stored, alike in LOOK_ALIKES:
            holder = backend.create_group(tenant, group_document(stored), [])
            assert holder.display_name == stored, f"the displayName is stored as sent ({what})"
            assert_raises(
                UniquenessConflict,
                f"create_group must refuse a displayName that differs only by {what} ({stored!r} / {alike!r})",
                backend.create_group,
                tenant,
                group_document(alike),
                [],
            )
            text = f"displayName eq {json.dumps(alike)}"
            found = backend.list_groups(tenant, query(filter=group_filter(text))).resources
            assert [g.id for g in found] == [holder.id], f"{text} must find the group holding {stored!r} ({what})"

    def test_create_user_refuses_a_taken_username(self, backend: Backend, tenant: Tenant) -> None:
        first = backend.create_user(tenant, user_document("alice"))
        err = assert_raises(
            UniquenessConflict,
            "create_user must refuse a userName that is already taken",
            backend.create_user,
            tenant,
            user_document("alice"),
        )
        assert err.existing_id == first.id, "UniquenessConflict.existing_id must name the record holding the userName"
        assert len(all_users(backend, tenant)) == 1, "a refused create_user must write nothing"

    def test_create_user_refuses_a_username_differing_only_in_case(self, backend: Backend, tenant: Tenant) -> None:
        first = backend.create_user(tenant, user_document("Alice.Smith"))
        err = assert_raises(
            UniquenessConflict,
            "create_user must refuse a userName that differs only in case",
            backend.create_user,
            tenant,
            user_document("aLICE.sMITH"),
        )
        assert err.existing_id == first.id, "UniquenessConflict.existing_id must name the record holding the userName"
        assert len(all_users(backend, tenant)) == 1, "a refused create_user must write nothing"

    def test_create_user_refuses_the_username_of_an_inactive_user(self, backend: Backend, tenant: Tenant) -> None:
        first = backend.create_user(tenant, user_document("inactive", active=False))
        err = assert_raises(
            UniquenessConflict,
            "create_user must refuse the userName of an inactive user",
            backend.create_user,
            tenant,
            user_document("INACTIVE"),
        )
        assert err.existing_id == first.id, "UniquenessConflict.existing_id must name the inactive holder"

    def test_create_user_refuses_the_username_of_a_soft_deleted_user(self, backend: Backend, tenant: Tenant) -> None:
        first = backend.create_user(tenant, user_document("gone"))
        backend.delete_user(tenant, first.id, hard=False)
        err = assert_raises(
            UniquenessConflict,
            "create_user must refuse the userName of a soft-deleted user",
            backend.create_user,
            tenant,
            user_document("Gone"),
        )
        assert err.existing_id == first.id, (
            "UniquenessConflict.existing_id must name the soft-deleted holder (the lifecycle reactivates it)"
        )

    def test_create_user_refuses_a_primary_email_under_email_policy(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(match_policy=MatchPolicy.EMAIL)
        first = backend.create_user(tenant, user_document("one", email="Same@Example.com"))
        err = assert_raises(
            UniquenessConflict,
            "create_user must refuse a primary email already used (case-insensitively) under MatchPolicy.EMAIL",
            backend.create_user,
            tenant,
            user_document("two", email="same@EXAMPLE.com"),
        )
        assert err.existing_id == first.id, "UniquenessConflict.existing_id must name the holder of the email"
        assert len(all_users(backend, tenant)) == 1, "a refused create_user must write nothing"

    def test_create_user_refuses_email_of_inactive_and_soft_deleted(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(match_policy=MatchPolicy.EMAIL)
        inactive = backend.create_user(tenant, user_document("i", email="i@example.com", active=False))
        deleted = backend.create_user(tenant, user_document("d", email="d@example.com"))
        backend.delete_user(tenant, deleted.id, hard=False)
        for holder, email in ((inactive, "I@example.com"), (deleted, "D@example.com")):
            err = assert_raises(
                UniquenessConflict,
                "create_user must refuse the primary email of an inactive or soft-deleted user under MatchPolicy.EMAIL",
                backend.create_user,
                tenant,
                user_document(f"new-{email}", email=email),
            )
            assert err.existing_id == holder.id, "UniquenessConflict.existing_id must name the holder of the email"

    def test_primary_email_is_the_one_marked_primary_else_the_first(self, backend: Backend, tenant: Tenant) -> None:
        marked = user_document("a")
        marked["emails"] = [{"value": "secondary@example.com"}, {"value": "primary@example.com", "primary": True}]
        backend.create_user(tenant, marked)
        unmarked = user_document("b")
        unmarked["emails"] = [{"value": "first@example.com"}, {"value": "second@example.com"}]
        backend.create_user(tenant, unmarked)
        backend.create_user(tenant, user_document("c", email="secondary@example.com"))
        backend.create_user(tenant, user_document("d", email="second@example.com"))
        assert_raises(
            UniquenessConflict,
            "the primary email is the emails value marked primary: create_user must refuse it under MatchPolicy.EMAIL",
            backend.create_user,
            tenant,
            user_document("e", email="PRIMARY@example.com"),
        )
        assert_raises(
            UniquenessConflict,
            "without a primary mark the first email is the primary one: create_user must refuse it",
            backend.create_user,
            tenant,
            user_document("f", email="first@example.com"),
        )

    def test_email_is_not_a_key_under_username_policy(self, backend: Backend, make_tenant: Any) -> None:
        tenant = make_tenant(match_policy=MatchPolicy.USERNAME)
        backend.create_user(tenant, user_document("one", email="same@example.com"))
        second = backend.create_user(tenant, user_document("two", email="same@example.com"))
        assert second.id, "under MatchPolicy.USERNAME create_user must accept a primary email another user has"
        third = backend.create_user(tenant, user_document("three", email="three@example.com"))
        moved = backend.replace_user(tenant, third.id, user_document("three", email="SAME@example.com"))
        assert moved.id == third.id, "under MatchPolicy.USERNAME replace_user must accept a primary email another has"

    def test_replace_user_refuses_another_records_username(self, backend: Backend, tenant: Tenant) -> None:
        alice = backend.create_user(tenant, user_document("alice"))
        bob = backend.create_user(tenant, user_document("bob"))
        err = assert_raises(
            UniquenessConflict,
            "replace_user must refuse a userName (compared case-insensitively) of another record",
            backend.replace_user,
            tenant,
            bob.id,
            user_document("ALICE", title="x"),
        )
        assert err.existing_id == alice.id, "UniquenessConflict.existing_id must name the other record"
        stored = backend.get_user(tenant, bob.id)
        assert stored.user_name == "bob" and "title" not in stored.data, "a refused replace_user must write nothing"

    def test_replace_user_refuses_another_records_email_under_email_policy(
        self, backend: Backend, tenant: Tenant
    ) -> None:
        alice = backend.create_user(tenant, user_document("alice", email="alice@example.com"))
        bob = backend.create_user(tenant, user_document("bob", email="bob@example.com"))
        err = assert_raises(
            UniquenessConflict,
            "replace_user must refuse the primary email of another record under MatchPolicy.EMAIL",
            backend.replace_user,
            tenant,
            bob.id,
            user_document("bob", email="Alice@Example.com"),
        )
        assert err.existing_id == alice.id, "UniquenessConflict.existing_id must name the other record"

    def test_replace_user_refuses_username_of_soft_deleted_record(self, backend: Backend, tenant: Tenant) -> None:
        gone = backend.create_user(tenant, user_document("gone"))
        backend.delete_user(tenant, gone.id, hard=False)
        bob = backend.create_user(tenant, user_document("bob"))
        assert_raises(
            UniquenessConflict,
            "replace_user must refuse the userName of a soft-deleted record (it still holds it)",
            backend.replace_user,
            tenant,
            bob.id,
            user_document("GONE"),
        )

    # -- group displayName ---------------------------------------------------------------------------

    def test_create_group_refuses_a_taken_display_name_in_any_case(self, backend: Backend, tenant: Tenant) -> None:
        backend.create_group(tenant, group_document("Engineering"), [])
        assert_raises(
            UniquenessConflict,
            "create_group must refuse a displayName another group of the tenant holds, compared case-insensitively",
            backend.create_group,
            tenant,
            group_document("ENGINEERING"),
            [],
        )
        names = [g.display_name for g in backend.list_groups(tenant, query()).resources]
        assert names == ["Engineering"], "a refused create_group must write nothing"

    def test_group_display_names_are_unique_per_tenant_only(self, backend: Backend, make_tenant: Any) -> None:
        first, second = make_tenant(), make_tenant()
        backend.create_group(first, group_document("Sales"), [])
        assert backend.create_group(second, group_document("Sales"), []).display_name == "Sales", (
            "another tenant's group may have the same displayName"
        )

    def test_renaming_a_group_onto_a_taken_name_is_refused(self, backend: Backend, tenant: Tenant) -> None:
        backend.create_group(tenant, group_document("Sales"), [])
        ops = backend.create_group(tenant, group_document("Ops"), [])
        assert_raises(
            UniquenessConflict,
            "replace_group must refuse a displayName another group of the tenant holds",
            backend.replace_group,
            tenant,
            ops.id,
            group_document("sales"),
            [],
        )
        assert_raises(
            UniquenessConflict,
            "patch_group must refuse a displayName another group of the tenant holds",
            backend.patch_group,
            tenant,
            ops.id,
            GroupChanges(data=group_document("SALES")),
        )
        assert backend.get_group(tenant, ops.id).display_name == "Ops", "a refused rename must write nothing"

    def test_a_group_may_keep_or_recase_its_own_name(self, backend: Backend, tenant: Tenant) -> None:
        ops = backend.create_group(tenant, group_document("Ops"), [])
        assert backend.replace_group(tenant, ops.id, group_document("Ops"), []).display_name == "Ops"
        renamed = backend.patch_group(tenant, ops.id, GroupChanges(data=group_document("OPS")))
        assert renamed.display_name == "OPS", "a group may change the case of its own displayName"
        backend.delete_group(tenant, ops.id)
        assert backend.create_group(tenant, group_document("ops"), []).display_name == "ops", (
            "a deleted group's displayName is free again"
        )
