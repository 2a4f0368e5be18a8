"""Building blocks of the conformance kit: tenants, SCIM documents, filters and rendering.

Everything here is plain Python (no pytest), so a backend author can also use it in their own tests.
Documents have the shape the schemas hand to a backend: the SCIM attributes with ``active`` set,
the enterprise extension under its URN, no ``schemas``, ``id`` or ``meta``.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from scim_service.model import ENTERPRISE_SCHEMA, GroupRecord, MatchPolicy, SeatPolicy, Tenant, UserRecord
from scim_service.query.ast import AttrPath, Filter, ListQuery
from scim_service.query.parser import parse_attr_path, parse_filter
from scim_service.query.resolve import resolve_filter, resolve_path
from scim_service.schemas.definitions import GROUP_RESOURCE, USER_RESOURCE
from scim_service.schemas.render import render_group, render_user

__all__ = [
    "BASE_URL",
    "aware",
    "full_group_document",
    "full_user_document",
    "group_document",
    "group_filter",
    "group_sort",
    "iso",
    "new_tenant",
    "query",
    "rendered_group",
    "rendered_user",
    "user_document",
    "user_filter",
    "user_sort",
]

BASE_URL = "https://scim.example.test/scim/v2"


def new_tenant(
    *,
    max_seats: int | None = None,
    seat_policy: SeatPolicy = SeatPolicy.ALL,
    match_policy: MatchPolicy = MatchPolicy.EMAIL,
) -> Tenant:
    """A tenant with a fresh random id, so kit tests never see each other's data in a shared store."""
    tid = f"kit-{uuid.uuid4().hex[:16]}"
    return Tenant(id=tid, name=tid, max_seats=max_seats, seat_policy=seat_policy, match_policy=match_policy)


def user_document(user_name: str, *, email: str | None = None, active: bool = True, **attrs: Any) -> dict[str, Any]:
    """A minimal user document; ``email`` adds one primary work email."""
    document: dict[str, Any] = {"userName": user_name, **attrs, "active": active}
    if email is not None:
        document["emails"] = [{"value": email, "type": "work", "primary": True}]
    return document


def full_user_document(user_name: str = "bjensen") -> dict[str, Any]:
    """A user with every writable attribute of the core User schema and of the enterprise extension,
    every sub-attribute filled, and non-ASCII text, so a round trip shows what a backend drops."""
    return {
        "userName": user_name,
        "externalId": "EXT-701984",
        "name": {
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara",
            "middleName": "Jane",
            "honorificPrefix": "Ms.",
            "honorificSuffix": "III",
        },
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": True,
        "emails": [
            {"value": "bjensen@example.com", "display": "Work mail", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "display": "Home mail", "type": "home", "primary": False},
        ],
        "phoneNumbers": [
            {"value": "555-555-5555", "display": "desk", "type": "work", "primary": True},
            {"value": "555-555-4444", "type": "mobile"},
        ],
        "ims": [{"value": "someaimhandle", "display": "AIM", "type": "aim", "primary": False}],
        "photos": [
            {"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo", "primary": True},
            {"value": "https://photos.example.com/profilephoto/72930000000Ccne/T", "type": "thumbnail"},
        ],
        "addresses": [
            {
                "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
                "streetAddress": "100 Universal City Plaza",
                "locality": "Hollywood",
                "region": "CA",
                "postalCode": "91608",
                "country": "US",
                "type": "work",
                "primary": True,
            },
            {"streetAddress": "Große Straße 1", "locality": "Zürich", "country": "CH", "type": "home"},
        ],
        "entitlements": [{"value": "vpn", "display": "VPN access", "type": "network", "primary": True}],
        "roles": [{"value": "admin", "display": "Administrator", "type": "system", "primary": False}],
        "x509Certificates": [
            {"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx", "primary": True}
        ],
        ENTERPRISE_SCHEMA: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": "Tour Operations",
            "manager": {
                "value": "26118915-6090-4610-87e4-49d8ca9f808d",
                "$ref": "https://scim.example.test/scim/v2/Users/26118915-6090-4610-87e4-49d8ca9f808d",
                "displayName": "John Smith",
            },
        },
    }


def group_document(display_name: str, **attrs: Any) -> dict[str, Any]:
    """A group document: ``displayName`` and any other attributes (``externalId``)."""
    return {"displayName": display_name, **attrs}


def full_group_document(display_name: str = "Tour Guides") -> dict[str, Any]:
    """A group with every writable attribute besides members."""
    return {"displayName": display_name, "externalId": "GRP-Ext-1"}


def user_filter(text: str) -> Filter:
    """A resolved User filter from its text, as the API hands it to ``list_users``."""
    return resolve_filter(parse_filter(text), USER_RESOURCE)


def group_filter(text: str) -> Filter:
    """A resolved Group filter from its text, as the API hands it to ``list_groups``."""
    return resolve_filter(parse_filter(text), GROUP_RESOURCE)


def user_sort(text: str) -> AttrPath:
    """A resolved sortBy path of User."""
    return resolve_path(parse_attr_path(text), USER_RESOURCE)


def group_sort(text: str) -> AttrPath:
    """A resolved sortBy path of Group."""
    return resolve_path(parse_attr_path(text), GROUP_RESOURCE)


def query(**kwargs: Any) -> ListQuery:
    """A :class:`ListQuery` with a page size large enough for every kit list unless given."""
    kwargs.setdefault("count", 1000)
    return ListQuery(**kwargs)


def aware(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (a naive one is taken as UTC, as the renderer does)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    """An ISO 8601 text of ``moment`` with microseconds, for filter values."""
    return aware(moment).isoformat(timespec="microseconds")


def _full_precision_meta(document: dict[str, Any], created: datetime, last_modified: datetime) -> dict[str, Any]:
    # The API renders milliseconds; the kit compares instants at the precision the backend stores.
    document["meta"]["created"] = iso(created)
    document["meta"]["lastModified"] = iso(last_modified)
    return document


def rendered_user(record: UserRecord) -> dict[str, Any]:
    """The SCIM document of a user record, with full-precision timestamps, for the reference evaluator."""
    return _full_precision_meta(render_user(record, BASE_URL), record.created, record.last_modified)


def rendered_group(record: GroupRecord) -> dict[str, Any]:
    """The SCIM document of a group record, with full-precision timestamps, for the reference evaluator."""
    return _full_precision_meta(render_group(record, BASE_URL), record.created, record.last_modified)


def plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deep, plain-dict copy of a stored document, for equality checks and diffs."""
    return copy.deepcopy(dict(data))
