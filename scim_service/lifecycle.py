"""The product rules of the user and group lifecycle, between the schemas and the backend.

Knows SCIM and the product page's rules (reactivation on a matching POST, 409 on an active match,
deactivation keeps everything, the three delete policies, PATCH applied atomically, ETag
preconditions) but nothing of HTTP or of storage. The rules that need atomicity in the store
(uniqueness, seats, versions) are enforced by the backend, with the decisions of
:mod:`scim_service.rules`; this layer decides what to ask it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pluggy

from scim_service import patch, rules
from scim_service.backend import Backend
from scim_service.errors import InvalidCursor, NotFound, UniquenessConflict, VersionMismatch
from scim_service.events import EventHooks
from scim_service.model import (
    DeletePolicy,
    GroupChanges,
    GroupRecord,
    Member,
    Page,
    Tenant,
    UserRecord,
)
from scim_service.profiles import ActiveProfile
from scim_service.query.ast import ListQuery
from scim_service.schemas.definitions import GROUP_RESOURCE, USER_RESOURCE, ResourceTypeDef
from scim_service.schemas.messages import PatchOperation
from scim_service.schemas.resources import load_group, load_user

# A write that lost an optimistic race without an If-Match from the client is simply retried.
_RETRIES = 20

R = TypeVar("R")


class Lifecycle:
    """The operations the API calls; each one is a single product-level action on one tenant.

    ``user_resource`` and ``group_resource`` are the app's resource types (the base definitions plus
    any configured schema extensions); PATCH results are validated against them.
    """

    def __init__(
        self,
        backend: Backend,
        pm: pluggy.PluginManager,
        delete_policy: DeletePolicy,
        *,
        user_resource: ResourceTypeDef = USER_RESOURCE,
        group_resource: ResourceTypeDef = GROUP_RESOURCE,
    ) -> None:
        self.backend = backend
        self.events = EventHooks(pm)
        self.delete_policy = delete_policy
        self.user_resource = user_resource
        self.group_resource = group_resource

    # -- users ---------------------------------------------------------------------------------

    def create_user(self, tenant: Tenant, data: Mapping[str, Any]) -> tuple[UserRecord, bool]:
        """POST /Users. Returns the user and True when created, False when an inactive or soft-deleted
        user matching it (userName, or primary email under the email match policy) was reactivated in
        place with the posted attributes. An active match raises ``UniquenessConflict`` (409)."""
        for _ in range(_RETRIES):
            try:
                user = self.backend.create_user(tenant, data)
            except UniquenessConflict as conflict:
                if conflict.existing_id is None:
                    raise
                try:
                    existing = self.backend.get_user(
                        tenant, conflict.existing_id, include_groups=False, include_deleted=True
                    )
                except NotFound:
                    continue  # the holder was removed meanwhile: try the create again
                if existing.active:
                    raise rules.active_match_conflict(existing, data) from None
                try:
                    user = self.backend.replace_user(
                        tenant, existing.id, data, expected_version=existing.version, undelete=True
                    )
                except VersionMismatch:
                    continue
                self.events.emit("scim_user_updated", tenant=tenant, user=user)
                if user.active:
                    self.events.emit("scim_user_reactivated", tenant=tenant, user=user)
                return user, False
            else:
                self.events.emit("scim_user_created", tenant=tenant, user=user)
                return user, True
        raise UniquenessConflict("The user changed concurrently while it was being matched; retry the request.")

    def get_user(self, tenant: Tenant, user_id: str, *, include_groups: bool = True) -> UserRecord:
        """GET /Users/{id}: soft-deleted users are not found."""
        return self.backend.get_user(tenant, user_id, include_groups=include_groups)

    def list_users(self, tenant: Tenant, query: ListQuery) -> Page[UserRecord]:
        """GET /Users and POST /Users/.search."""
        self._check_paging(query)
        return self.backend.list_users(tenant, query)

    def _check_paging(self, query: ListQuery) -> None:
        # A backend that does not page by cursor would answer a cursor request with an index page and
        # no nextCursor, which a client reads as the last page: refuse it (RFC 9865 §2.2, a pagination
        # parameter the server cannot honour is a 400; the client falls back to startIndex).
        if query.cursor is not None and not self.backend.capabilities.cursor:
            raise InvalidCursor(
                "This server does not page by cursor (its /ServiceProviderConfig advertises no cursor pagination); "
                "page with startIndex and count instead."
            )

    def replace_user(
        self, tenant: Tenant, user_id: str, data: Mapping[str, Any], *, if_match: str | None = None
    ) -> UserRecord:
        """PUT /Users/{id}: the whole document is replaced; memberships are kept."""
        return self._update_user(tenant, user_id, lambda _current: data, if_match)

    def patch_user(
        self,
        tenant: Tenant,
        user_id: str,
        operations: Sequence[PatchOperation],
        *,
        if_match: str | None = None,
        profile: ActiveProfile | None = None,
    ) -> UserRecord:
        """PATCH /Users/{id}: every operation applies or none (the document is patched, validated whole,
        then written once). ``operations`` were parsed at the edge
        (:func:`~scim_service.schemas.messages.load_patch_op`); ``profile`` is the request's IdP profile
        (strict when None), under which the patched document is validated."""
        resource = self.user_resource

        def patched(current: UserRecord) -> Mapping[str, Any]:
            document = patch.apply_user_patch(dict(current.data), operations, resource=resource, current_id=user_id)
            return load_user(
                _with_schemas(document, resource), default_active=False, profile=profile, resource=resource
            ).data

        return self._update_user(tenant, user_id, patched, if_match)

    def delete_user(self, tenant: Tenant, user_id: str, *, if_match: str | None = None) -> None:
        """DELETE /Users/{id} under the configured policy (soft by default)."""
        if self.delete_policy is DeletePolicy.DEACTIVATE:
            self._update_user(tenant, user_id, lambda current: {**current.data, "active": False}, if_match)
            return
        hard = self.delete_policy is DeletePolicy.HARD

        def delete() -> UserRecord:
            current = self.backend.get_user(tenant, user_id, include_groups=False)
            rules.check_if_match(current.version, if_match)
            self.backend.delete_user(tenant, user_id, hard=hard, expected_version=current.version)
            return current

        current = _retry(delete, if_match)
        if current.active:
            self.events.emit("scim_user_deactivated", tenant=tenant, user=current)
        self.events.emit("scim_user_deleted", tenant=tenant, user_id=user_id, hard=hard)

    def _update_user(
        self,
        tenant: Tenant,
        user_id: str,
        new_data: Callable[[UserRecord], Mapping[str, Any]],
        if_match: str | None,
    ) -> UserRecord:
        def write() -> tuple[UserRecord, UserRecord]:
            current = self.backend.get_user(tenant, user_id, include_groups=False)
            rules.check_if_match(current.version, if_match)
            updated = self.backend.replace_user(tenant, user_id, new_data(current), expected_version=current.version)
            return current, updated

        before, after = _retry(write, if_match)
        if not self.backend.replace_returns_groups:
            after = self.backend.get_user(tenant, user_id)  # with its groups, as the response shows them
        self.events.emit("scim_user_updated", tenant=tenant, user=after)
        if before.active and not after.active:
            self.events.emit("scim_user_deactivated", tenant=tenant, user=after)
        elif after.active and not before.active:
            self.events.emit("scim_user_reactivated", tenant=tenant, user=after)
        return after

    # -- groups --------------------------------------------------------------------------------

    def create_group(self, tenant: Tenant, data: Mapping[str, Any], members: Sequence[Member]) -> GroupRecord:
        """POST /Groups."""
        group = self.backend.create_group(tenant, data, members)
        self.events.emit("scim_group_changed", tenant=tenant, group=group, group_id=group.id, action="created")
        if members:
            self.events.emit("scim_members_changed", tenant=tenant, group_id=group.id, added=tuple(members), removed=())
        return group

    def get_group(self, tenant: Tenant, group_id: str, *, include_members: bool = True) -> GroupRecord:
        """GET /Groups/{id}."""
        return self.backend.get_group(tenant, group_id, include_members=include_members)

    def list_groups(self, tenant: Tenant, query: ListQuery) -> Page[GroupRecord]:
        """GET /Groups and POST /Groups/.search."""
        self._check_paging(query)
        return self.backend.list_groups(tenant, query)

    def replace_group(
        self,
        tenant: Tenant,
        group_id: str,
        data: Mapping[str, Any],
        members: Sequence[Member],
        *,
        if_match: str | None = None,
    ) -> GroupRecord:
        """PUT /Groups/{id}: attributes and the whole member list are replaced."""

        def write() -> GroupRecord:
            current = self.backend.get_group(tenant, group_id, include_members=False)
            rules.check_if_match(current.version, if_match)
            return self.backend.replace_group(tenant, group_id, data, members, expected_version=current.version)

        group = _retry(write, if_match)
        self.events.emit("scim_group_changed", tenant=tenant, group=group, group_id=group_id, action="updated")
        return group

    def patch_group(
        self,
        tenant: Tenant,
        group_id: str,
        operations: Sequence[PatchOperation],
        *,
        if_match: str | None = None,
        include_members: bool = True,
        profile: ActiveProfile | None = None,
    ) -> GroupRecord:
        """PATCH /Groups/{id}: attribute changes and membership deltas in one atomic backend call.
        The members are never read to compute the change, nor afterwards unless ``include_members``.
        ``operations`` were parsed at the edge; ``profile`` is the request's IdP profile (strict when
        None), under which the new attributes are validated."""
        resource = self.group_resource

        def write() -> tuple[GroupRecord, GroupChanges]:
            current = self.backend.get_group(tenant, group_id, include_members=False)
            rules.check_if_match(current.version, if_match)
            changes = patch.apply_group_patch(dict(current.data), operations, resource=resource, current_id=group_id)
            if changes.data is not None:
                loaded = load_group(_with_schemas(changes.data, resource), profile=profile, resource=resource)
                changes = GroupChanges(
                    data=loaded.data, add=changes.add, remove=changes.remove, clear_members=changes.clear_members
                )
            # Membership deltas commute, so a members-only PATCH needs no version check: concurrent
            # adds to one group must all land. Attribute changes (and an If-Match) are optimistic.
            pinned = changes.data is not None or (if_match is not None and if_match != "*")
            group = self.backend.patch_group(
                tenant,
                group_id,
                changes,
                expected_version=current.version if pinned else None,
                include_members=include_members,
            )
            return group, changes

        group, changes = _retry(write, if_match)
        self.events.emit("scim_group_changed", tenant=tenant, group=group, group_id=group_id, action="updated")
        if changes.add or changes.remove:
            self.events.emit(
                "scim_members_changed", tenant=tenant, group_id=group_id, added=changes.add, removed=changes.remove
            )
        return group

    def delete_group(self, tenant: Tenant, group_id: str, *, if_match: str | None = None) -> None:
        """DELETE /Groups/{id}: the group is really removed; its members are untouched."""

        def delete() -> None:
            current = self.backend.get_group(tenant, group_id, include_members=False)
            rules.check_if_match(current.version, if_match)
            self.backend.delete_group(tenant, group_id, expected_version=current.version)

        _retry(delete, if_match)
        self.events.emit("scim_group_changed", tenant=tenant, group=None, group_id=group_id, action="deleted")


def _retry(action: Callable[[], R], if_match: str | None) -> R:
    """Run a read-check-write; when another writer slipped in between, re-read and retry, unless
    the client pinned a version with If-Match (then the mismatch is the client's 412)."""
    for _ in range(_RETRIES - 1):
        try:
            return action()
        except VersionMismatch:
            if if_match is not None and if_match != "*":
                raise
    return action()


def _with_schemas(document: Mapping[str, Any], resource: ResourceTypeDef) -> dict[str, Any]:
    """A stored document with the ``schemas`` it uses: the core schema and each extension it holds."""
    schemas = [resource.schema.id] + [ext.id for ext, _required in resource.extensions if ext.id in document]
    return {"schemas": schemas, **document}
