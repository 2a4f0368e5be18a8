"""Users and groups in Python dicts, one lock making every call atomic.

Filtering, sorting and paging use the reference evaluator of scim-service over rendered documents,
so this backend agrees with the contract by construction; a real store would compile the filter AST
to its own query language instead. Cursor paging is supported (``capabilities.cursor``).

The product rules (which uniqueness conflict to report, seat admission, member checks and displays,
versions) come from :mod:`scim_service.rules`: this module only finds the records they judge.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scim_service import rules
from scim_service.backend import Backend
from scim_service.errors import InvalidCursor, NotFound
from scim_service.model import (
    Capabilities,
    GroupChanges,
    GroupRecord,
    Member,
    Page,
    Tenant,
    UserRecord,
    holds_seat,
)
from scim_service.query import evaluator
from scim_service.query.ast import ListQuery
from scim_service.schemas.render import render_group, render_user

_BASE_URL = "memory:"  # rendered documents are only filtered, never shown: any base URL does
_CURSOR_PREFIX = "mem1."


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _User:
    id: str
    data: dict[str, Any]
    created: datetime
    last_modified: datetime
    version: int = 1
    deleted: bool = False

    @property
    def active(self) -> bool:
        return bool(self.data.get("active", True)) and not self.deleted


@dataclass
class _Group:
    id: str
    data: dict[str, Any]
    created: datetime
    last_modified: datetime
    version: int = 1
    # Insertion-ordered by member id; ``display`` is the one the client gave (None: computed on read).
    members: dict[str, Member] = field(default_factory=dict)


@dataclass
class _Space:
    """One tenant's data."""

    users: dict[str, _User] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)


class MemoryBackend(Backend):
    """Every tenant's users and groups in memory. Thread-safe; data is lost with the process."""

    name = "memory"
    # One lock makes every call atomic, so racing calls keep the rules (concurrency); the reference
    # evaluator answers every filter and sort, so nothing is declared in filter_operators/sort_attributes.
    capabilities = Capabilities(
        filter=True, sort=True, etag=True, cursor=True, nested_groups=False, max_results=1000, concurrency=True
    )

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._spaces: dict[str, _Space] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MemoryBackend:
        """The memory backend takes no settings."""
        return cls()

    def close(self) -> None:
        """Drop all data."""
        with self._lock:
            self._spaces.clear()

    # -- helpers -------------------------------------------------------------------------------

    def _space(self, tenant: Tenant) -> _Space:
        return self._spaces.setdefault(tenant.id, _Space())

    def _user_groups(self, space: _Space, user_id: str) -> tuple[Member, ...]:
        return tuple(
            Member(value=g.id, type="Group", display=g.data.get("displayName"))
            for g in space.groups.values()
            if user_id in g.members
        )

    def _user_record(self, space: _Space, user: _User, include_groups: bool) -> UserRecord:
        return UserRecord(
            id=user.id,
            data=copy.deepcopy(user.data),
            created=user.created,
            last_modified=user.last_modified,
            version=str(user.version),
            deleted=user.deleted,
            groups=self._user_groups(space, user.id) if include_groups else (),
        )

    @staticmethod
    def _group_record(space: _Space, group: _Group, include_members: bool) -> GroupRecord:
        members = None
        if include_members:
            members = []
            for member in group.members.values():
                data = space.users[member.value].data
                display = rules.member_display(member.display, data.get("displayName"), data.get("userName"))
                members.append(Member(member.value, member.type, display))
        return GroupRecord(
            id=group.id,
            data=copy.deepcopy(group.data),
            created=group.created,
            last_modified=group.last_modified,
            version=str(group.version),
            members=None if members is None else tuple(members),
        )

    @staticmethod
    def _conflict(tenant: Tenant, space: _Space, data: Mapping[str, Any], exclude: str | None) -> None:
        """Find the other users holding this userName or email (a scan, under the lock); the rules judge."""
        keys = rules.user_keys(tenant, data)
        holders = []
        for user in space.users.values():
            if user.id == exclude:
                continue
            name, email = str(user.data.get("userName", "")), rules.primary_email_key(user.data)
            if rules.comparison_key(name) == keys.user_name_lower or (keys.email is not None and email == keys.email):
                holders.append(rules.Holder(user.id, name, email))
        conflict = rules.uniqueness_conflict(keys, holders)
        if conflict is not None:
            raise conflict

    @staticmethod
    def _seats_used(tenant: Tenant, space: _Space) -> int:
        return sum(holds_seat(tenant.seat_policy, active=u.active, deleted=u.deleted) for u in space.users.values())

    def _visible_user(self, space: _Space, user_id: str, *, include_deleted: bool = False) -> _User:
        user = space.users.get(user_id)
        if user is None or (user.deleted and not include_deleted):
            raise NotFound(f"User {user_id!r} not found")
        return user

    def _group(self, space: _Space, group_id: str) -> _Group:
        group = space.groups.get(group_id)
        if group is None:
            raise NotFound(f"Group {group_id!r} not found")
        return group

    def _members(self, space: _Space, members: Sequence[Member]) -> dict[str, Member]:
        """Members checked by the rules, each a user of the tenant that is not soft-deleted."""
        checked = rules.check_members(members, nested_groups=self.capabilities.nested_groups, backend=self.name)
        missing = [m.value for m in checked if m.value not in space.users or space.users[m.value].deleted]
        if missing:
            raise rules.unknown_members(missing)
        return {member.value: member for member in checked}

    def _drop_memberships(self, space: _Space, user_ids: set[str], now: datetime) -> None:
        for group in space.groups.values():
            if user_ids & group.members.keys():
                for user_id in user_ids:
                    group.members.pop(user_id, None)
                group.version += 1
                group.last_modified = now

    def _page(self, docs: list[dict[str, Any]], query: ListQuery) -> tuple[list[str], int, int, str | None]:
        """The ids of the page, the total, the start index and the next cursor."""
        if query.cursor is None:
            page, total = evaluator.evaluate_list(docs, query)
            return [d["id"] for d in page], total, max(query.start_index, 1), None
        offset = 0
        if query.cursor:
            text = query.cursor.removeprefix(_CURSOR_PREFIX)
            if not query.cursor.startswith(_CURSOR_PREFIX) or not text.isdigit():
                raise InvalidCursor(f"The cursor {query.cursor!r} was not issued by the memory backend")
            offset = int(text)
        as_index = ListQuery(
            filter=query.filter,
            sort_by=query.sort_by,
            descending=query.descending,
            start_index=offset + 1,
            count=query.count,
        )
        page, total = evaluator.evaluate_list(docs, as_index)
        following = offset + len(page)
        next_cursor = f"{_CURSOR_PREFIX}{following}" if following < total else None
        return [d["id"] for d in page], total, offset + 1, next_cursor

    @staticmethod
    def _full_precision(document: dict[str, Any], created: datetime, last_modified: datetime) -> dict[str, Any]:
        # Filters on meta dates compare instants at the precision stored, not the milliseconds rendered.
        document["meta"]["created"] = created.isoformat()
        document["meta"]["lastModified"] = last_modified.isoformat()
        return document

    # -- users ---------------------------------------------------------------------------------

    def create_user(self, tenant: Tenant, data: Mapping[str, Any]) -> UserRecord:
        """Insert after the uniqueness and seat checks, under the lock."""
        stored = copy.deepcopy(dict(data))
        with self._lock:
            space = self._space(tenant)
            self._conflict(tenant, space, stored, None)
            if rules.needs_seat_check(tenant, active=rules.document_active(stored)):
                rules.admit_seat(tenant, self._seats_used(tenant, space))
            now = _now()
            user = _User(id=str(uuid.uuid4()), data=stored, created=now, last_modified=now)
            space.users[user.id] = user
            return self._user_record(space, user, include_groups=False)

    def get_user(
        self, tenant: Tenant, user_id: str, *, include_groups: bool = True, include_deleted: bool = False
    ) -> UserRecord:
        """Read one user."""
        with self._lock:
            space = self._space(tenant)
            user = self._visible_user(space, user_id, include_deleted=include_deleted)
            return self._user_record(space, user, include_groups)

    def replace_user(
        self,
        tenant: Tenant,
        user_id: str,
        data: Mapping[str, Any],
        *,
        expected_version: str | None = None,
        undelete: bool = False,
    ) -> UserRecord:
        """Replace the document; a reactivation takes a seat if it did not hold one."""
        stored = copy.deepcopy(dict(data))
        with self._lock:
            space = self._space(tenant)
            user = self._visible_user(space, user_id, include_deleted=undelete)
            rules.check_version(expected_version, user.version, "user")
            self._conflict(tenant, space, stored, user_id)
            deleted = False if undelete else user.deleted
            if rules.needs_seat_check(
                tenant,
                active=rules.document_active(stored),
                deleted=deleted,
                was_active=bool(user.data.get("active", True)),
                was_deleted=user.deleted,
            ):
                rules.admit_seat(tenant, self._seats_used(tenant, space))
            user.data, user.deleted = stored, deleted
            user.version += 1
            user.last_modified = _now()
            return self._user_record(space, user, include_groups=True)

    def delete_user(self, tenant: Tenant, user_id: str, *, hard: bool, expected_version: str | None = None) -> None:
        """Hard delete, or keep the record inactive and deleted; either way it leaves its groups."""
        with self._lock:
            space = self._space(tenant)
            user = self._visible_user(space, user_id)
            rules.check_version(expected_version, user.version, "user")
            now = _now()
            if hard:
                del space.users[user_id]
            else:
                user.data["active"] = False
                user.deleted = True
                user.version += 1
                user.last_modified = now
            self._drop_memberships(space, {user_id}, now)

    def list_users(self, tenant: Tenant, query: ListQuery) -> Page[UserRecord]:
        """Filter, sort and page the tenant's visible users with the reference evaluator."""
        with self._lock:
            space = self._space(tenant)
            visible = [u for u in space.users.values() if not u.deleted]
            docs = [
                self._full_precision(
                    render_user(self._user_record(space, u, include_groups=True), _BASE_URL), u.created, u.last_modified
                )
                for u in visible
            ]
            ids, total, start, next_cursor = self._page(docs, query)
            resources = [self._user_record(space, space.users[i], query.include_groups) for i in ids]
        return Page(resources=resources, total_results=total, start_index=start, next_cursor=next_cursor)

    def count_seats(self, tenant: Tenant) -> int:
        """Seat-holding records under the tenant's policy."""
        with self._lock:
            users = self._space(tenant).users.values()
            return sum(holds_seat(tenant.seat_policy, active=u.active, deleted=u.deleted) for u in users)

    def remove_inactive_users(self, tenant: Tenant, *, inactive_since: datetime | None = None) -> list[str]:
        """Hard-delete inactive and soft-deleted users (last modified before ``inactive_since``)."""
        with self._lock:
            space = self._space(tenant)
            doomed = sorted(
                u.id
                for u in space.users.values()
                if not u.active and (inactive_since is None or u.last_modified < inactive_since)
            )
            for user_id in doomed:
                del space.users[user_id]
            self._drop_memberships(space, set(doomed), _now())
            return doomed

    # -- groups --------------------------------------------------------------------------------

    def create_group(self, tenant: Tenant, data: Mapping[str, Any], members: Sequence[Member]) -> GroupRecord:
        """Insert a group with validated members."""
        with self._lock:
            space = self._space(tenant)
            valid = self._members(space, members)
            self._check_group_name(space, data, None)
            now = _now()
            group = _Group(id=str(uuid.uuid4()), data=copy.deepcopy(dict(data)), created=now, last_modified=now)
            group.members = valid
            space.groups[group.id] = group
            return self._group_record(space, group, include_members=True)

    @staticmethod
    def _check_group_name(space: _Space, data: Mapping[str, Any], group_id: str | None) -> None:
        """A group's displayName is unique per tenant, by its comparison key (``rules.group_name_key``)."""
        key = rules.group_name_key(data.get("displayName"))
        if key is None:
            return
        for other in space.groups.values():
            if other.id != group_id and rules.group_name_key(other.data.get("displayName")) == key:
                raise rules.group_name_conflict(str(data["displayName"]))

    def get_group(self, tenant: Tenant, group_id: str, *, include_members: bool = True) -> GroupRecord:
        """Read one group."""
        with self._lock:
            space = self._space(tenant)
            return self._group_record(space, self._group(space, group_id), include_members)

    def replace_group(
        self,
        tenant: Tenant,
        group_id: str,
        data: Mapping[str, Any],
        members: Sequence[Member],
        *,
        expected_version: str | None = None,
    ) -> GroupRecord:
        """Replace attributes and the member list."""
        with self._lock:
            space = self._space(tenant)
            group = self._group(space, group_id)
            rules.check_version(expected_version, group.version, "group")
            valid = self._members(space, members)  # validate before changing anything
            self._check_group_name(space, data, group_id)
            group.data, group.members = copy.deepcopy(dict(data)), valid
            group.version += 1
            group.last_modified = _now()
            return self._group_record(space, group, include_members=True)

    def patch_group(
        self,
        tenant: Tenant,
        group_id: str,
        changes: GroupChanges,
        *,
        expected_version: str | None = None,
        include_members: bool = True,
    ) -> GroupRecord:
        """Attributes, clear, removals, additions; validated first so a refusal writes nothing."""
        with self._lock:
            space = self._space(tenant)
            group = self._group(space, group_id)
            rules.check_version(expected_version, group.version, "group")
            added = self._members(space, changes.add)
            if changes.data is not None:
                self._check_group_name(space, changes.data, group_id)
                group.data = copy.deepcopy(dict(changes.data))
            if changes.clear_members:
                group.members.clear()
            for member_id in changes.remove:
                group.members.pop(member_id, None)
            for member_id, member in added.items():
                group.members.setdefault(member_id, member)
            group.version += 1
            group.last_modified = _now()
            return self._group_record(space, group, include_members=include_members)

    def delete_group(self, tenant: Tenant, group_id: str, *, expected_version: str | None = None) -> None:
        """Remove the group; its member users are untouched."""
        with self._lock:
            space = self._space(tenant)
            group = self._group(space, group_id)
            rules.check_version(expected_version, group.version, "group")
            del space.groups[group_id]

    def list_groups(self, tenant: Tenant, query: ListQuery) -> Page[GroupRecord]:
        """As :meth:`list_users`, for groups."""
        with self._lock:
            space = self._space(tenant)
            docs = [
                self._full_precision(
                    render_group(self._group_record(space, g, include_members=True), _BASE_URL),
                    g.created,
                    g.last_modified,
                )
                for g in space.groups.values()
            ]
            ids, total, start, next_cursor = self._page(docs, query)
            resources = [self._group_record(space, space.groups[i], query.include_members) for i in ids]
        return Page(resources=resources, total_results=total, start_index=start, next_cursor=next_cursor)
