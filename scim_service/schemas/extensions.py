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

import marshmallow as ma

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
from scim_service.schemas.messages import SchemasField

__all__ = ["ExtensionFileError", "SchemaExtension", "build_resource_types", "load_extensions_file", "parse_extensions"]

# The schema of a schema representation (RFC 7643 §7): what an entry's optional "schemas" must list.
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
# RFC 7643 §2.1 ATTRNAME: ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA; "$ref" for references.
_ATTR_NAME = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_-]*|\$ref)$")
_RESOURCE_TYPES = {"user": "User", "group": "Group"}
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


# -- fields: the file's value types, with the messages an operator reads --------------------------------


class _Bool(ma.fields.Field):
    """true or false (not "yes", not 1)."""

    def __init__(self) -> None:
        super().__init__(load_default=False)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ma.ValidationError(f"must be true or false, got {value!r}")
        return value


class _Text(ma.fields.Field):
    """A string; when ``required``, a non-empty one."""

    def __init__(self, *, required: bool = False) -> None:
        messages = {"required": "is required", "null": "is required"}
        if required:
            super().__init__(required=True, error_messages=messages)
        else:
            super().__init__(load_default="", allow_none=True, error_messages=messages)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if not isinstance(value, str) or (self.required and not value.strip()):
            raise ma.ValidationError(f"must be a non-empty string, got {value!r}")
        return value

    def deserialize(self, value: Any, attr: str | None = None, data: Any = None, **kwargs: Any) -> Any:
        return "" if value is None and not self.required else super().deserialize(value, attr, data, **kwargs)


class _Choice(ma.fields.Field):
    """One of ``allowed`` (exact spelling, as RFC 7643 §7 writes them)."""

    def __init__(self, allowed: frozenset[str], default: str | None) -> None:
        self.allowed = allowed
        choices = ", ".join(sorted(allowed))
        if default is None:
            super().__init__(required=True, error_messages={"required": f"must be one of {choices}, got nothing"})
        else:
            super().__init__(load_default=default)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if value not in self.allowed:
            raise ma.ValidationError(f"must be one of {', '.join(sorted(self.allowed))}, got {value!r}")
        return str(value)


class _Strings(ma.fields.Field):
    """A list of strings (canonicalValues, referenceTypes)."""

    def __init__(self) -> None:
        super().__init__(load_default=())

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ma.ValidationError(f"must be a list of strings, got {value!r}")
        return tuple(value)


class _ObjectList(ma.fields.List):
    """A JSON array of objects, each loaded by ``schema``; ``non_empty`` refuses ``[]``."""

    def __init__(self, schema: type[ma.Schema], *, message: str, non_empty: bool = True, **kwargs: Any) -> None:
        super().__init__(ma.fields.Nested(schema), **kwargs)
        self.message = message
        self.non_empty = non_empty

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, list) or (self.non_empty and not value):
            raise ma.ValidationError(self.message)
        return super()._deserialize(value, attr, data, **kwargs)


# -- schemas: an attribute, a sub-attribute, an extension ---------------------------------------------


class _Strict(ma.Schema):
    """Keys outside the declared fields are an error naming them and the allowed ones."""

    class Meta:
        unknown = ma.EXCLUDE

    @ma.pre_load
    def _known_keys(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ma.ValidationError(f"must be an object describing {self.describes}")
        allowed = sorted(f.data_key or name for name, f in self.fields.items())
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            raise ma.ValidationError(f"has unknown keys {unknown} (allowed: {', '.join(allowed)})")
        return data

    describes = "a value"


class _SubAttributeSchema(_Strict):
    """A sub-attribute of a complex attribute: never complex itself (RFC 7643 §2.3.8); may be ``$ref``."""

    describes = "an attribute"
    sub = True

    name = _Text(required=True)
    type = _Choice(ATTRIBUTE_TYPES, None)
    multiValued = _Bool()
    description = _Text()
    required = _Bool()
    caseExact = _Bool()
    mutability = _Choice(MUTABILITIES, "readWrite")
    returned = _Choice(RETURNED, "default")
    uniqueness = _Choice(UNIQUENESS, "none")
    canonicalValues = _Strings()
    referenceTypes = _Strings()

    @ma.validates("name")
    def _attribute_name(self, value: str, **kwargs: Any) -> None:
        if not _ATTR_NAME.match(value) or (value == "$ref" and not self.sub):
            raise ma.ValidationError(
                f"{value!r} is not an attribute name (RFC 7643 §2.1: a letter, then letters, digits, - or _)"
            )

    @ma.validates_schema(skip_on_field_errors=True)
    def _shape(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if data["type"] == "complex":
            raise ma.ValidationError("a sub-attribute cannot be complex (RFC 7643 §2.3.8)")

    @ma.post_load
    def _attribute(self, data: Mapping[str, Any], **kwargs: Any) -> Attribute:
        kind = data["type"]
        try:
            return Attribute(
                name=data["name"],
                type=kind,
                multi_valued=data["multiValued"],
                required=data["required"],
                case_exact=data["caseExact"],
                mutability=data["mutability"],
                returned=data["returned"],
                uniqueness=data["uniqueness"],
                description=data["description"],
                sub_attributes=tuple(data.get("subAttributes") or ()),
                canonical_values=data["canonicalValues"],
                reference_types=data["referenceTypes"] or (("external",) if kind == "reference" else ()),
            )
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


class _AttributeSchema(_SubAttributeSchema):
    """A top-level attribute of an extension; a complex one lists its sub-attributes."""

    sub = False

    subAttributes = _ObjectList(
        _SubAttributeSchema,
        message="must be a non-empty list of sub-attributes",
        non_empty=False,
        load_default=(),
    )

    @ma.validates_schema(skip_on_field_errors=True)
    def _shape(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        subs = data.get("subAttributes") or ()
        if data["type"] == "complex" and not subs:
            raise ma.ValidationError("a complex attribute needs subAttributes, a non-empty list")
        if data["type"] != "complex" and subs:
            raise ma.ValidationError("only a complex attribute has subAttributes")
        _unique(subs)


class _ExtensionSchema(_Strict):
    """One entry of the file: an RFC 7643 §7 schema plus ``resourceType`` and ``required``."""

    describes = "a schema"

    id = _Text(required=True)
    name = _Text(required=True)
    description = _Text()
    resourceType = ma.fields.Raw(required=True, error_messages={"required": "must be User or Group, got None"})
    required = _Bool()
    attributes = _ObjectList(_AttributeSchema, message="must be a non-empty list of attributes", required=True)
    # Optional; when given, the one 'schemas' rule of every SCIM message applies (schemas/messages.py).
    schemas = SchemasField(SCHEMA_SCHEMA, "schema representation", required=False)
    meta = ma.fields.Raw()  # a copied /Schemas document may carry it; ignored

    @ma.validates("id")
    def _urn(self, value: str, **kwargs: Any) -> None:
        if not value.lower().startswith("urn:") or any(c.isspace() for c in value):
            raise ma.ValidationError(
                f"must be a URN such as urn:example:scim:schemas:extension:acme:1.0:User, got {value!r}"
            )

    @ma.validates("resourceType")
    def _resource_type(self, value: Any, **kwargs: Any) -> None:
        if _RESOURCE_TYPES.get(str(value).lower()) is None:
            raise ma.ValidationError(f"must be User or Group, got {value!r}")

    @ma.validates_schema(skip_on_field_errors=True)
    def _attribute_names(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        _unique(data["attributes"])
        for attribute in data["attributes"]:
            if attribute.name.lower() in _RESERVED:
                raise ma.ValidationError(f"{attribute.name!r} is a common attribute of every resource (RFC 7643 §3.1)")

    @ma.post_load
    def _extension(self, data: Mapping[str, Any], **kwargs: Any) -> SchemaExtension:
        schema = Schema(
            id=data["id"], name=data["name"], description=data["description"], attributes=tuple(data["attributes"])
        )
        return SchemaExtension(schema, _RESOURCE_TYPES[str(data["resourceType"]).lower()], data["required"])


def _unique(attributes: Sequence[Attribute]) -> None:
    seen: set[str] = set()
    for attribute in attributes:
        if attribute.name.lower() in seen:
            raise ma.ValidationError(f"the attribute {attribute.name!r} is declared twice (names ignore case)")
        seen.add(attribute.name.lower())


# -- errors: marshmallow's nested messages as one line that says where --------------------------------

_LISTS = {"attributes": "attributes", "subAttributes": "subAttributes"}


def _label(raw: Any, key: str) -> str:
    """`` (name)`` after an item's path, when the item has a name (or, for a schema, an id)."""
    value = raw.get(key) if isinstance(raw, Mapping) else None
    return f" ({value})" if isinstance(value, str) and value else ""


def _where_and_message(messages: Any, raw: Any, where: str, name_key: str) -> str:
    """The first problem in ``messages`` (marshmallow's error dict for ``raw``) as ``where.key message``."""
    if isinstance(messages, list):
        return f"{where}: {messages[0]}" if messages and isinstance(messages[0], str) else where
    if not isinstance(messages, Mapping):
        return f"{where}: {messages}"
    here = where + _label(raw, name_key)
    if ma.exceptions.SCHEMA in messages and len(messages) == 1:
        return _where_and_message(messages[ma.exceptions.SCHEMA], raw, here, name_key)
    for key, nested in messages.items():
        if key == ma.exceptions.SCHEMA:
            continue
        value = raw.get(key) if isinstance(raw, Mapping) else None
        if key in _LISTS and isinstance(nested, Mapping) and all(isinstance(i, int) for i in nested):
            index = min(nested)
            item = value[index] if isinstance(value, list) and index < len(value) else None
            return _where_and_message(nested[index], item, f"{here}.{key}[{index}]", "name")
        first = str(nested[0] if isinstance(nested, list) and nested else nested)
        return f"{here}.{key}{': ' if first[:1].isupper() else ' '}{first}"
    return _where_and_message(messages[ma.exceptions.SCHEMA], raw, here, name_key)


def _extension(raw: Any, where: str) -> SchemaExtension:
    try:
        return _ExtensionSchema().load(raw)
    except ma.ValidationError as error:
        raise _Problem(_where_and_message(error.messages, raw, where, "id")) from None


def parse_extensions(document: Any) -> tuple[SchemaExtension, ...]:
    """The extensions of a parsed file (an object with ``schemas``, or the list itself).

    Each entry is checked by a marshmallow schema (the RFC 7643 §7 schema representation: its keys,
    types and characteristics); raises ``ValueError`` saying where in the document the problem is.
    The top-level ``schemas`` of the file is the list of those entries, not a list of URNs.
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
