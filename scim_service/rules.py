"""The product rules a backend applies inside its atomic writes, written once for every backend.

A backend knows its store: it finds, atomically, who holds a userName, how many seats are taken, which
member ids are users of the tenant. What those answers mean is decided here, so that every backend
reports the same conflict with the same message, admits the same writes past the seat limit, gives
members the same default display and checks versions the same way. A plugin author writes the queries
and calls these functions; no function here touches a store, Flask or SQL.

The rules, and the functions that state them:

* **Comparison keys**: :func:`comparison_key` is how userName, email values and a group's displayName
  are compared, for uniqueness and for a filter's ``eq`` (docs/rules.md states it). Stored values stay
  as the client sent them; only the keys a backend indexes or compares are normalised.
* **Uniqueness** (per tenant): :func:`user_keys` says what a user is matched by (the key of its
  userName; of its primary email too under ``MatchPolicy.EMAIL``); the backend finds the other
  records holding those keys and :func:`uniqueness_conflict` picks the conflict to report (the
  userName holder first) with its message. :func:`duplicate_user_name` is the conflict when the store
  only says "taken" (a unique index won a race). :func:`active_match_conflict` is the 409 a POST gets
  when its match is an active user; :func:`group_name_conflict` a taken group displayName.
* **Seats**: :func:`~scim_service.model.holds_seat` says which records hold a seat;
  :func:`needs_seat_check` whether a write must pass admission (the record takes a seat it did not
  hold); :func:`admit_seat`, given the number of seats in use, refuses it at the limit.
* **Members**: :func:`check_members` de-duplicates a member list and refuses non-user members
  (without nested groups) and displays over :data:`MAX_MEMBER_DISPLAY` characters;
  :func:`unknown_members` is the error for ids that are not users of the tenant;
  :func:`member_display` keeps a display the client gave, else :func:`default_member_display`.
* **Versions**: :func:`check_version` for ``expected_version``; :func:`check_if_match` for the
  client's If-Match (the lifecycle's).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scim_service.errors import InvalidValue, SeatLimitReached, UniquenessConflict, VersionMismatch
from scim_service.model import MatchPolicy, Member, Tenant, UserRecord, holds_seat, primary_email

__all__ = [
    "MAX_MEMBER_DISPLAY",
    "Holder",
    "UserKeys",
    "active_match_conflict",
    "admit_seat",
    "check_if_match",
    "check_members",
    "check_version",
    "comparison_key",
    "default_member_display",
    "document_active",
    "duplicate_user_name",
    "group_name_conflict",
    "holds_seat",
    "member_display",
    "needs_seat_check",
    "primary_email",
    "primary_email_key",
    "uniqueness_conflict",
    "unknown_members",
    "user_keys",
]

MAX_MEMBER_DISPLAY = 512
"""The longest member ``display`` a group keeps (characters); longer is ``InvalidValue``."""


# -- comparison keys ------------------------------------------------------------------------------------

# Zero-width characters that carry no meaning anywhere in a name: removed wherever they are.
_REMOVED_ANYWHERE = str.maketrans(dict.fromkeys("\u200b\u2060\ufeff"))
# Whitespace (str.isspace: space, tab, NBSP, the U+2000 spaces, ideographic space, ...) and every
# zero-width character, removed at both ends. ZWNJ/ZWJ (U+200C/U+200D) stay inside: they change how
# Persian, Indic scripts and emoji sequences read, so two names differing by one may be different names.
_EDGES = re.compile(r"^[\s\u200b\u200c\u200d\u2060\ufeff]+|[\s\u200b\u200c\u200d\u2060\ufeff]+$")


def comparison_key(text: str) -> str:
    """The key two userNames, two email values or two group displayNames are compared by: equal keys
    are the same name (uniqueness) and a filter's ``eq`` matches when the keys are equal.

    In order: Unicode NFKC (composed and compatibility forms: ``e`` + U+0301 is ``é``, fullwidth
    ``b`` (U+FF42) is ``b``, the ligature ``ﬁ`` is ``fi``, NBSP is a space), ``str.casefold()`` (``ß`` is
    ``ss``), NFKC again (casefolding can leave a decomposed form); then U+200B, U+2060 and U+FEFF are
    removed everywhere, and whitespace and zero-width characters (U+200B, U+200C, U+200D, U+2060,
    U+FEFF) at both ends. Whitespace inside is kept as it is. The key of a key is itself.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _EDGES.sub("", folded.translate(_REMOVED_ANYWHERE))


def primary_email_key(data: Mapping[str, Any]) -> str | None:
    """The comparison key of the user's primary email (:func:`~scim_service.model.primary_email`), or
    None when it has none (or its key is empty)."""
    email = primary_email(data)
    return (comparison_key(email) or None) if email is not None else None


# -- uniqueness -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserKeys:
    """What a user is matched by within its tenant: its userName (by :func:`comparison_key`) and,
    under ``MatchPolicy.EMAIL``, its primary email (its comparison key; None when it has none or under
    ``MatchPolicy.USERNAME``)."""

    user_name: str
    email: str | None = None

    @property
    def user_name_lower(self) -> str:
        """The userName as the comparison sees it: its :func:`comparison_key` (the name is historical)."""
        return comparison_key(self.user_name)


@dataclass(frozen=True)
class Holder:
    """Another record of the tenant that the store found holding the new user's userName or email."""

    id: str
    user_name: str
    email: str | None = None


def user_keys(tenant: Tenant, data: Mapping[str, Any]) -> UserKeys:
    """The keys of the user document ``data`` under the tenant's match policy.

    Raises ``InvalidValue`` when ``userName`` is missing, not a string or blank (the schemas refuse
    that before a backend is called; this keeps a backend called directly honest).
    """
    user_name = data.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise InvalidValue("userName is required and must be a non-empty string")
    if not comparison_key(user_name):
        raise InvalidValue("userName must hold a visible character (not only spaces or zero-width characters)")
    email = primary_email_key(data) if tenant.match_policy is MatchPolicy.EMAIL else None
    return UserKeys(user_name, email)


def keeps_keys(keys: UserKeys, user_name_lower: str, email_lower: str | None) -> bool:
    """Whether a write of a visible user keeps the keys the record already holds (the comparison keys
    of its stored ``userName`` and primary email): then it claims nothing new and cannot create a
    uniqueness conflict, so the store need not look for other holders (a PATCH of ``active``, say)."""
    return keys.user_name_lower == user_name_lower and (keys.email is None or keys.email == email_lower)


def uniqueness_conflict(keys: UserKeys, holders: Iterable[Holder]) -> UniquenessConflict | None:
    """The conflict a write of a user with ``keys`` has with the other records ``holders``, or None.

    ``holders`` are the other records of the tenant (active, inactive or soft-deleted; never the
    record being written) that the store found with the same userName key or, when
    ``keys.email`` is set, the same primary email. A userName holder is reported first; the conflict
    names it in ``existing_id`` (so the lifecycle can reactivate it), never to the client.
    """
    email_holder: Holder | None = None
    for holder in holders:
        if comparison_key(holder.user_name) == keys.user_name_lower:
            return UniquenessConflict(
                f"userName {keys.user_name!r} is already taken in this organization "
                "(compared ignoring case, Unicode form and surrounding spaces)",
                existing_id=holder.id,
            )
        if email_holder is None and keys.email is not None and comparison_key(holder.email or "") == keys.email:
            email_holder = holder
    if email_holder is None:
        return None
    return UniquenessConflict(
        f"The primary email {keys.email!r} already belongs to another user of this organization",
        existing_id=email_holder.id,
    )


def duplicate_user_name(user_name: str) -> UniquenessConflict:
    """The conflict when the store refused a userName (a unique index) and the holder cannot be named."""
    return UniquenessConflict(f"userName {user_name!r} is already taken in this organization")


def active_match_conflict(existing: UserRecord, data: Mapping[str, Any]) -> UniquenessConflict:
    """The 409 a POST /Users gets when the user it matches is active: never auto-link, never duplicate."""
    user_name = str(data.get("userName", ""))
    if comparison_key(existing.user_name) == comparison_key(user_name):
        return UniquenessConflict(f"A user with userName '{user_name}' already exists in this organization.")
    return UniquenessConflict(
        "A user with the same primary email already exists in this organization; "
        "update that user with PUT or PATCH instead of creating a duplicate."
    )


def group_name_key(display_name: str | None) -> str | None:
    """A group's displayName as uniqueness compares it within a tenant: its :func:`comparison_key`,
    like userName. None (no displayName) never conflicts."""
    return comparison_key(display_name) if display_name is not None else None


def group_name_conflict(display_name: str, why: str | None = None) -> UniquenessConflict:
    """The conflict of a group whose displayName (by :func:`comparison_key`) another group holds;
    ``why`` adds the backend's reason in parentheses (the ldap backend names groups by displayName)."""
    reason = f" ({why})" if why else ""
    return UniquenessConflict(f"A group named {display_name!r} already exists in this organization{reason}")


# -- seats ----------------------------------------------------------------------------------------------


def document_active(data: Mapping[str, Any]) -> bool:
    """Whether a user document is active: ``active`` absent means active (RFC 7643 leaves it optional).

    Raises ``InvalidValue`` for an ``active`` that is not a boolean.
    """
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise InvalidValue(f"active must be a boolean, got {active!r}")
    return active


def needs_seat_check(
    tenant: Tenant,
    *,
    active: bool,
    deleted: bool = False,
    was_active: bool | None = None,
    was_deleted: bool = False,
) -> bool:
    """Whether a user write must pass seat admission (:func:`admit_seat`).

    It must when the tenant has a limit and the record holds a seat after the write
    (``active``/``deleted``) but did not before (``was_active``/``was_deleted``; ``was_active`` None
    for a create). Under ``SeatPolicy.ALL`` only a create takes a seat; under ``SeatPolicy.ACTIVE``
    also a reactivation or an undelete.
    """
    if tenant.max_seats is None or not holds_seat(tenant.seat_policy, active=active, deleted=deleted):
        return False
    if was_active is None:
        return True
    return not holds_seat(tenant.seat_policy, active=was_active, deleted=was_deleted)


def admit_seat(tenant: Tenant, seats_used: int) -> None:
    """Seat admission: ``seats_used`` records already hold a seat (the count the store made, in the
    write's transaction); ``SeatLimitReached`` (403) when that is ``max_seats`` or more."""
    if tenant.max_seats is not None and seats_used >= tenant.max_seats:
        raise SeatLimitReached(tenant.max_seats)


# -- members --------------------------------------------------------------------------------------------


def check_members(members: Iterable[Member], *, nested_groups: bool = False, backend: str = "") -> list[Member]:
    """A group's members as a backend stores them: one per id (the first mention wins), in order.

    ``InvalidValue`` for a member whose type is not User (nor Group, when the backend declares
    ``nested_groups``), and for a ``display`` longer than :data:`MAX_MEMBER_DISPLAY`. ``backend``
    names the backend in the message. The ids are not looked up here: that is the store's
    (:func:`unknown_members` is the error for those it does not find).
    """
    allowed = ("user", "group") if nested_groups else ("user",)
    out: dict[str, Member] = {}
    for member in members:
        kind = (member.type or "User").lower()
        if kind not in allowed:
            who = f"the {backend} backend" if backend else "this backend"
            raise InvalidValue(
                f"Member {member.value!r} has type {member.type!r}: {who} only takes users as group members "
                "(no nested groups)"
            )
        if member.value in out:
            continue
        if member.display is not None and len(member.display) > MAX_MEMBER_DISPLAY:
            raise InvalidValue(f"Member {member.value!r}: display is longer than {MAX_MEMBER_DISPLAY} characters")
        out[member.value] = Member(member.value, kind.capitalize(), member.display)
    return list(out.values())


def unknown_members(ids: Sequence[str]) -> InvalidValue:
    """The error for member ids that are not visible users (or groups) of the tenant."""
    return InvalidValue("These group members are not users of this organization: " + ", ".join(repr(i) for i in ids))


def default_member_display(display_name: str | None, user_name: str | None) -> str | None:
    """The display of a member the client gave none: the user's displayName, else its userName."""
    return display_name or user_name or None


def member_display(given: str | None, display_name: str | None, user_name: str | None) -> str | None:
    """A member's display: the one the client gave (RFC 7643 §4.2 keeps it as sent), else the default."""
    return given if given is not None else default_member_display(display_name, user_name)


# -- versions -------------------------------------------------------------------------------------------


def check_version(expected: str | None, current: str | int, what: str) -> None:
    """A backend's optimistic check: ``VersionMismatch`` (412) when ``expected`` is given and is not
    the stored version ``current`` of the ``what`` ("user", "group")."""
    if expected is not None and expected != str(current):
        raise VersionMismatch(f"The {what} is at version {current}, not {expected!r} as the precondition requires.")


def check_if_match(current: str, if_match: str | None) -> None:
    """RFC 7644 §3.14: a stale If-Match fails with 412; ``*`` (or none) matches any existing version."""
    if if_match is None or if_match == "*":
        return
    if current != if_match:
        raise VersionMismatch()
