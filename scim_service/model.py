"""Plain data that crosses the line between the lifecycle and a backend.

No Flask and no marshmallow here: a backend author reads these dataclasses and nothing else. Resource
attributes travel as the SCIM JSON document (a mapping of attribute name to value, with the enterprise
extension under its schema URN), already validated and normalised by the schemas at the edge.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class SeatPolicy(enum.StrEnum):
    """Which user records of an organization hold a seat."""

    ALL = "all"  # every stored record, active or not (the default: free seats by removing inactive users)
    ACTIVE = "active"  # only active, not deleted users; deactivation frees the seat


class MatchPolicy(enum.StrEnum):
    """Which attributes make a POST /Users match an existing user (for 409 or reactivation)."""

    EMAIL = "email"  # userName (case-insensitive) or primary email (the default)
    USERNAME = "username"  # userName only, as RFC 7643 has it


class DeletePolicy(enum.StrEnum):
    """What DELETE /Users/{id} does (setting ``SCIM_USER_DELETE``)."""

    SOFT = "soft"  # kept with active=false, gone to SCIM until a POST reactivates it
    DEACTIVATE = "deactivate"  # only active=false, the user stays visible
    HARD = "hard"  # the record is removed


@dataclass(frozen=True)
class Tenant:
    """An organization: the unit of isolation. Every backend call is scoped to one tenant."""

    id: str
    name: str
    max_seats: int | None = None  # None: unlimited
    seat_policy: SeatPolicy = SeatPolicy.ALL
    match_policy: MatchPolicy = MatchPolicy.EMAIL


def holds_seat(policy: SeatPolicy, *, active: bool, deleted: bool) -> bool:
    """Whether a user record in this state holds one of its organization's seats.

    The one place the seat rule lives; backends call it to know when a write must check the limit:
    a create of a seat-holding record, or an update that turns a record into a seat holder.
    """
    if policy is SeatPolicy.ALL:
        return True
    return active and not deleted


def primary_email(data: Mapping[str, Any]) -> str | None:
    """The user's matching email as the client sent it: the ``emails`` value marked primary, else the
    first one.

    The one place this rule lives: under ``MatchPolicy.EMAIL`` backends refuse a second user with the
    same primary email, and the lifecycle reactivates an inactive user that a POST matches by it; they
    compare its :func:`scim_service.rules.primary_email_key`.
    """
    emails = data.get("emails")
    if not isinstance(emails, list):
        return None
    candidates = [e for e in emails if isinstance(e, Mapping) and isinstance(e.get("value"), str) and e["value"]]
    chosen = next((e for e in candidates if e.get("primary") is True), candidates[0] if candidates else None)
    return None if chosen is None else str(chosen["value"])


@dataclass(frozen=True)
class Member:
    """One member of a group (RFC 7643 §4.2 ``members``); ``value`` is the member's id."""

    value: str
    type: str = "User"
    display: str | None = None


@dataclass(frozen=True)
class UserRecord:
    """A stored user as a backend returns it.

    ``data`` holds the SCIM attributes (``userName``, ``name``, ``emails``, ``active``, the enterprise
    extension under its URN, ...) without ``id``, ``meta``, ``schemas`` and ``groups``.
    ``groups`` is filled only when the caller asked for it.
    """

    id: str
    data: Mapping[str, Any]
    created: datetime
    last_modified: datetime
    version: str
    deleted: bool = False
    groups: tuple[Member, ...] = ()

    @property
    def user_name(self) -> str:
        return str(self.data.get("userName", ""))

    @property
    def active(self) -> bool:
        return bool(self.data.get("active", True)) and not self.deleted


@dataclass(frozen=True)
class GroupRecord:
    """A stored group. ``data`` holds ``displayName`` and ``externalId``; members come separately.

    ``members`` is None when the caller asked the backend not to read them.
    """

    id: str
    data: Mapping[str, Any]
    created: datetime
    last_modified: datetime
    version: str
    members: tuple[Member, ...] | None = ()

    @property
    def display_name(self) -> str:
        return str(self.data.get("displayName", ""))


@dataclass(frozen=True)
class GroupChanges:
    """One atomic change to a group, as PATCH produces it: attribute changes and membership deltas.

    ``data`` is the group's new attribute document, or None when only members change.
    ``clear_members`` drops every member before ``add`` is applied (``replace members``).
    """

    data: Mapping[str, Any] | None = None
    add: tuple[Member, ...] = ()
    remove: tuple[str, ...] = ()
    clear_members: bool = False


T = TypeVar("T", UserRecord, GroupRecord)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: the resources, the exact count matching the filter, the next cursor."""

    resources: list[T]
    total_results: int
    start_index: int = 1
    next_cursor: str | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do. Feeds /ServiceProviderConfig and lets the conformance kit skip tests.

    Every field is a declaration the kit gates on (``scim_service.testing.kit.requirements``): a test
    of something a backend declares it lacks skips, and the skip reason quotes the declaration.
    """

    filter: bool = True
    """GET with ``filter`` is supported (advertised in /ServiceProviderConfig)."""

    sort: bool = True
    """``sortBy``/``sortOrder`` are supported (advertised in /ServiceProviderConfig)."""

    etag: bool = True
    """Every write gives the resource a new version and a stale ``expected_version`` is refused."""

    cursor: bool = False
    """Cursor paging (RFC 9865): ``ListQuery.cursor`` and ``Page.next_cursor``."""

    nested_groups: bool = False
    """A group may be a member of a group (stored with type ``Group``)."""

    max_results: int = 1000
    """The largest page the backend returns; the server advertises the smaller of this and its own limit."""

    custom_schemas: bool = False
    """Stores attributes of operator-declared schema extensions (``SCIM_SCHEMA_EXTENSIONS_FILE``) and
    filters, sorts and returns them like the built-in ones."""

    filter_operators: Mapping[str, Mapping[str, Collection[str]]] = field(default_factory=dict)
    """Where filtering is limited: resource type (``"User"``, ``"Group"``) -> ``{path: operators}``.

    A resource type listed here is filtered only on the listed paths, with the listed operators
    (``eq ne co sw ew gt ge lt le pr``); any other filter on it must be refused with ``InvalidFilter``.
    A resource type left out takes every filter. A path is ``attr`` or ``attr.subAttr`` as resolved,
    an extension attribute prefixed with its schema URN and ``:``; names compare case-insensitively.
    """

    sort_attributes: Mapping[str, Collection[str]] = field(default_factory=dict)
    """Where sorting is limited: resource type -> the paths ``sortBy`` may name (as in
    :attr:`filter_operators`); any other must be refused with ``InvalidValue``. A resource type left
    out sorts by every path."""

    concurrency: bool = True
    """The backend may be called from several threads and processes at once, and keeps uniqueness, the
    seat limit and versions atomic when calls race. False only for a backend that must never serve more
    than one thread; the kit then skips its concurrency tests."""

    unique_group_display_name: bool = True
    """Kept so plugins that set it still load; nothing reads it. A group's displayName is unique per
    tenant (case-insensitively) on every backend: the kit's uniqueness tests require it."""

    extra: Mapping[str, Any] = field(default_factory=dict)
    """Anything else a backend wants to say about itself (plugin-private; nothing in the core reads it)."""
