"""Turning stored records into the SCIM JSON documents the API returns (RFC 7643 §3, §4).

The output is the full representation; :mod:`scim_service.schemas.projection` then applies the
client's ``attributes`` / ``excludedAttributes``.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from scim_service.model import GROUP_SCHEMA, USER_SCHEMA, GroupRecord, Member, UserRecord
from scim_service.schemas.definitions import GROUP_SCHEMA_DEF, USER_SCHEMA_DEF

# Keys of a record's data that are not taken from it: rendered from the record itself, or never
# returned at all (``password``, should a backend ever hold one: RFC 7643 §2.2 "returned: never").
_RESERVED = frozenset(
    {"schemas", "id", "meta", "groups", "members"}
    | {a.name for a in USER_SCHEMA_DEF.attributes + GROUP_SCHEMA_DEF.attributes if a.returned == "never"}
)


def etag(version: str) -> str:
    """The weak entity tag of a resource version, as ``meta.version`` and the ETag header carry it."""
    return f'W/"{version}"'


def format_datetime(moment: datetime) -> str:
    """An ISO 8601 UTC timestamp ending in ``Z``, with milliseconds; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _meta(
    resource_type: str, location: str, created: datetime, last_modified: datetime, version: str
) -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "created": format_datetime(created),
        "lastModified": format_datetime(last_modified),
        "location": location,
        "version": etag(version),
    }


def _ref(base_url: str, member: Member) -> str:
    endpoint = "Groups" if member.type == "Group" else "Users"
    return f"{base_url}/{endpoint}/{member.value}"


def _schemas(core: str, data: dict[str, Any]) -> list[str]:
    """The core schema and each extension (a ``urn:`` key) ``data`` holds; empty extensions are dropped
    from ``data`` so the document never names a schema it has no attribute of."""
    schemas = [core]
    for key in list(data):
        if key.lower().startswith("urn:"):
            if isinstance(data[key], dict) and data[key]:
                schemas.append(key)
            else:
                del data[key]
    return schemas


def render_user(record: UserRecord, base_url: str) -> dict[str, Any]:
    """The full SCIM User document of ``record``; ``base_url`` is the SCIM root without a trailing slash.

    ``schemas`` lists an extension (the enterprise one, or a configured one) only when the record has
    data of it; ``groups`` (direct memberships) appears only when the record carries some.
    """
    data = {k: copy.deepcopy(v) for k, v in record.data.items() if k not in _RESERVED}
    document: dict[str, Any] = {"schemas": _schemas(USER_SCHEMA, data), "id": record.id, **data}
    # A soft-deleted record is inactive whatever its stored flag says; an unassigned ``active``
    # (removed by PATCH) stays unassigned, and counts as active for the product rules.
    if "active" in record.data or record.deleted:
        document["active"] = record.active
    if record.groups:
        document["groups"] = [
            {
                "value": group.value,
                "$ref": f"{base_url}/Groups/{group.value}",
                **({"display": group.display} if group.display is not None else {}),
                "type": "direct",
            }
            for group in record.groups
        ]
    document["meta"] = _meta(
        "User", f"{base_url}/Users/{record.id}", record.created, record.last_modified, record.version
    )
    return document


def render_group(record: GroupRecord, base_url: str) -> dict[str, Any]:
    """The full SCIM Group document of ``record``; ``members`` is left out when None or empty."""
    data = {k: copy.deepcopy(v) for k, v in record.data.items() if k not in _RESERVED}
    document: dict[str, Any] = {"schemas": _schemas(GROUP_SCHEMA, data), "id": record.id, **data}
    if record.members:
        document["members"] = [
            {
                "value": member.value,
                "$ref": _ref(base_url, member),
                **({"display": member.display} if member.display is not None else {}),
                "type": member.type,
            }
            for member in record.members
        ]
    document["meta"] = _meta(
        "Group", f"{base_url}/Groups/{record.id}", record.created, record.last_modified, record.version
    )
    return document
