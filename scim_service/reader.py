"""Read access for host code: the users and groups of one organization, without HTTP.

A host that embeds the service asks ``ext.users("acme").find(user_name="alice")`` or
``ext.users("acme").is_active(user_id)`` from its own views and jobs. The readers go through the
same lifecycle as the API (so soft-deleted users are not found, as ``GET /Users/{id}`` does not find
them) and take filters in the SCIM filter language (RFC 7644 §3.4.2.2), resolved against the app's
resource types. They never write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Generic, TypeVar

from scim_service.errors import NotFound
from scim_service.lifecycle import Lifecycle
from scim_service.model import GroupRecord, Member, Page, Tenant, UserRecord
from scim_service.query.ast import ListQuery
from scim_service.query.parser import parse_filter
from scim_service.query.resolve import resolve_filter
from scim_service.schemas.definitions import ResourceTypeDef

R = TypeVar("R", UserRecord, GroupRecord)

_PAGE = 200  # resources per backend read when iterating


def eq_filter(attribute: str, value: str) -> str:
    """``attribute eq "value"`` with the value quoted as a SCIM (JSON) string literal."""
    return f"{attribute} eq {json.dumps(value)}"


class _Reader(Generic[R]):
    def __init__(self, lifecycle: Lifecycle, tenant: Tenant, resource: ResourceTypeDef) -> None:
        self.lifecycle = lifecycle
        self.tenant = tenant
        self.resource = resource

    def _query(self, filter: str | None, start_index: int, count: int) -> ListQuery:
        parsed = resolve_filter(parse_filter(filter), self.resource) if filter else None
        return ListQuery(filter=parsed, start_index=start_index, count=count)

    def _list(self, query: ListQuery) -> Page[R]:
        raise NotImplementedError

    def list(self, filter: str | None = None, *, start_index: int = 1, count: int = 100) -> Page[R]:
        """One page of the resources matching ``filter`` (a SCIM filter string), as ``GET ?filter=`` pages."""
        return self._list(self._query(filter, start_index, count))

    def iter(self, filter: str | None = None) -> Iterator[R]:
        """Every resource matching ``filter``, read a page at a time."""
        start = 1
        while True:
            page = self._list(self._query(filter, start, _PAGE))
            yield from page.resources
            start += len(page.resources)
            if not page.resources or start > page.total_results:
                return

    def _one(self, filter: str) -> R | None:
        page = self._list(self._query(filter, 1, 2))
        if len(page.resources) > 1:
            raise LookupError(f"more than one resource matches {filter}")
        return page.resources[0] if page.resources else None


class UserReader(_Reader[UserRecord]):
    """The users of one organization. ``get`` and ``find`` answer None when there is no such user."""

    def _list(self, query: ListQuery) -> Page[UserRecord]:
        return self.lifecycle.list_users(self.tenant, query)

    def get(self, user_id: str) -> UserRecord | None:
        """The user with this id and the groups it belongs to, or None (also when soft-deleted)."""
        try:
            return self.lifecycle.get_user(self.tenant, user_id)
        except NotFound:
            return None

    def find(
        self, *, user_name: str | None = None, external_id: str | None = None, email: str | None = None
    ) -> UserRecord | None:
        """The user whose userName, externalId or email (exactly one of them) is the given value, or None.

        userName compares case-insensitively, as in the API. ``LookupError`` when an email is shared.
        """
        given = [(a, v) for a, v in (("userName", user_name), ("externalId", external_id), ("emails.value", email))]
        chosen = [(a, v) for a, v in given if v is not None]
        if len(chosen) != 1:
            raise TypeError("find() takes exactly one of user_name, external_id, email")
        return self._one(eq_filter(*chosen[0]))

    def is_active(self, user_id: str) -> bool:
        """True when the user exists, is not soft-deleted and is not deactivated (``active`` false)."""
        user = self.get(user_id)
        return user is not None and user.active


class GroupReader(_Reader[GroupRecord]):
    """The groups of one organization. ``get`` and ``find`` answer None when there is no such group."""

    def _list(self, query: ListQuery) -> Page[GroupRecord]:
        return self.lifecycle.list_groups(self.tenant, query)

    def get(self, group_id: str, *, include_members: bool = True) -> GroupRecord | None:
        """The group with this id (with its members unless ``include_members`` is False), or None."""
        try:
            return self.lifecycle.get_group(self.tenant, group_id, include_members=include_members)
        except NotFound:
            return None

    def find(self, *, display_name: str | None = None, external_id: str | None = None) -> GroupRecord | None:
        """The group whose displayName or externalId (exactly one of them) is the given value, or None."""
        chosen = [(a, v) for a, v in (("displayName", display_name), ("externalId", external_id)) if v is not None]
        if len(chosen) != 1:
            raise TypeError("find() takes exactly one of display_name, external_id")
        return self._one(eq_filter(*chosen[0]))

    def members(self, group_id: str) -> tuple[Member, ...]:
        """The group's members (empty when there is no such group)."""
        group = self.get(group_id)
        return tuple(group.members or ()) if group is not None else ()
