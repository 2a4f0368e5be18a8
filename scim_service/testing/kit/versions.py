"""Every write gives a new version; a stale expected_version is refused and writes nothing."""

from __future__ import annotations

from scim_service.backend import Backend
from scim_service.errors import NotFound, VersionMismatch
from scim_service.model import GroupChanges, Member, Tenant
from scim_service.testing.data import group_document, user_document
from scim_service.testing.kit.base import KitBase
from scim_service.testing.kit.helpers import assert_raises, member_ids
from scim_service.testing.kit.requirements import requires

__all__ = ["VersionTests"]


class VersionTests(KitBase):
    """Optimistic versions: a new version on every write, VersionMismatch on a stale expected_version."""

    @requires.etag
    def test_every_user_write_gives_a_new_version(self, backend: Backend, tenant: Tenant) -> None:
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

    @requires.etag
    def test_replace_user_with_stale_version_fails_and_writes_nothing(self, backend: Backend, tenant: Tenant) -> None:
        created = backend.create_user(tenant, user_document("v"))
        updated = backend.replace_user(tenant, created.id, user_document("v", title="one"))
        assert_raises(
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

    @requires.etag
    def test_delete_user_with_stale_version_fails_and_writes_nothing(self, backend: Backend, tenant: Tenant) -> None:
        created = backend.create_user(tenant, user_document("v"))
        backend.replace_user(tenant, created.id, user_document("v", title="one"))
        for hard in (False, True):
            assert_raises(
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

    @requires.etag
    def test_every_group_write_gives_a_new_version(self, backend: Backend, tenant: Tenant) -> None:
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

    @requires.etag
    def test_group_writes_with_stale_version_fail_and_write_nothing(self, backend: Backend, tenant: Tenant) -> None:
        user = backend.create_user(tenant, user_document("m"))
        group = backend.create_group(tenant, group_document("g"), [])
        current = backend.patch_group(tenant, group.id, GroupChanges(data=group_document("g1")))
        stale = group.version
        assert_raises(
            VersionMismatch,
            "replace_group must raise VersionMismatch when expected_version is stale",
            backend.replace_group,
            tenant,
            group.id,
            group_document("x"),
            [Member(user.id)],
            expected_version=stale,
        )
        assert_raises(
            VersionMismatch,
            "patch_group must raise VersionMismatch when expected_version is stale",
            backend.patch_group,
            tenant,
            group.id,
            GroupChanges(data=group_document("y"), add=(Member(user.id),)),
            expected_version=stale,
        )
        assert_raises(
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
        assert_raises(
            NotFound, "delete_group with the current version must delete", backend.get_group, tenant, group.id
        )
