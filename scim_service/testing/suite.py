"""The conformance suite: test mixins that check a :class:`~scim_service.backend.Backend` honours its contract.

A backend author provides one pytest fixture, ``backend`` (function scope: a fresh, migrated store,
or a shared one: every test works in tenants with fresh random ids), and subclasses the mixins::

    import pytest
    from scim_service.testing import BackendSuite

    @pytest.fixture
    def backend(tmp_path):
        backend = MyBackend.from_config({...})
        backend.migrate()
        yield backend
        backend.close()

    class TestMyBackend(BackendSuite):
        pass

The mixins define their own fixtures (``tenant``, ``other_tenant``, ``make_tenant``), so nothing else
needs enabling. Tests of a capability the backend declares it lacks skip with that reason. Every test
is named after the rule it checks and its failure message states that rule.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest

from scim_service.backend import Backend
from scim_service.errors import (
    InvalidCursor,
    InvalidFilter,
    InvalidValue,
    NotFound,
    SeatLimitReached,
    UniquenessConflict,
    VersionMismatch,
)
from scim_service.model import (
    ENTERPRISE_SCHEMA,
    GroupChanges,
    GroupRecord,
    MatchPolicy,
    Member,
    SeatPolicy,
    Tenant,
    UserRecord,
)
from scim_service.query import evaluator
from scim_service.query.ast import And, AttrPath, Compare, Filter, ListQuery, Not, Or, Present, ValuePath
from scim_service.testing.data import (
    aware,
    full_group_document,
    full_user_document,
    group_document,
    group_filter,
    group_sort,
    iso,
    new_tenant,
    plain,
    query,
    rendered_group,
    rendered_user,
    user_document,
    user_filter,
    user_sort,
)

__all__ = [
    "BackendSuite",
    "ConcurrencyTests",
    "CursorTests",
    "FilterTests",
    "GroupTests",
    "KitBase",
    "MembershipTests",
    "PagingTests",
    "SeatTests",
    "SoftDeleteTests",
    "SortTests",
    "TenantIsolationTests",
    "UniquenessTests",
    "UserCrudTests",
    "VersionTests",
]

E = TypeVar("E", bound=BaseException)
ENT = ENTERPRISE_SCHEMA


# -- helpers -------------------------------------------------------------------------------------


def expect_error(error: type[E], rule: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> E:
    """Call ``call`` and return the ``error`` it raises; fail the test with ``rule`` otherwise."""
    try:
        result = call(*args, **kwargs)
    except error as exc:
        return exc
    except Exception as exc:
        pytest.fail(f"{rule} (expected {error.__name__}, got {type(exc).__name__}: {exc})")
    text = repr(result)
    pytest.fail(f"{rule} (expected {error.__name__}, but {call.__name__} returned {text[:200]})")


def require(backend: Backend, capability: str) -> None:
    """Skip the test unless the backend declares ``capability``."""
    if not getattr(backend.capabilities, capability):
        pytest.skip(f"{type(backend).__name__} declares capabilities.{capability}=False")


def user_ids(records: list[UserRecord] | list[GroupRecord]) -> list[str]:
    """The ids of a page's resources, in order."""
    return [r.id for r in records]


def member_ids(group: GroupRecord) -> set[str]:
    """The member ids of a group read with its members."""
    assert group.members is not None, "a group read with include_members=True must have members (not None)"
    return {m.value for m in group.members}


def group_ids_of(user: UserRecord) -> set[str]:
    """The ids of the groups a user record says it belongs to."""
    return {m.value for m in user.groups}


def all_users(backend: Backend, tenant: Tenant) -> list[UserRecord]:
    """Every visible user of the tenant (one big page)."""
    return backend.list_users(tenant, query()).resources


def race(n: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(i)`` in ``n`` threads released together; return each result or raised exception."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        try:
            return action(i)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def tick() -> None:
    """Let the clock move, so writes made one after another get distinct timestamps."""
    time.sleep(0.003)


def midpoint(a: datetime, b: datetime) -> datetime:
    """The instant halfway between two timestamps."""
    a, b = aware(a), aware(b)
    return a + (b - a) / 2


# -- declared limits of filters and sorts ---------------------------------------------------------

CORE_SCHEMA_PREFIX = "urn:ietf:params:scim:schemas:core:"


def path_key(path: AttrPath) -> str:
    """How ``capabilities.filter_operators`` and ``sort_attributes`` name a resolved path: ``attr`` or
    ``attr.subAttr``, prefixed with the schema URN and ``:`` for an extension attribute
    (``<enterprise urn>:manager.value``)."""
    if path.schema and not path.schema.lower().startswith(CORE_SCHEMA_PREFIX):
        return f"{path.schema}:{path.dotted()}"
    return path.dotted()


def filter_atoms(f: Filter) -> Iterator[tuple[AttrPath, str]]:
    """Every (path, operator) a filter uses, value paths included (``pr`` for presence)."""
    if isinstance(f, And | Or):
        yield from filter_atoms(f.left)
        yield from filter_atoms(f.right)
    elif isinstance(f, Not):
        yield from filter_atoms(f.expr)
    elif isinstance(f, ValuePath):
        yield from filter_atoms(f.filter)
    elif isinstance(f, Compare):
        yield f.path, f.op
    elif isinstance(f, Present):
        yield f.path, "pr"


def declared_filter_refusal(backend: Backend, resource: str, f: Filter) -> str | None:
    """Why the backend declares it cannot evaluate ``f``, or None when it declares nothing against it.

    ``capabilities.filter_operators`` maps a resource type (``"User"``, ``"Group"``) to
    ``{path: [operators]}``: the operators (``eq ne co sw ew gt ge lt le pr``) the backend evaluates on
    each path (see :func:`path_key`). A resource type it lists takes only those; one it leaves out,
    everything.
    """
    table = backend.capabilities.filter_operators.get(resource)
    if table is None:
        return None
    allowed = {key.lower(): {op.lower() for op in ops} for key, ops in table.items()}
    for path, op in filter_atoms(f):
        if op.lower() not in allowed.get(path_key(path).lower(), set()):
            return (
                f"{type(backend).__name__} declares in capabilities.filter_operators that it cannot "
                f"evaluate {op!r} on {resource} {path_key(path)!r}"
            )
    return None


def declared_sort_refusal(backend: Backend, resource: str, path: AttrPath) -> str | None:
    """Why the backend declares it cannot sort by ``path``, or None.

    ``capabilities.sort_attributes`` maps a resource type to the paths it sorts by; a resource
    type it leaves out sorts by every path.
    """
    table = backend.capabilities.sort_attributes.get(resource)
    if table is None or path_key(path).lower() in {key.lower() for key in table}:
        return None
    return (
        f"{type(backend).__name__} declares in capabilities.sort_attributes that it cannot sort "
        f"{resource} by {path_key(path)!r}"
    )


def list_or_refuse(
    backend: Backend, reason: str | None, refusal: type[Exception], what: str, call: Callable[[], Any]
) -> Any:
    """Run a list call; a refusal is fine only when declared (the test skips), and only as ``refusal``.

    With a declared reason the call may still succeed (the caller then checks the answer like any
    other): a declared limit allows a refusal, never a wrong answer.
    """
    try:
        return call()
    except refusal as exc:
        if reason is not None:
            pytest.skip(f"{reason}; refused with {refusal.__name__}: {exc}")
        pytest.fail(
            f"{what} was refused with {refusal.__name__} ({exc}) but the backend does not declare that limit "
            "in its capabilities (see docs/plugins.md, Capabilities)"
        )
    except Exception as exc:
        if reason is not None:
            pytest.fail(f"{what}: {reason}, so it must be refused with {refusal.__name__}, not {type(exc).__name__}")
        raise


class KitBase:
    """Fixtures every mixin uses. The backend author provides ``backend``; these come with the kit."""

    @pytest.fixture
    def make_tenant(self) -> Callable[..., Tenant]:
        """Make tenants with fresh ids: ``make_tenant(max_seats=1, seat_policy=SeatPolicy.ACTIVE)``."""
        return new_tenant

    @pytest.fixture
    def tenant(self) -> Tenant:
        """A fresh tenant: unlimited seats, SeatPolicy.ALL, MatchPolicy.EMAIL."""
        return new_tenant()

    @pytest.fixture
    def other_tenant(self) -> Tenant:
        """A second fresh tenant, to check isolation."""
        return new_tenant()


# -- users ---------------------------------------------------------------------------------------


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
        expect_error(NotFound, "get_user must raise NotFound for an unknown id", backend.get_user, tenant, "nope")
        expect_error(
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
        expect_error(
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
        expect_error(NotFound, "after a hard delete get_user must raise NotFound", backend.get_user, tenant, user.id)
        expect_error(
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
            expect_error(
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


class UniquenessTests(KitBase):
    """userName (and primary email under MatchPolicy.EMAIL) is unique per tenant, case-insensitively."""

    def test_create_user_refuses_a_taken_username(self, backend: Backend, tenant: Tenant) -> None:
        first = backend.create_user(tenant, user_document("alice"))
        err = expect_error(
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
        err = expect_error(
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
        err = expect_error(
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
        err = expect_error(
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
        err = expect_error(
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
            err = expect_error(
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
        expect_error(
            UniquenessConflict,
            "the primary email is the emails value marked primary: create_user must refuse it under MatchPolicy.EMAIL",
            backend.create_user,
            tenant,
            user_document("e", email="PRIMARY@example.com"),
        )
        expect_error(
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
        err = expect_error(
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
        err = expect_error(
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
        expect_error(
            UniquenessConflict,
            "replace_user must refuse the userName of a soft-deleted record (it still holds it)",
            backend.replace_user,
            tenant,
            bob.id,
            user_document("GONE"),
        )


class VersionTests(KitBase):
    """Optimistic versions: a new version on every write, VersionMismatch on a stale expected_version."""

    def test_every_user_write_gives_a_new_version(self, backend: Backend, tenant: Tenant) -> None:
        require(backend, "etag")
        created = backend.create_user(tenant, user_document("v"))
        seen = {created.version}
        current = created
        for title in ("a", "b", "a"):
            current = backend.replace_user(tenant, created.id, user_document("v", title=title))
            assert current.version not in seen, "every replace_user must give the user a version it never had"
            seen.add(current.version)
            assert backend.get_user(tenant, created.id).version == current.version, (
                "get_user must return the version the last write returned"
            )
        backend.delete_user(tenant, created.id, hard=False)
        deleted = backend.get_user(tenant, created.id, include_deleted=True)
        assert deleted.version not in seen, "a soft delete is a write: it must give the user a new version"

    def test_replace_user_with_stale_version_fails_and_writes_nothing(self, backend: Backend, tenant: Tenant) -> None:
        require(backend, "etag")
        created = backend.create_user(tenant, user_document("v"))
        updated = backend.replace_user(tenant, created.id, user_document("v", title="one"))
        expect_error(
            VersionMismatch,
            "replace_user must raise VersionMismatch when expected_version is stale",
            backend.replace_user,
            tenant,
            created.id,
            user_document("v", title="two"),
            expected_version=created.version,
        )
        stored = backend.get_user(tenant, created.id)
        assert stored.data.get("title") == "one" and stored.version == updated.version, (
            "a replace_user refused with VersionMismatch must write nothing"
        )
        ok = backend.replace_user(tenant, created.id, user_document("v", title="two"), expected_version=updated.version)
        assert ok.data.get("title") == "two", "replace_user must succeed when expected_version is current"

    def test_delete_user_with_stale_version_fails_and_writes_nothing(self, backend: Backend, tenant: Tenant) -> None:
        require(backend, "etag")
        created = backend.create_user(tenant, user_document("v"))
        backend.replace_user(tenant, created.id, user_document("v", title="one"))
        for hard in (False, True):
            expect_error(
                VersionMismatch,
                f"delete_user(hard={hard}) must raise VersionMismatch when expected_version is stale",
                backend.delete_user,
                tenant,
                created.id,
                hard=hard,
                expected_version=created.version,
            )
            assert backend.get_user(tenant, created.id).deleted is False, (
                "a delete_user refused with VersionMismatch must write nothing"
            )
        current = backend.get_user(tenant, created.id).version
        backend.delete_user(tenant, created.id, hard=False, expected_version=current)

    def test_every_group_write_gives_a_new_version(self, backend: Backend, tenant: Tenant) -> None:
        require(backend, "etag")
        user = backend.create_user(tenant, user_document("m"))
        group = backend.create_group(tenant, group_document("g"), [])
        seen = {group.version}
        replaced = backend.replace_group(tenant, group.id, group_document("g2"), [Member(user.id)])
        assert replaced.version not in seen, "replace_group must give the group a new version"
        seen.add(replaced.version)
        patched = backend.patch_group(tenant, group.id, GroupChanges(remove=(user.id,)))
        assert patched.version not in seen, "patch_group with only member changes must give the group a new version"
        seen.add(patched.version)
        renamed = backend.patch_group(tenant, group.id, GroupChanges(data=group_document("g3")))
        assert renamed.version not in seen, "patch_group with new attributes must give the group a new version"
        assert backend.get_group(tenant, group.id).version == renamed.version, (
            "get_group must return the version the last write returned"
        )

    def test_group_writes_with_stale_version_fail_and_write_nothing(self, backend: Backend, tenant: Tenant) -> None:
        require(backend, "etag")
        user = backend.create_user(tenant, user_document("m"))
        group = backend.create_group(tenant, group_document("g"), [])
        current = backend.patch_group(tenant, group.id, GroupChanges(data=group_document("g1")))
        stale = group.version
        expect_error(
            VersionMismatch,
            "replace_group must raise VersionMismatch when expected_version is stale",
            backend.replace_group,
            tenant,
            group.id,
            group_document("x"),
            [Member(user.id)],
            expected_version=stale,
        )
        expect_error(
            VersionMismatch,
            "patch_group must raise VersionMismatch when expected_version is stale",
            backend.patch_group,
            tenant,
            group.id,
            GroupChanges(data=group_document("y"), add=(Member(user.id),)),
            expected_version=stale,
        )
        expect_error(
            VersionMismatch,
            "delete_group must raise VersionMismatch when expected_version is stale",
            backend.delete_group,
            tenant,
            group.id,
            expected_version=stale,
        )
        stored = backend.get_group(tenant, group.id)
        assert stored.display_name == "g1" and member_ids(stored) == set() and stored.version == current.version, (
            "group writes refused with VersionMismatch must write nothing"
        )
        backend.delete_group(tenant, group.id, expected_version=current.version)
        expect_error(NotFound, "delete_group with the current version must delete", backend.get_group, tenant, group.id)


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
            expect_error(
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
        expect_error(
            SeatLimitReached,
            "under SeatPolicy.ALL deactivation must not free a seat",
            backend.create_user,
            tenant,
            user_document("two"),
        )
        backend.delete_user(tenant, one.id, hard=False)
        expect_error(
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
        expect_error(
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
        expect_error(
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
        expect_error(
            SeatLimitReached,
            "under SeatPolicy.ACTIVE replace_user(undelete=True) must raise SeatLimitReached when the tenant is full",
            backend.replace_user,
            tenant,
            gone.id,
            user_document("gone"),
            undelete=True,
        )
        expect_error(
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


class SoftDeleteTests(KitBase):
    """delete_user(hard=False): kept but invisible; remove_inactive_users."""

    def test_soft_deleted_user_is_not_found(self, backend: Backend, tenant: Tenant) -> None:
        user = backend.create_user(tenant, user_document("gone"))
        backend.delete_user(tenant, user.id, hard=False)
        expect_error(
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
        expect_error(
            InvalidValue,
            "create_group must refuse a soft-deleted user as member",
            backend.create_group,
            tenant,
            group_document("g"),
            [Member(gone.id)],
        )
        group = backend.create_group(tenant, group_document("h"), [])
        expect_error(
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
        expect_error(
            NotFound,
            "replace_user without undelete must raise NotFound for a soft-deleted user",
            backend.replace_user,
            tenant,
            user.id,
            user_document("gone", title="new"),
        )
        expect_error(
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
            expect_error(
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


# -- groups --------------------------------------------------------------------------------------


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
        expect_error(NotFound, "get_group must raise NotFound for an unknown id", backend.get_group, tenant, missing)
        expect_error(
            NotFound,
            "replace_group must raise NotFound for an unknown id",
            backend.replace_group,
            tenant,
            missing,
            group_document("x"),
            [],
        )
        expect_error(
            NotFound,
            "patch_group must raise NotFound for an unknown id",
            backend.patch_group,
            tenant,
            missing,
            GroupChanges(data=group_document("x")),
        )
        expect_error(
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
        expect_error(
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
        expect_error(
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
        expect_error(NotFound, "delete_group must remove the group", backend.get_group, tenant, group.id)
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

    def test_group_is_no_member_without_nested_groups(self, backend: Backend, tenant: Tenant) -> None:
        if backend.capabilities.nested_groups:
            pytest.skip(f"{type(backend).__name__} declares capabilities.nested_groups=True")
        inner = backend.create_group(tenant, group_document("inner"), [])
        for member in (Member(inner.id, "Group"), Member(inner.id)):
            expect_error(
                InvalidValue,
                "without nested_groups create_group must raise InvalidValue for a group as member",
                backend.create_group,
                tenant,
                group_document("outer"),
                [member],
            )

    def test_nested_groups(self, backend: Backend, tenant: Tenant) -> None:
        require(backend, "nested_groups")
        user = backend.create_user(tenant, user_document("a"))
        inner = backend.create_group(tenant, group_document("inner"), [Member(user.id)])
        outer = backend.create_group(tenant, group_document("outer"), [Member(inner.id, "Group")])
        members = backend.get_group(tenant, outer.id).members or ()
        assert [(m.value, m.type) for m in members] == [(inner.id, "Group")], (
            "with nested_groups a group member must be stored with type 'Group'"
        )


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
        expect_error(
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
        expect_error(
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


# -- tenants -------------------------------------------------------------------------------------


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
        expect_error(NotFound, "get_user must not find another tenant's user", backend.get_user, tenant, user.id)
        expect_error(
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
            expect_error(
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
            expect_error(
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
        expect_error(NotFound, "get_group must not find another tenant's group", backend.get_group, tenant, group.id)
        expect_error(
            NotFound,
            "replace_group must not reach another tenant's group",
            backend.replace_group,
            tenant,
            group.id,
            group_document("x"),
            [],
        )
        expect_error(
            NotFound,
            "patch_group must not reach another tenant's group",
            backend.patch_group,
            tenant,
            group.id,
            GroupChanges(clear_members=True),
        )
        expect_error(
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
        expect_error(
            InvalidValue,
            "create_group must raise InvalidValue for a member of another tenant",
            backend.create_group,
            tenant,
            group_document("g"),
            [Member(user.id)],
        )
        mine = backend.create_group(tenant, group_document("mine"), [])
        expect_error(
            InvalidValue,
            "replace_group must raise InvalidValue for a member of another tenant",
            backend.replace_group,
            tenant,
            mine.id,
            group_document("mine"),
            [Member(user.id)],
        )
        expect_error(
            InvalidValue,
            "create_group must raise InvalidValue for another tenant's group as member",
            backend.create_group,
            tenant,
            group_document("g2"),
            [Member(group.id, "Group")],
        )
        assert backend.list_groups(tenant, query()).total_results == 1, "refused group writes must write nothing"


# -- lists ---------------------------------------------------------------------------------------

# The users of the filter and sort matrices, created in this order (one tick apart). "zed" is
# soft-deleted afterwards and a user "alice" of another tenant exists too: neither may ever match.
MATRIX_USERS: list[dict[str, Any]] = [
    {
        "userName": "alice",
        "name": {"givenName": "Alice", "familyName": "Smith", "formatted": "Alice Smith"},
        "displayName": "Alice Smith",
        "title": "Engineer",
        "userType": "Employee",
        "externalId": "EXT-A",
        "emails": [
            {"value": "alice@work.example", "type": "work", "primary": True},
            {"value": "alice@home.example", "type": "home", "primary": False},
        ],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
        "addresses": [{"locality": "Paris", "country": "FR", "type": "work"}],
        "photos": [{"value": "https://photos.example.com/Alice.png"}],
        ENT: {"employeeNumber": "100", "department": "R&D", "manager": {"value": "mgr-1"}},
        "active": True,
    },
    {
        "userName": "Bob",
        "name": {"familyName": "Brown"},
        "displayName": "Bob Brown",
        "title": "Manager",
        "externalId": "ext-b",
        "emails": [
            {"value": "bob@work.example", "type": "home"},
            {"value": "bob2@other.example", "type": "work"},
        ],
        "roles": [{"value": "admin"}],
        ENT: {"employeeNumber": "200", "department": "Sales"},
        "active": True,
    },
    {"userName": "carol", "externalId": "ext-a", "nickName": "", "emails": [], "active": False},
    {
        "userName": "Dave",
        "name": {"givenName": "Dave"},
        "title": "engineer",
        "locale": "de-DE",
        "emails": [{"value": "DAVE@Work.Example", "type": "work", "primary": True}],
        "addresses": [{"locality": "Berlin", "country": "DE"}],
        ENT: {"department": "r&d"},
        "active": True,
    },
    {
        "userName": "eve",
        "name": {"familyName": "smith"},
        "displayName": "Eve",
        "title": "Director",
        "userType": "Contractor",
        "emails": [
            {"value": "a-first@x.example", "type": "home"},
            {"value": "zz@x.example", "type": "work", "primary": True},
        ],
        "phoneNumbers": [{"value": "+49 30 1234", "type": "mobile"}],
        "active": True,
    },
    {"userName": "Frank", "active": True},
    {"userName": "zed", "title": "Engineer", "emails": [{"value": "zed@work.example", "type": "work"}], "active": True},
]

ENT_PREFIX = ENT + ":"

USER_FILTERS: list[str] = [
    'userName eq "ALICE"',
    'userName eq "alice"',
    'userName ne "alice"',
    'userName co "A"',
    'userName sw "b"',
    'userName ew "E"',
    'userName gt "carol"',
    'userName ge "CAROL"',
    'userName lt "carol"',
    'userName le "Carol"',
    'title eq "engineer"',
    'title ne "engineer"',
    "title pr",
    "not (title pr)",
    "title eq null",
    "title ne null",
    "nickName pr",
    'displayName co "brown"',
    'externalId eq "EXT-A"',
    'externalId eq "ext-a"',
    'externalId sw "EXT"',
    "active eq true",
    "active eq false",
    "active ne true",
    'name.familyName eq "SMITH"',
    "name.givenName pr",
    "name pr",
    "not (name pr)",
    'emails eq "alice@home.example"',
    'emails.value ew "@WORK.example"',
    'emails.type eq "work"',
    "emails.primary eq true",
    "emails pr",
    "not (emails pr)",
    'emails.value ne "alice@work.example"',
    'emails[type eq "work" and value sw "bob"]',
    'emails[type eq "home" and value co "bob"]',
    'emails[type eq "work" and primary eq true]',
    'emails[type eq "home"] and userName sw "a"',
    'not (emails[type eq "home"])',
    'phoneNumbers.value co "555"',
    'phoneNumbers[type eq "mobile"]',
    'addresses[country eq "fr"]',
    'addresses.locality co "ER"',
    'photos.value eq "https://photos.example.com/alice.png"',
    'photos.value eq "https://photos.example.com/Alice.png"',
    "roles pr",
    'locale sw "de"',
    'userType eq "contractor"',
    ENT_PREFIX + 'department eq "R&D"',
    ENT_PREFIX + 'employeeNumber gt "150"',
    ENT_PREFIX + 'manager.value eq "mgr-1"',
    ENT_PREFIX + 'manager.value eq "MGR-1"',
    ENT_PREFIX + "employeeNumber pr",
    "not (" + ENT_PREFIX + "department pr)",
    'userName sw "a" or title eq "engineer"',
    'userName sw "a" and title eq "engineer"',
    'not (userName eq "alice") and active eq true',
    '(title pr and active eq false) or emails.type eq "home"',
    'id eq "{id_Bob}"',
    'id ne "{id_Bob}"',
    'meta.lastModified gt "{mid_2_3}"',
    'meta.lastModified ge "{mid_2_3}"',
    'meta.lastModified lt "{mid_4_5}"',
    'meta.lastModified le "{mid_4_5_offset}"',
    'meta.created gt "{mid_1_2_offset}" and meta.created lt "{mid_5_6}"',
    'meta.resourceType eq "User"',
]

MATRIX_GROUPS: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"displayName": "Admins", "externalId": "G-1"}, ("alice", "Bob")),
    ({"displayName": "engineering"}, ("Dave",)),
    ({"displayName": "Empty", "externalId": "g-1"}, ()),
]

GROUP_FILTERS: list[str] = [
    'displayName eq "admins"',
    'displayName co "IN"',
    'displayName sw "e"',
    'displayName gt "B"',
    'externalId eq "G-1"',
    "externalId pr",
    "members pr",
    "not (members pr)",
    'members.value eq "{id_alice}"',
    'members eq "{id_Dave}"',
    'members[value eq "{id_Bob}"]',
    'members.value eq "{id_zed}"',
    'meta.lastModified gt "{gmid_1_2}"',
    'id eq "{gid_engineering}"',
]

USER_SORTS = [
    "userName",
    "title",
    "name.familyName",
    "emails",
    "externalId",
    "displayName",
    "active",
    "meta.lastModified",
    "meta.created",
    ENT_PREFIX + "department",
]


class Matrix:
    """The populated tenant of the filter and sort tests, and the values filter templates use."""

    def __init__(self, backend: Backend, tenant: Tenant) -> None:
        self.backend = backend
        self.tenant = tenant
        records = []
        for document in MATRIX_USERS:
            records.append(backend.create_user(tenant, document))
            tick()
        backend.create_user(new_tenant(), dict(MATRIX_USERS[0]))
        zed = records[-1]
        self.values: dict[str, str] = {f"id_{r.user_name}": r.id for r in records}
        groups = []
        by_name = {r.user_name: r.id for r in records}
        for document, members in MATRIX_GROUPS:
            groups.append(backend.create_group(tenant, document, [Member(by_name[m]) for m in members]))
            tick()
        backend.patch_group(tenant, groups[-1].id, GroupChanges(add=(Member(zed.id),)))
        backend.delete_user(tenant, zed.id, hard=False)
        plus_two = timezone(timedelta(hours=2))
        for i in range(len(records) - 2):
            mid = midpoint(records[i].last_modified, records[i + 1].last_modified)
            self.values[f"mid_{i + 1}_{i + 2}"] = iso(mid)
            self.values[f"mid_{i + 1}_{i + 2}_offset"] = mid.astimezone(plus_two).isoformat(timespec="microseconds")
        # Groups are read back: adding zed and deleting zed may have changed their lastModified.
        fresh = [backend.get_group(tenant, g.id) for g in groups]
        ordered = sorted(fresh, key=lambda g: aware(g.last_modified))
        self.values["gmid_1_2"] = iso(midpoint(ordered[0].last_modified, ordered[1].last_modified))
        self.values.update({f"gid_{g.display_name}": g.id for g in groups})
        self.user_docs = [rendered_user(backend.get_user(tenant, r.id)) for r in records[:-1]]
        self.group_docs = [rendered_group(g) for g in fresh]

    def expected_users(self, text: str) -> tuple[str, list[str]]:
        """The filter text with its placeholders filled, and the ids the reference evaluator selects."""
        filled = text.format(**self.values)
        f = user_filter(filled)
        return filled, sorted(d["id"] for d in self.user_docs if evaluator.matches(f, d))

    def expected_groups(self, text: str) -> tuple[str, list[str]]:
        """As :meth:`expected_users`, for groups."""
        filled = text.format(**self.values)
        f = group_filter(filled)
        return filled, sorted(d["id"] for d in self.group_docs if evaluator.matches(f, d))

    def names(self, ids: list[str]) -> list[str]:
        """userNames (or displayNames) of ids, to make failure messages readable."""
        by_id = {d["id"]: d.get("userName") or d.get("displayName") for d in self.user_docs + self.group_docs}
        return [str(by_id.get(i, i)) for i in ids]


class FilterTests(KitBase):
    """list_users / list_groups filters agree with the reference evaluator on every operator."""

    @pytest.fixture
    def filter_matrix(self, backend: Backend, tenant: Tenant) -> Matrix:
        """A tenant populated with the matrix users and groups."""
        require(backend, "filter")
        return Matrix(backend, tenant)

    @pytest.mark.parametrize("text", USER_FILTERS)
    def test_user_filter_matches_reference_evaluator(self, backend: Backend, filter_matrix: Matrix, text: str) -> None:
        filled, expected = filter_matrix.expected_users(text)
        f = user_filter(filled)
        reason = declared_filter_refusal(backend, "User", f)
        page = list_or_refuse(
            backend,
            reason,
            InvalidFilter,
            f"list_users filter {filled!r}",
            lambda: backend.list_users(filter_matrix.tenant, query(filter=f)),
        )
        got = sorted(user_ids(page.resources))
        assert got == expected, (
            f"list_users filter {filled!r} must select exactly what the reference evaluator selects: "
            f"expected {filter_matrix.names(expected)}, got {filter_matrix.names(got)}"
            + (f" ({reason}: refuse it with InvalidFilter rather than answer wrongly)" if reason else "")
        )
        assert page.total_results == len(expected), (
            f"list_users filter {filled!r}: total_results must be the exact number of matches"
        )

    @pytest.mark.parametrize("text", GROUP_FILTERS)
    def test_group_filter_matches_reference_evaluator(self, backend: Backend, filter_matrix: Matrix, text: str) -> None:
        filled, expected = filter_matrix.expected_groups(text)
        f = group_filter(filled)
        reason = declared_filter_refusal(backend, "Group", f)
        page = list_or_refuse(
            backend,
            reason,
            InvalidFilter,
            f"list_groups filter {filled!r}",
            lambda: backend.list_groups(filter_matrix.tenant, query(filter=f)),
        )
        got = sorted(user_ids(page.resources))
        assert got == expected, (
            f"list_groups filter {filled!r} must select exactly what the reference evaluator selects: "
            f"expected {filter_matrix.names(expected)}, got {filter_matrix.names(got)}"
            + (f" ({reason}: refuse it with InvalidFilter rather than answer wrongly)" if reason else "")
        )
        assert page.total_results == len(expected), (
            f"list_groups filter {filled!r}: total_results must be the exact number of matches"
        )


def _check_sorted(
    docs: list[dict[str, Any]], path_text: str, descending: bool, resolve: Callable[[str], Any], what: str
) -> None:
    path = resolve(path_text)
    keys = [evaluator.sort_key(path, d) for d in docs]
    order = "descending" if descending else "ascending"
    for i in range(len(keys) - 1):
        a, b = keys[i], keys[i + 1]
        in_order = a >= b if descending else a <= b
        assert in_order, (
            f"{what} sorted by {path_text} {order} must order {docs[i]['id']} and {docs[i + 1]['id']} the other way "
            f"(missing values sort last ascending and first descending; strings case-insensitively unless caseExact)"
        )


class SortTests(KitBase):
    """sortBy / sortOrder, missing values last ascending and first descending."""

    @pytest.fixture
    def sort_matrix(self, backend: Backend, tenant: Tenant) -> Matrix:
        """A tenant populated with the matrix users and groups."""
        require(backend, "sort")
        return Matrix(backend, tenant)

    @pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
    @pytest.mark.parametrize("path", USER_SORTS)
    def test_users_sorted_like_reference(
        self, backend: Backend, sort_matrix: Matrix, path: str, descending: bool
    ) -> None:
        sort_by = user_sort(path)
        page = list_or_refuse(
            backend,
            declared_sort_refusal(backend, "User", sort_by),
            InvalidValue,
            f"list_users sorted by {path}",
            lambda: backend.list_users(sort_matrix.tenant, query(sort_by=sort_by, descending=descending)),
        )
        assert sorted(user_ids(page.resources)) == sorted(d["id"] for d in sort_matrix.user_docs), (
            "a sorted list_users must return every visible user of the tenant once"
        )
        by_id = {d["id"]: d for d in sort_matrix.user_docs}
        _check_sorted([by_id[r.id] for r in page.resources], path, descending, user_sort, "list_users")

    @pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
    @pytest.mark.parametrize("path", ["displayName", "externalId", "meta.lastModified"])
    def test_groups_sorted_like_reference(
        self, backend: Backend, sort_matrix: Matrix, path: str, descending: bool
    ) -> None:
        sort_by = group_sort(path)
        page = list_or_refuse(
            backend,
            declared_sort_refusal(backend, "Group", sort_by),
            InvalidValue,
            f"list_groups sorted by {path}",
            lambda: backend.list_groups(sort_matrix.tenant, query(sort_by=sort_by, descending=descending)),
        )
        by_id = {d["id"]: d for d in sort_matrix.group_docs}
        assert sorted(user_ids(page.resources)) == sorted(by_id), "a sorted list_groups must return every group once"
        _check_sorted([by_id[r.id] for r in page.resources], path, descending, group_sort, "list_groups")

    def test_sorted_paging_is_consistent(self, backend: Backend, sort_matrix: Matrix) -> None:
        sort_by = user_sort("title")
        reason = declared_sort_refusal(backend, "User", sort_by)
        if reason is not None:
            pytest.skip(reason)
        whole = user_ids(backend.list_users(sort_matrix.tenant, query(sort_by=sort_by)).resources)
        paged: list[str] = []
        for start in range(1, len(whole) + 1, 2):
            paged += user_ids(
                backend.list_users(sort_matrix.tenant, ListQuery(sort_by=sort_by, start_index=start, count=2)).resources
            )
        assert paged == whole, "paging through a sorted list (ties included) must give the same order as one big page"


class PagingTests(KitBase):
    """start_index / count paging and the exact total_results."""

    @pytest.fixture
    def seven(self, backend: Backend, tenant: Tenant) -> list[UserRecord]:
        """Seven users of the tenant; the odd ones have title "odd"."""
        return [
            backend.create_user(tenant, user_document(f"user-{i:02d}", **({"title": "odd"} if i % 2 else {})))
            for i in range(1, 8)
        ]

    def test_total_results_is_exact_on_every_page(
        self, backend: Backend, tenant: Tenant, seven: list[UserRecord]
    ) -> None:
        seen: list[str] = []
        for start, size in ((1, 3), (4, 3), (7, 1)):
            page = backend.list_users(tenant, ListQuery(start_index=start, count=3))
            assert page.total_results == 7, (
                "list_users total_results must be the exact number of matches, not the page size"
            )
            assert len(page.resources) == size, f"the page at start_index={start} with count=3 must hold {size} users"
            seen += user_ids(page.resources)
        assert sorted(seen) == sorted(u.id for u in seven), "paging must return every user exactly once"

    def test_total_results_counts_filter_matches(
        self, backend: Backend, tenant: Tenant, seven: list[UserRecord]
    ) -> None:
        require(backend, "filter")
        page = backend.list_users(tenant, ListQuery(filter=user_filter('title eq "odd"'), count=2))
        assert page.total_results == 4, "total_results must count every filter match, not the page size"
        assert len(page.resources) == 2, "a page must hold at most count resources"

    def test_count_zero_gives_only_the_total(self, backend: Backend, tenant: Tenant, seven: list[UserRecord]) -> None:
        page = backend.list_users(tenant, ListQuery(count=0))
        assert page.resources == [] and page.total_results == 7, "count=0 must return no resources and the total"

    def test_start_index_past_the_end(self, backend: Backend, tenant: Tenant, seven: list[UserRecord]) -> None:
        page = backend.list_users(tenant, ListQuery(start_index=20, count=5))
        assert page.resources == [] and page.total_results == 7, (
            "a start_index past the last match must give an empty page with the exact total"
        )

    def test_start_index_is_echoed(self, backend: Backend, tenant: Tenant, seven: list[UserRecord]) -> None:
        assert backend.list_users(tenant, ListQuery(start_index=3, count=2)).start_index == 3, (
            "Page.start_index must be the query's start_index"
        )

    def test_unsorted_order_is_stable(self, backend: Backend, tenant: Tenant, seven: list[UserRecord]) -> None:
        whole = user_ids(backend.list_users(tenant, query()).resources)
        assert whole == user_ids(backend.list_users(tenant, query()).resources), (
            "an unsorted list must come in a stable order"
        )
        paged: list[str] = []
        for start in (1, 3, 5, 7):
            paged += user_ids(backend.list_users(tenant, ListQuery(start_index=start, count=2)).resources)
        assert paged == whole, "unsorted pages must follow the same stable order as one big page"

    def test_groups_paging_and_total(self, backend: Backend, tenant: Tenant) -> None:
        made = [backend.create_group(tenant, group_document(f"g{i}"), []) for i in range(5)]
        seen: list[str] = []
        for start in (1, 3, 5):
            page = backend.list_groups(tenant, ListQuery(start_index=start, count=2))
            assert page.total_results == 5, "list_groups total_results must be exact, not the page size"
            seen += user_ids(page.resources)
        assert sorted(seen) == sorted(g.id for g in made), "group paging must return every group exactly once"


class CursorTests(KitBase):
    """Cursor paging (RFC 9865) for backends that declare capabilities.cursor."""

    def _walk(self, lister: Callable[[ListQuery], Any], expected_total: int, **kwargs: Any) -> list[str]:
        seen: list[str] = []
        cursor = ""
        for _ in range(100):
            page = lister(ListQuery(cursor=cursor, count=2, **kwargs))
            assert page.total_results == expected_total, "cursor pages must carry the exact total_results"
            assert len(page.resources) <= 2, "a cursor page must hold at most count resources"
            seen += user_ids(page.resources)
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor
        pytest.fail("cursor paging must end with next_cursor=None")

    def test_cursor_pages_visit_every_user_once(self, backend: Backend, tenant: Tenant) -> None:
        require(backend, "cursor")
        made = [
            backend.create_user(tenant, user_document(f"c{i}", **({"title": "x"} if i < 4 else {}))) for i in range(5)
        ]
        seen = self._walk(lambda q: backend.list_users(tenant, q), 5)
        assert sorted(seen) == sorted(u.id for u in made), "cursor paging must return every user exactly once"
        if backend.capabilities.filter:
            filtered = self._walk(lambda q: backend.list_users(tenant, q), 4, filter=user_filter('title eq "x"'))
            assert sorted(filtered) == sorted(u.id for u in made[:4]), "cursor paging must honour the filter"

    def test_cursor_pages_visit_every_group_once(self, backend: Backend, tenant: Tenant) -> None:
        require(backend, "cursor")
        made = [backend.create_group(tenant, group_document(f"g{i}"), []) for i in range(5)]
        seen = self._walk(lambda q: backend.list_groups(tenant, q), 5)
        assert sorted(seen) == sorted(g.id for g in made), "cursor paging must return every group exactly once"

    def test_cursor_pages_follow_the_sort_order(self, backend: Backend, tenant: Tenant) -> None:
        require(backend, "cursor")
        require(backend, "sort")
        for i, title in enumerate(["b", None, "A", "c", None, "a"]):
            backend.create_user(tenant, user_document(f"s{i}", **({"title": title} if title else {})))
        sort_by = user_sort("title")
        whole = user_ids(backend.list_users(tenant, query(sort_by=sort_by, descending=True)).resources)
        seen = self._walk(lambda q: backend.list_users(tenant, q), 6, sort_by=sort_by, descending=True)
        assert seen == whole, "cursor paging of a sorted list must follow the same order as one big sorted page"

    def test_unknown_cursor_is_refused(self, backend: Backend, tenant: Tenant) -> None:
        require(backend, "cursor")
        backend.create_user(tenant, user_document("u"))
        expect_error(
            InvalidCursor,
            "list_users must raise InvalidCursor for an unknown cursor",
            backend.list_users,
            tenant,
            ListQuery(cursor="not-a-cursor-this-backend-issued", count=2),
        )
        expect_error(
            InvalidCursor,
            "list_groups must raise InvalidCursor for an unknown cursor",
            backend.list_groups,
            tenant,
            ListQuery(cursor="not-a-cursor-this-backend-issued", count=2),
        )


class ConcurrencyTests(KitBase):
    """The rules that must hold under concurrency: exactly one of racing writers wins.

    A backend that cannot be called from several threads may opt out only by declaring
    ``capabilities.concurrency = False``; the tests then skip saying so.
    """

    THREADS = 8

    @staticmethod
    def _require_concurrency(backend: Backend) -> None:
        if not backend.capabilities.concurrency:
            pytest.skip(f"{type(backend).__name__} declares capabilities.concurrency=False")

    def test_racing_creates_of_one_username_one_wins(self, backend: Backend, tenant: Tenant) -> None:
        self._require_concurrency(backend)
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

    def test_racing_creates_for_the_last_seat_one_wins(self, backend: Backend, make_tenant: Any) -> None:
        self._require_concurrency(backend)
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

    def test_racing_reactivations_for_the_last_seat_one_wins(self, backend: Backend, make_tenant: Any) -> None:
        self._require_concurrency(backend)
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

    def test_racing_replaces_with_one_version_one_wins(self, backend: Backend, tenant: Tenant) -> None:
        self._require_concurrency(backend)
        require(backend, "etag")
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

    def test_racing_member_additions_are_all_kept(self, backend: Backend, tenant: Tenant) -> None:
        self._require_concurrency(backend)
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


class BackendSuite(
    UserCrudTests,
    UniquenessTests,
    VersionTests,
    SeatTests,
    SoftDeleteTests,
    GroupTests,
    MembershipTests,
    TenantIsolationTests,
    FilterTests,
    SortTests,
    PagingTests,
    CursorTests,
    ConcurrencyTests,
):
    """Every conformance test. Subclass it (as ``TestSomething``) next to a ``backend`` fixture."""


def iter_mixins() -> Iterator[type[KitBase]]:
    """The mixin classes of :class:`BackendSuite`, in order."""
    return (c for c in BackendSuite.__mro__[1:] if issubclass(c, KitBase) and c is not KitBase)
