"""The product rules backends share (scim_service/rules.py), and two backends that call them answering alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scim_backend_memory.backend import MemoryBackend
from scim_sql.backend import SqlBackend

from scim_service import rules
from scim_service.backend import Backend
from scim_service.errors import InvalidValue, SeatLimitReached, UniquenessConflict, VersionMismatch
from scim_service.model import GroupChanges, MatchPolicy, Member, SeatPolicy, Tenant, UserRecord
from scim_service.sqlengine import make_engine

ACME = Tenant("t1", "acme", max_seats=3)


def doc(user_name: str, email: str | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"userName": user_name, "active": True, **extra}
    if email:
        data["emails"] = [{"value": email, "primary": True}]
    return data


# -- uniqueness -----------------------------------------------------------------------------------------


def test_user_keys_follow_the_match_policy() -> None:
    data = doc("Ann", "Ann@Example.com")
    assert rules.user_keys(ACME, data) == rules.UserKeys("Ann", "ann@example.com")
    assert rules.user_keys(ACME, data).user_name_lower == "ann"
    by_name = Tenant("t2", "b", match_policy=MatchPolicy.USERNAME)
    assert rules.user_keys(by_name, data) == rules.UserKeys("Ann", None)
    for bad in ({}, {"userName": ""}, {"userName": "  "}, {"userName": 3}):
        with pytest.raises(InvalidValue, match="userName is required"):
            rules.user_keys(ACME, bad)


def test_the_username_holder_is_reported_first() -> None:
    keys = rules.UserKeys("Ann", "ann@example.com")
    by_email = rules.Holder("e1", "someone", "ann@example.com")
    by_name = rules.Holder("n1", "ANN", "other@example.com")
    conflict = rules.uniqueness_conflict(keys, [by_email, by_name])
    assert conflict is not None and conflict.existing_id == "n1"
    assert conflict.detail == (
        "userName 'Ann' is already taken in this organization "
        "(compared ignoring case, Unicode form and surrounding spaces)"
    )
    assert (conflict.status, conflict.scim_type) == (409, "uniqueness")


def test_an_email_holder_is_reported_when_no_one_has_the_username() -> None:
    keys = rules.UserKeys("Ann", "ann@example.com")
    conflict = rules.uniqueness_conflict(keys, [rules.Holder("e1", "someone", "ANN@example.com")])
    assert conflict is not None and conflict.existing_id == "e1"
    assert "primary email 'ann@example.com' already belongs to another user" in conflict.detail
    # Without an email key (MatchPolicy.USERNAME), an email holder is no conflict.
    assert rules.uniqueness_conflict(rules.UserKeys("Ann"), [rules.Holder("e1", "x", "ann@example.com")]) is None
    # A holder that matches neither key (a store that over-reports) is no conflict either.
    assert rules.uniqueness_conflict(keys, [rules.Holder("z", "zed", None)]) is None
    assert rules.uniqueness_conflict(keys, []) is None


def test_the_other_conflict_messages() -> None:
    assert rules.duplicate_user_name("ann").detail == "userName 'ann' is already taken in this organization"
    assert rules.group_name_conflict("Ops").status == 409
    assert rules.group_name_conflict("Ops").detail == "A group named 'Ops' already exists in this organization"
    assert rules.group_name_conflict("Ops", "by cn").detail.endswith("organization (by cn)")
    existing = UserRecord("u1", {"userName": "ANN"}, created=None, last_modified=None, version="1")  # type: ignore[arg-type]
    assert "userName 'ann' already exists" in rules.active_match_conflict(existing, {"userName": "ann"}).detail
    by_email = rules.active_match_conflict(existing, {"userName": "other"})
    assert "same primary email" in by_email.detail and by_email.existing_id is None


# -- seats ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "change", "expected"),
    [
        (SeatPolicy.ALL, {"active": True}, True),  # a create
        (SeatPolicy.ALL, {"active": False}, True),  # an inactive record holds a seat too
        (SeatPolicy.ALL, {"active": True, "was_active": False}, False),  # reactivation: it held one
        (SeatPolicy.ALL, {"active": True, "was_active": False, "was_deleted": True}, False),  # undelete
        (SeatPolicy.ACTIVE, {"active": True}, True),
        (SeatPolicy.ACTIVE, {"active": False}, False),  # an inactive create takes no seat
        (SeatPolicy.ACTIVE, {"active": True, "was_active": False}, True),  # reactivation takes one
        (SeatPolicy.ACTIVE, {"active": True, "was_active": True, "was_deleted": True}, True),  # undelete
        (SeatPolicy.ACTIVE, {"active": True, "was_active": True}, False),  # already held
        (SeatPolicy.ACTIVE, {"active": False, "was_active": True}, False),  # deactivation frees one
        (SeatPolicy.ACTIVE, {"active": True, "deleted": True, "was_active": False}, False),
    ],
)
def test_which_writes_need_seat_admission(policy: SeatPolicy, change: dict[str, Any], expected: bool) -> None:
    assert rules.needs_seat_check(Tenant("t", "t", max_seats=5, seat_policy=policy), **change) is expected
    # Without a limit, no write needs it.
    assert rules.needs_seat_check(Tenant("t", "t", max_seats=None, seat_policy=policy), **change) is False


def test_seat_admission() -> None:
    rules.admit_seat(ACME, 0)
    rules.admit_seat(ACME, 2)
    for used in (3, 4):
        with pytest.raises(SeatLimitReached, match="all of its 3 seats") as caught:
            rules.admit_seat(ACME, used)
        assert caught.value.status == 403
    rules.admit_seat(Tenant("t", "t", max_seats=None), 10**6)


def test_document_active() -> None:
    assert rules.document_active({}) is True
    assert rules.document_active({"active": False}) is False
    with pytest.raises(InvalidValue, match="active must be a boolean"):
        rules.document_active({"active": "False"})


# -- members --------------------------------------------------------------------------------------------


def test_check_members_deduplicates_and_refuses_what_the_backend_cannot_hold() -> None:
    members = [Member("a", "user", "first"), Member("b"), Member("a", "User", "second"), Member("c", "USER")]
    assert rules.check_members(members) == [Member("a", "User", "first"), Member("b", "User"), Member("c", "User")]
    with pytest.raises(InvalidValue, match="has type 'Group': the sql backend only takes users"):
        rules.check_members([Member("g", "Group")], backend="sql")
    assert rules.check_members([Member("g", "group")], nested_groups=True) == [Member("g", "Group")]
    with pytest.raises(InvalidValue, match="type 'Robot'"):
        rules.check_members([Member("r", "Robot")], nested_groups=True)
    longest = "x" * rules.MAX_MEMBER_DISPLAY
    assert rules.check_members([Member("a", display=longest)])[0].display == longest
    with pytest.raises(InvalidValue, match="display is longer than 512 characters"):
        rules.check_members([Member("a", display=longest + "x")])
    # Only the first mention of a member counts, for its display too.
    assert rules.check_members([Member("a"), Member("a", display=longest + "x")]) == [Member("a", "User")]


def test_member_displays() -> None:
    assert rules.unknown_members(["x", "y"]).detail == (
        "These group members are not users of this organization: 'x', 'y'"
    )
    assert rules.member_display("Given", "Display", "user") == "Given"
    assert rules.member_display("", "Display", "user") == ""  # what the client gave, even empty
    assert rules.member_display(None, "Display", "user") == "Display"
    assert rules.member_display(None, None, "user") == "user"
    assert rules.member_display(None, "", "") is None
    assert rules.default_member_display("", "user") == "user"


# -- versions -------------------------------------------------------------------------------------------


def test_versions() -> None:
    rules.check_version(None, 7, "user")
    rules.check_version("7", 7, "user")
    rules.check_version("7", "7", "group")
    with pytest.raises(VersionMismatch, match="The group is at version 8, not '7'") as caught:
        rules.check_version("7", 8, "group")
    assert caught.value.status == 412
    rules.check_if_match("3", None)
    rules.check_if_match("3", "*")
    rules.check_if_match("3", "3")
    with pytest.raises(VersionMismatch):
        rules.check_if_match("3", "2")


# -- the backends that call them answer alike ------------------------------------------------------------


@pytest.fixture(params=["sql", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sql":
        made: Backend = SqlBackend(make_engine(f"sqlite:///{tmp_path}/rules.db", {}), owns_engine=True)
        made.migrate()
    else:
        made = MemoryBackend()
    yield made
    made.close()


def test_backends_report_what_the_rules_say(backend: Backend) -> None:
    tenant = Tenant("t-rules", "rules", max_seats=2, seat_policy=SeatPolicy.ACTIVE)
    ann = backend.create_user(tenant, doc("ann", "ann@example.com", displayName="Ann A"))
    with pytest.raises(UniquenessConflict) as by_name:
        backend.create_user(tenant, doc("ANN"))
    assert (
        by_name.value.detail == rules.uniqueness_conflict(rules.UserKeys("ANN"), [rules.Holder(ann.id, "ann")]).detail
    )  # type: ignore[union-attr]
    assert by_name.value.existing_id == ann.id
    with pytest.raises(UniquenessConflict) as by_email:
        backend.create_user(tenant, doc("other", "ANN@example.com"))
    assert by_email.value.detail == (
        "The primary email 'ann@example.com' already belongs to another user of this organization"
    )
    bob = backend.create_user(tenant, doc("bob", active=False))  # inactive: takes no seat under ACTIVE
    backend.create_user(tenant, doc("cid"))
    with pytest.raises(SeatLimitReached):
        backend.replace_user(tenant, bob.id, doc("bob"))  # a reactivation takes a seat: refused at 2
    with pytest.raises(VersionMismatch, match="The user is at version 1, not '9' as the precondition requires"):
        backend.replace_user(tenant, bob.id, doc("bob", active=False), expected_version="9")
    with pytest.raises(InvalidValue, match=f"has type 'Group': the {backend.name} backend only takes users"):
        backend.create_group(tenant, {"displayName": "g"}, [Member(ann.id, "Group")])
    with pytest.raises(InvalidValue, match="These group members are not users of this organization: 'ghost'"):
        backend.create_group(tenant, {"displayName": "g"}, [Member(ann.id), Member("ghost")])
    group = backend.create_group(tenant, {"displayName": "g"}, [Member(ann.id), Member(bob.id, display="Bobby")])
    displays = {m.value: m.display for m in backend.get_group(tenant, group.id).members or ()}
    assert displays == {ann.id: "Ann A", bob.id: "Bobby"}  # computed, and the client's kept
    backend.replace_user(tenant, ann.id, doc("ann", "ann@example.com"))  # no displayName any more
    displays = {m.value: m.display for m in backend.get_group(tenant, group.id).members or ()}
    assert displays == {ann.id: "ann", bob.id: "Bobby"}  # the computed display follows the user
    with pytest.raises(InvalidValue, match="display is longer than 512"):
        backend.patch_group(tenant, group.id, GroupChanges(add=(Member(ann.id, display="x" * 513),)))
