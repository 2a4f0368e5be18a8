"""The storage contract: one :class:`Backend` object, chosen by ``SCIM_BACKEND``, stores users and groups.

A backend knows storage and nothing of HTTP, Flask or marshmallow. It receives validated SCIM
documents and a :class:`~scim_service.query.ast.ListQuery`, and returns the dataclasses of
:mod:`scim_service.model`. The product rules that must hold under concurrency are the backend's to
enforce atomically, because only the store can: userName uniqueness per tenant, the seat limit and
optimistic versions. Everything else (reactivation, PATCH, projection) lives in the lifecycle.

Shared rules for every method:

* ``tenant`` scopes the call. A resource of another tenant does not exist for it (``NotFound``), never
  matches a filter, and cannot be made a group member (``InvalidValue``).
* A soft-deleted user (``deleted=True``) is invisible to every method unless the method takes
  ``include_deleted`` and it is set: get answers ``NotFound``, lists skip it, it is in no group.
  It still holds its userName (a create with that name raises ``UniquenessConflict`` naming it) and,
  under ``SeatPolicy.ALL``, its seat.
* ``expected_version``, when given, must equal the stored version or the call raises
  ``VersionMismatch`` and writes nothing. Every write gives the resource a new version.
* A method that raises has written nothing.
* ``Unavailable`` when the store cannot be reached; never a driver exception.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from scim_service.errors import NotFound
from scim_service.model import USER_SCHEMA, Capabilities, GroupChanges, GroupRecord, Member, Page, Tenant, UserRecord
from scim_service.query.ast import AttrPath, Compare, ListQuery

# A progress callback of a long job: (what, how many so far).
Progress = Callable[[str, int], None]
# ``active eq false`` as the resolver produces it, for the default implementations below.
_INACTIVE = Compare(AttrPath("active", schema=USER_SCHEMA, type="boolean"), "eq", False)

# The tenant :meth:`Backend.ping` asks about: no organization has this id (ids are UUIDs).
READINESS_TENANT = Tenant(id="scim-readiness-probe", name="scim-readiness-probe")


class Backend(abc.ABC):
    """Abstract storage of the users and groups of every tenant.

    Subclasses set :attr:`name` (the value of ``SCIM_BACKEND`` that selects them) and
    :attr:`capabilities`, implement :meth:`from_config` and every abstract method, and register the
    class through the ``scim_register_backends`` hook of a plugin in the ``scim_service``
    entry-point group.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: True when :meth:`replace_user` returns the user as stored, its ``groups`` included (read in the
    #: write's own transaction): the service then answers with it instead of reading the user again.
    replace_returns_groups: ClassVar[bool] = False

    # -- life of the backend -------------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: Mapping[str, Any]) -> Backend:
        """Build the backend from the service settings (the ``SCIM_*`` keys of the app config)."""

    def migrate(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Create or upgrade the store's schema in place (``scim-service db upgrade`` calls it)."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections and pools. The backend is not used afterwards."""

    def ping(self) -> None:
        """Return when the store answers; raise (``Unavailable`` preferably) when it does not.

        ``/readyz`` calls it under a timeout, so it may block. The default counts the seats of a tenant
        that does not exist, which every backend answers from its store with 0; a backend with a
        cheaper round trip (a ``SELECT 1``, an LDAP root DSE read) may override it.
        """
        self.count_seats(READINESS_TENANT)

    # -- users ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_user(self, tenant: Tenant, data: Mapping[str, Any]) -> UserRecord:
        """Store a new user and return it with a fresh id, ``created``, ``last_modified`` and version.

        Atomically with the insert:

        * ``UniquenessConflict(existing_id=...)`` if a record of the tenant (active, inactive or
          soft-deleted) has the same ``userName`` key (:func:`scim_service.rules.comparison_key`), or,
          when ``tenant.match_policy`` is ``EMAIL``, the same primary email key
          (:func:`scim_service.rules.primary_email_key`; the primary email is the ``emails`` value
          marked primary, else the first one).
        * ``SeatLimitReached`` if the new record holds a seat (:func:`~scim_service.model.holds_seat`)
          and the tenant already has ``tenant.max_seats`` seat-holding records.

        Two concurrent calls with the same userName: exactly one succeeds.
        """

    @abc.abstractmethod
    def get_user(
        self, tenant: Tenant, user_id: str, *, include_groups: bool = True, include_deleted: bool = False
    ) -> UserRecord:
        """Return the user, with ``groups`` filled when ``include_groups``. ``NotFound`` otherwise."""

    @abc.abstractmethod
    def replace_user(
        self,
        tenant: Tenant,
        user_id: str,
        data: Mapping[str, Any],
        *,
        expected_version: str | None = None,
        undelete: bool = False,
    ) -> UserRecord:
        """Replace the user's attributes with ``data`` (the whole document) and return the result.

        ``undelete`` lets the call reach a soft-deleted record and makes it visible again (the
        reactivation of the product rules); without it a soft-deleted user is ``NotFound``.
        Raises ``UniquenessConflict`` if the new userName (or primary email, under the email match
        policy) belongs to another record, ``SeatLimitReached`` if the record did not hold a seat
        and now would while the tenant is full, ``VersionMismatch`` as described in the module.
        Group memberships are kept.
        """

    @abc.abstractmethod
    def delete_user(self, tenant: Tenant, user_id: str, *, hard: bool, expected_version: str | None = None) -> None:
        """Delete the user: ``hard`` removes the record and its memberships; otherwise a soft delete
        keeps the record with ``active`` false and ``deleted`` true, and removes its memberships.
        ``NotFound`` if the user is absent or already soft-deleted."""

    @abc.abstractmethod
    def list_users(self, tenant: Tenant, query: ListQuery) -> Page[UserRecord]:
        """Return the users matching ``query.filter`` (soft-deleted users never match), sorted by
        ``query.sort_by`` (ties and unsorted lists in a stable order, missing values last when
        ascending), the page at ``query.start_index`` (1-based) of at most ``query.count`` resources,
        and ``total_results``, the exact number of matches. Filtering, sorting and paging run in the
        store. With ``query.cursor`` set (and the ``cursor`` capability), page by cursor instead and
        return ``next_cursor``; an unknown cursor raises ``InvalidCursor``."""

    @abc.abstractmethod
    def count_seats(self, tenant: Tenant) -> int:
        """The number of records of the tenant that hold a seat under ``tenant.seat_policy``."""

    @abc.abstractmethod
    def remove_inactive_users(self, tenant: Tenant, *, inactive_since: datetime | None = None) -> list[str]:
        """Hard-delete every inactive or soft-deleted user of the tenant (last modified before
        ``inactive_since`` when given) with their memberships; return their ids."""

    # -- groups --------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_group(self, tenant: Tenant, data: Mapping[str, Any], members: Sequence[Member]) -> GroupRecord:
        """Store a new group with these members. ``InvalidValue`` if a member is not a visible
        user of the tenant (or a group, with the ``nested_groups`` capability)."""

    @abc.abstractmethod
    def get_group(self, tenant: Tenant, group_id: str, *, include_members: bool = True) -> GroupRecord:
        """Return the group; ``members`` is None unless ``include_members``. ``NotFound`` otherwise."""

    @abc.abstractmethod
    def replace_group(
        self,
        tenant: Tenant,
        group_id: str,
        data: Mapping[str, Any],
        members: Sequence[Member],
        *,
        expected_version: str | None = None,
    ) -> GroupRecord:
        """Replace the group's attributes and its whole member list (PUT). Errors as for create."""

    @abc.abstractmethod
    def patch_group(
        self,
        tenant: Tenant,
        group_id: str,
        changes: GroupChanges,
        *,
        expected_version: str | None = None,
        include_members: bool = True,
    ) -> GroupRecord:
        """Apply one PATCH atomically: new attributes if ``changes.data``, then ``clear_members``, then
        the removals, then the additions (so the lifecycle passes disjoint ``add`` and ``remove``).

        The cost must follow the size of the change, not of the group: with ``include_members`` False
        the returned group has ``members`` None and the member list is never read. Adding a present
        member and removing an absent one are no-ops, not errors. ``InvalidValue`` if an added member
        is not a visible user of the tenant.
        """

    @abc.abstractmethod
    def delete_group(self, tenant: Tenant, group_id: str, *, expected_version: str | None = None) -> None:
        """Remove the group and its memberships (the member users are untouched)."""

    @abc.abstractmethod
    def list_groups(self, tenant: Tenant, query: ListQuery) -> Page[GroupRecord]:
        """As :meth:`list_users`, for groups; ``members`` read only when ``query.include_members``."""

    # -- administration (with defaults built from the methods above) -----------------------------

    def list_inactive_users(self, tenant: Tenant, *, inactive_since: datetime | None = None) -> list[UserRecord]:
        """The users :meth:`remove_inactive_users` would remove with the same arguments, without
        removing them (``scim-service users remove-inactive --dry-run``, ``users list --inactive``),
        ordered by id; ``groups`` need not be filled.

        The default pages through :meth:`list_users` with ``active eq false``. Soft-deleted users are
        invisible to that method, so a backend that keeps soft-deleted records should override this to
        include them (the ``sql`` backend does).
        """
        found: list[UserRecord] = []
        page_size = max(1, self.capabilities.max_results)
        start = 1
        while True:
            query = ListQuery(filter=_INACTIVE, start_index=start, count=page_size, include_groups=False)
            page = self.list_users(tenant, query)
            found.extend(
                u
                for u in page.resources
                if not u.active and (inactive_since is None or u.last_modified < inactive_since)
            )
            start += len(page.resources)
            if not page.resources or start > page.total_results:
                return sorted(found, key=lambda u: u.id)

    def remove_tenant_data(self, tenant: Tenant, *, progress: Progress | None = None) -> dict[str, int]:
        """Remove every group and every user (active, inactive or soft-deleted) of the tenant, for
        ``scim-service orgs delete``; return ``{"groups": n, "users": m}``. ``progress`` hears running
        totals.

        Not atomic: a failure part-way leaves the rest, and calling it again finishes the work. The
        default is built from the contract (groups deleted one by one, visible users hard-deleted one
        by one, then :meth:`remove_inactive_users` for the soft-deleted rest), so it works for every
        backend; a backend with a cheaper way (one DELETE per table) overrides it.
        """
        page_size = max(1, self.capabilities.max_results)
        removed = {"groups": 0, "users": 0}
        seen: set[str] = set()

        def stuck(ids: set[str]) -> None:
            # Always reading the first page again works only if deletes empty it; never loop forever.
            if ids & seen:
                raise RuntimeError(
                    f"the {self.name!r} backend still lists resources it deleted: {sorted(ids & seen)[:3]}"
                )
            seen.update(ids)

        while True:
            groups = self.list_groups(tenant, ListQuery(count=page_size, include_members=False)).resources
            if not groups:
                break
            stuck({g.id for g in groups})
            for group in groups:
                try:
                    self.delete_group(tenant, group.id)
                except NotFound:  # deleted meanwhile by someone else
                    continue
                removed["groups"] += 1
            if progress is not None:
                progress("groups removed", removed["groups"])
        while True:
            users = self.list_users(tenant, ListQuery(count=page_size, include_groups=False)).resources
            if not users:
                break
            stuck({u.id for u in users})
            for user in users:
                try:
                    self.delete_user(tenant, user.id, hard=True)
                except NotFound:
                    continue
                removed["users"] += 1
            if progress is not None:
                progress("users removed", removed["users"])
        removed["users"] += len(self.remove_inactive_users(tenant))
        if progress is not None:
            progress("users removed", removed["users"])
        return removed
