"""Operator-declared schema extensions: a JSON file of RFC 7643 §7 schemas, each extending User or Group.

The file named by ``SCIM_SCHEMA_EXTENSIONS_FILE`` holds an object with a ``schemas`` list (or the list
itself). Each entry is a schema in the representation of RFC 7643 §7 (``id``, ``name``, ``description``,
``attributes`` with their characteristics) plus two keys of its place in a resource type (RFC 7643 §6
``schemaExtensions``): ``resourceType`` (``"User"`` or ``"Group"``) and ``required`` (default false)::

    {"schemas": [{
        "id": "urn:example:scim:schemas:extension:acme:1.0:User",
        "name": "AcmeUser",
        "description": "Acme's own user attributes",
        "resourceType": "User",
        "required": false,
        "attributes": [
            {"name": "badgeNumber", "type": "string", "caseExact": true, "uniqueness": "none"},
            {"name": "clearance", "type": "integer"},
            {"name": "sites", "type": "complex", "multiValued": true, "subAttributes": [
                {"name": "value", "type": "string"}, {"name": "primary", "type": "boolean"}]}
        ]}]}

Characteristics left out take RFC 7643 §2.2's defaults (readWrite, returned default, not required, not
caseExact, uniqueness none). :func:`load_extensions_file` checks everything and raises
:class:`ExtensionFileError` naming the file and the problem, so a bad file stops start-up.
:func:`build_resource_types` adds the extensions to the base User and Group resource types.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scim_service.schemas.definitions import (
    ATTRIBUTE_TYPES,
    GROUP_RESOURCE,
    MUTABILITIES,
    RETURNED,
    SCHEMAS,
    UNIQUENESS,
    USER_RESOURCE,
    Attribute,
    ResourceTypeDef,
    Schema,
)

__all__ = ["ExtensionFileError", "SchemaExtension", "build_resource_types", "load_extensions_file", "parse_extensions"]

# RFC 7643 §2.1 ATTRNAME: ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA; "$ref" for references.
_ATTR_NAME = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_-]*|\$ref)$")
_RESOURCE_TYPES = {"user": "User", "group": "Group"}
_SCHEMA_KEYS = frozenset({"id", "name", "description", "attributes", "resourceType", "required", "schemas", "meta"})
_ATTRIBUTE_KEYS = frozenset(
    {
        "name",
        "type",
        "multiValued",
        "description",
        "required",
        "caseExact",
        "mutability",
        "returned",
        "uniqueness",
        "canonicalValues",
        "referenceTypes",
        "subAttributes",
    }
)
# Names RFC 7643 §3.1 reserves on every resource; an extension attribute may not shadow them.
_RESERVED = frozenset({"id", "externalid", "meta", "schemas"})


class ExtensionFileError(ValueError):
    """The schema extensions file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class SchemaExtension:
    """One declared extension: its schema, the resource type it extends and whether it is required."""

    schema: Schema
    resource_type: str
    required: bool = False


class _Problem(ValueError):
    """A problem inside the file, with where it is (``schemas[0].attributes[2]``)."""


def _bool(raw: Mapping[str, Any], key: str, where: str, default: bool = False) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise _Problem(f"{where}.{key} must be true or false, got {value!r}")
    return value


def _text(raw: Mapping[str, Any], key: str, where: str, *, required: bool = False, default: str = "") -> str:
    value = raw.get(key)
    if value is None:
        if required:
            raise _Problem(f"{where}.{key} is required")
        return default
    if not isinstance(value, str) or (required and not value.strip()):
        raise _Problem(f"{where}.{key} must be a non-empty string, got {value!r}")
    return value


def _choice(raw: Mapping[str, Any], key: str, where: str, allowed: frozenset[str], default: str) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise _Problem(f"{where}.{key} must be one of {', '.join(sorted(allowed))}, got {value!r}")
    return str(value)


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Problem(f"{where}.{key} must be a list of strings, got {value!r}")
    return tuple(value)


def _attribute(raw: Any, where: str, *, sub: bool) -> Attribute:
    if not isinstance(raw, Mapping):
        raise _Problem(f"{where} must be an object describing an attribute")
    unknown = sorted(set(raw) - _ATTRIBUTE_KEYS)
    if unknown:
        raise _Problem(f"{where} has unknown keys {unknown} (allowed: {', '.join(sorted(_ATTRIBUTE_KEYS))})")
    name = _text(raw, "name", where, required=True)
    if not _ATTR_NAME.match(name) or (name == "$ref" and not sub):
        raise _Problem(
            f"{where}.name {name!r} is not an attribute name (RFC 7643 §2.1: a letter, then letters, digits, - or _)"
        )
    where = f"{where} ({name})"
    kind = _choice(raw, "type", where, ATTRIBUTE_TYPES, "")
    subs_raw = raw.get("subAttributes")
    sub_attributes: tuple[Attribute, ...] = ()
    if kind == "complex":
        if sub:
            raise _Problem(f"{where}: a sub-attribute cannot be complex (RFC 7643 §2.3.8)")
        if not isinstance(subs_raw, list) or not subs_raw:
            raise _Problem(f"{where}: a complex attribute needs subAttributes, a non-empty list")
        sub_attributes = tuple(
            _attribute(item, f"{where}.subAttributes[{i}]", sub=True) for i, item in enumerate(subs_raw)
        )
        _unique(sub_attributes, where)
    elif subs_raw not in (None, []):
        raise _Problem(f"{where}: only a complex attribute has subAttributes")
    try:
        return Attribute(
            name=name,
            type=kind,
            multi_valued=_bool(raw, "multiValued", where),
            required=_bool(raw, "required", where),
            case_exact=_bool(raw, "caseExact", where),
            mutability=_choice(raw, "mutability", where, MUTABILITIES, "readWrite"),
            returned=_choice(raw, "returned", where, RETURNED, "default"),
            uniqueness=_choice(raw, "uniqueness", where, UNIQUENESS, "none"),
            description=_text(raw, "description", where),
            sub_attributes=sub_attributes,
            canonical_values=_strings(raw, "canonicalValues", where),
            reference_types=_strings(raw, "referenceTypes", where) or (("external",) if kind == "reference" else ()),
        )
    except ValueError as exc:
        raise _Problem(f"{where}: {exc}") from None


def _unique(attributes: Sequence[Attribute], where: str) -> None:
    seen: set[str] = set()
    for attribute in attributes:
        if attribute.name.lower() in seen:
            raise _Problem(f"{where}: the attribute {attribute.name!r} is declared twice (names ignore case)")
        seen.add(attribute.name.lower())


def _extension(raw: Any, where: str) -> SchemaExtension:
    if not isinstance(raw, Mapping):
        raise _Problem(f"{where} must be an object describing a schema")
    unknown = sorted(set(raw) - _SCHEMA_KEYS)
    if unknown:
        raise _Problem(f"{where} has unknown keys {unknown} (allowed: {', '.join(sorted(_SCHEMA_KEYS))})")
    urn = _text(raw, "id", where, required=True)
    if not urn.lower().startswith("urn:") or any(c.isspace() for c in urn):
        raise _Problem(
            f"{where}.id must be a URN such as urn:example:scim:schemas:extension:acme:1.0:User, got {urn!r}"
        )
    where = f"{where} ({urn})"
    resource_type = _RESOURCE_TYPES.get(str(raw.get("resourceType", "")).lower())
    if resource_type is None:
        raise _Problem(f"{where}.resourceType must be User or Group, got {raw.get('resourceType')!r}")
    attributes_raw = raw.get("attributes")
    if not isinstance(attributes_raw, list) or not attributes_raw:
        raise _Problem(f"{where}.attributes must be a non-empty list of attributes")
    attributes = tuple(_attribute(item, f"{where}.attributes[{i}]", sub=False) for i, item in enumerate(attributes_raw))
    _unique(attributes, where)
    for attribute in attributes:
        if attribute.name.lower() in _RESERVED:
            raise _Problem(f"{where}: {attribute.name!r} is a common attribute of every resource (RFC 7643 §3.1)")
    schema = Schema(
        id=urn,
        name=_text(raw, "name", where, required=True),
        description=_text(raw, "description", where),
        attributes=attributes,
    )
    return SchemaExtension(schema, resource_type, _bool(raw, "required", where))


def parse_extensions(document: Any) -> tuple[SchemaExtension, ...]:
    """The extensions of a parsed file (an object with ``schemas``, or the list itself).

    Raises ``ValueError`` saying where in the document the problem is.
    """
    items = document.get("schemas") if isinstance(document, Mapping) else document
    if not isinstance(items, list):
        raise _Problem('the file must hold {"schemas": [...]} or a list of schemas')
    extensions = tuple(_extension(item, f"schemas[{i}]") for i, item in enumerate(items))
    taken = {schema.id.lower(): "a built-in schema" for schema in SCHEMAS}
    for i, extension in enumerate(extensions):
        urn = extension.schema.id
        # A URN that prefixes another would make "urn:...:attr" paths ambiguous.
        for other in list(taken):
            if urn.lower() == other or urn.lower().startswith(other + ":") or other.startswith(urn.lower() + ":"):
                raise _Problem(f"schemas[{i}].id {urn!r} clashes with {taken[other]} ({other})")
        taken[urn.lower()] = f"schemas[{i}]"
    return extensions


def load_extensions_file(path: str | Path) -> tuple[SchemaExtension, ...]:
    """Read and check the extensions file at ``path``; :class:`ExtensionFileError` names it and the problem."""
    where = Path(path)
    try:
        text = where.read_text(encoding="utf-8")
    except OSError as exc:
        raise ExtensionFileError(
            f"schema extensions file {str(where)!r}: cannot be read ({exc.strerror or exc})"
        ) from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ExtensionFileError(f"schema extensions file {str(where)!r}: not valid JSON ({exc})") from None
    try:
        return parse_extensions(document)
    except ValueError as exc:
        raise ExtensionFileError(f"schema extensions file {str(where)!r}: {exc}") from None


def build_resource_types(
    extensions: Sequence[SchemaExtension],
    user: ResourceTypeDef = USER_RESOURCE,
    group: ResourceTypeDef = GROUP_RESOURCE,
) -> tuple[ResourceTypeDef, ResourceTypeDef]:
    """The User and Group resource types with ``extensions`` added after their own extensions."""
    user_ext = tuple((e.schema, e.required) for e in extensions if e.resource_type == "User")
    group_ext = tuple((e.schema, e.required) for e in extensions if e.resource_type == "Group")
    return (
        replace(user, extensions=user.extensions + user_ext) if user_ext else user,
        replace(group, extensions=group.extensions + group_ext) if group_ext else group,
    )
