"""Validation of incoming User and Group documents (POST and PUT bodies), built from the definitions.

The marshmallow schemas are generated from :mod:`scim_service.schemas.definitions`: each SCIM type maps
to one field class, complex attributes to nested schemas and multi-valued ones to lists, so an extension
schema added to a resource type is validated the same way without new code here.

Loading happens in two steps:

1. *canonicalisation*: attribute names are matched case-insensitively (RFC 7643 §2.1) and rewritten in
   their canonical case; unknown attributes and unknown schema URNs are ``invalidValue``, unless the
   request's IdP profile (:mod:`scim_service.profiles`) allows ``unknown_attribute_ignored`` /
   ``unknown_schema_ignored``: then they are dropped and reported in ``ignored``. Boolean strings
   (``"True"``) become booleans under ``string_booleans``, a bare string given for a complex attribute
   with a ``value`` (Entra's ``manager``) becomes ``{"value": ...}`` under ``manager_bare_string``;
   readOnly attributes (``id``, ``meta``, ``groups``, ``manager.displayName``) are dropped
   silently, as RFC 7643 §2.2 tells a service provider to ignore them; null values mean "unassigned"
   (RFC 7643 §2.5) and are dropped.
2. *validation* with marshmallow: types, required attributes, xsd:dateTime values, at most one
   ``primary`` value per multi-valued attribute. Every problem is gathered into one readable detail of
   an :class:`~scim_service.errors.InvalidValue`.

``password`` (writeOnly) is validated and then dropped: this service never stores passwords, since
identity providers own authentication; the value does not reach the backend.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import marshmallow as ma
from marshmallow.exceptions import SCHEMA

from scim_service.errors import InvalidSyntax, InvalidValue
from scim_service.model import Member
from scim_service.profiles import ActiveProfile, Tolerance, strict
from scim_service.schemas.definitions import (
    COMMON_ATTRIBUTES,
    GROUP_RESOURCE,
    USER_RESOURCE,
    Attribute,
    ResourceTypeDef,
    split_urn_path,
)
from scim_service.schemas.messages import json_kind as _json_kind
from scim_service.schemas.messages import missing_schemas, schemas_problem

MEMBER_TYPES = ("User", "Group")


@dataclass(frozen=True)
class Loaded:
    """A validated resource document.

    ``data`` is the canonical SCIM document without ``schemas`` and readOnly attributes: attribute names
    in canonical case, extension attributes under their schema URN. ``ignored`` names what was dropped
    because this server does not know it (attribute names as sent, unknown schema URNs).
    """

    data: dict[str, Any]
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedGroup:
    """A validated Group document: ``data`` holds displayName/externalId, ``members`` the deduplicated members."""

    data: dict[str, Any]
    members: tuple[Member, ...] = ()
    ignored: tuple[str, ...] = ()


# --- Fields: one per SCIM type ---------------------------------------------------------------------------


class _ScimField(ma.fields.Field):
    """A field that refuses values of the wrong JSON type with a message saying what was expected."""

    expected = "a value"
    default_error_messages = {
        "required": "is required but missing",
        "null": "must not be null",
        "type": "expected {expected}, got {got}",
        "empty": "is required and must not be empty",
    }

    def _wrong_type(self, value: object) -> ma.ValidationError:
        # A secret (password: returned "never") is described by its JSON type only, never by its value.
        got = _json_type(value) if self.metadata.get("secret") else _json_kind(value)
        return self.make_error("type", expected=self.expected, got=got)


def _json_type(value: object) -> str:
    """The JSON type of ``value`` without the value itself (``a number``, ``a string``)."""
    kind = _json_kind(value)
    if kind.startswith("the "):
        return "a " + kind.split()[1]
    return kind


class ScimString(_ScimField):
    """A SCIM ``string`` (or ``reference``): a JSON string; non-blank when the attribute is required."""

    expected = "a string"

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self._wrong_type(value)
        if self.required and not value.strip():
            raise self.make_error("empty")
        return value


class ScimBoolean(_ScimField):
    """A SCIM ``boolean``: true or false (boolean strings were converted before, when the profile allows)."""

    expected = "a boolean (true or false)"

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if isinstance(value, bool):
            return value
        raise self._wrong_type(value)


class ScimInteger(_ScimField):
    """A SCIM ``integer``: a JSON number without a fractional part."""

    expected = "an integer"

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong_type(value)
        return value


class ScimDecimal(_ScimField):
    """A SCIM ``decimal``: any JSON number."""

    expected = "a number"

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong_type(value)
        return value


# xsd:dateTime (RFC 7643 §2.3.5): a date, "T", a time with optional fraction, optional zone.
_XSD_DATETIME = re.compile(r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


class ScimDateTime(_ScimField):
    """A SCIM ``dateTime``: an xsd:dateTime string such as 2024-05-01T12:00:00Z, kept as sent."""

    expected = "a date and time in ISO 8601 form (xsd:dateTime), such as 2024-05-01T12:00:00Z"

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if not isinstance(value, str) or not _XSD_DATETIME.match(value):
            raise self._wrong_type(value)
        try:
            datetime.fromisoformat(value)  # rejects impossible dates such as month 13
        except ValueError:
            raise self._wrong_type(value) from None
        return value


class ScimBinary(_ScimField):
    """A SCIM ``binary``: a base64-encoded string, kept as sent."""

    expected = "a base64-encoded string"

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self._wrong_type(value)
        try:
            base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise self._wrong_type(value) from None
        return value


class ScimComplex(ma.fields.Nested):
    """A single-valued SCIM ``complex`` attribute: a JSON object of sub-attributes."""

    default_error_messages = {
        "required": "is required but missing",
        "null": "must not be null",
        "type": "expected an object with sub-attributes, got {got}",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise self.make_error("type", got=_json_kind(value))
        return super()._deserialize(value, attr, data, **kwargs)


class ScimMultiValued(ma.fields.List):
    """A multi-valued attribute: a JSON array; at most one complex value may have ``primary: true``."""

    default_error_messages = {
        "required": "is required but missing",
        "null": "must not be null",
        "type": "expected an array of values, got {got}",
        "primary": "{count} values have primary set to true; at most one may",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, list):
            raise self.make_error("type", got=_json_kind(value))
        result = super()._deserialize(value, attr, data, **kwargs)
        # RFC 7643 §2.4: the primary attribute value "true" may appear no more than once.
        count = sum(1 for item in result if isinstance(item, dict) and item.get("primary") is True)
        if count > 1:
            raise self.make_error("primary", count=count)
        return result


_SIMPLE_FIELDS: dict[str, type[_ScimField]] = {
    "string": ScimString,
    "reference": ScimString,
    "boolean": ScimBoolean,
    "integer": ScimInteger,
    "decimal": ScimDecimal,
    "dateTime": ScimDateTime,
    "binary": ScimBinary,
}


def _writable(attributes: tuple[Attribute, ...]) -> tuple[Attribute, ...]:
    """The attributes a client may send (readOnly ones are dropped before validation)."""
    return tuple(a for a in attributes if a.mutability != "readOnly")


def _field_for(attribute: Attribute, *, in_list: bool = False) -> ma.fields.Field:
    """The marshmallow field that validates ``attribute`` (one value of it when ``in_list``)."""
    if attribute.multi_valued and not in_list:
        return ScimMultiValued(_field_for(attribute, in_list=True), required=attribute.required)
    required = attribute.required and not in_list
    if attribute.type == "complex":
        return ScimComplex(_schema_class(attribute.name, _writable(attribute.sub_attributes)), required=required)
    return _SIMPLE_FIELDS[attribute.type](required=required, metadata={"secret": attribute.returned == "never"})


@functools.cache
def _schema_class(name: str, attributes: tuple[Attribute, ...]) -> type[ma.Schema]:
    """A marshmallow schema with one field per attribute (unknown keys are an error: they were removed)."""
    fields = {attribute.name: _field_for(attribute) for attribute in attributes}
    return ma.Schema.from_dict(fields, name=f"Scim{name[:1].upper()}{name[1:]}Schema")


@functools.cache
def _resource_schema(resource: ResourceTypeDef) -> type[ma.Schema]:
    """The marshmallow schema of a whole resource: common and core attributes, each extension by URN."""
    fields: dict[str, ma.fields.Field] = {
        attribute.name: _field_for(attribute) for attribute in _writable(COMMON_ATTRIBUTES + resource.schema.attributes)
    }
    for index, (extension, required) in enumerate(resource.extensions):
        # marshmallow reads dots in a field name as nesting, and URNs hold "2.0": keep the URN as the data key.
        fields[_extension_field(index)] = ScimComplex(
            _schema_class(extension.name, _writable(extension.attributes)), required=required, data_key=extension.id
        )
    return ma.Schema.from_dict(fields, name=f"Scim{resource.name}ResourceSchema")


@functools.cache
def _resource_loader(resource: ResourceTypeDef) -> ma.Schema:
    """One instance of :func:`_resource_schema` per resource type, reused by every request: building a
    schema deep-copies its fields (about 40 % of a load), and ``load`` keeps no state on the instance."""
    return _resource_schema(resource)()


def _extension_field(index: int) -> str:
    return f"extension_{index}"


# --- Canonicalisation ------------------------------------------------------------------------------------


def _find(attributes: tuple[Attribute, ...], name: str) -> Attribute | None:
    lowered = name.lower()
    return next((a for a in attributes if a.name.lower() == lowered), None)


@dataclass
class _Context:
    """What canonicalisation gathers: the names it dropped, under the request's profile.

    ``where`` prefixes the messages of the errors it raises (a PATCH operation names itself there).
    """

    profile: ActiveProfile
    ignored: list[str]
    where: str = ""

    def unknown(self, name: str, *, schema: bool = False) -> None:
        """An attribute (or schema) this server does not define: dropped if the profile allows it."""
        tolerance = Tolerance.UNKNOWN_SCHEMA_IGNORED if schema else Tolerance.UNKNOWN_ATTRIBUTE_IGNORED
        if not self.profile.allows(tolerance, f"{self.where}ignored {name!r}"):
            what = "schema" if schema else "attribute"
            raise InvalidValue(f"{self.where}Unknown {what} '{name}': this server does not define it.")
        self.ignored.append(name)


def _boolean(value: Any, path: str, ctx: _Context) -> Any:
    """A boolean string ("True", "false") as a boolean when the profile allows it; else unchanged."""
    if (
        isinstance(value, str)
        and value.strip().lower() in ("true", "false")
        and ctx.profile.allows(Tolerance.STRING_BOOLEANS, f"{ctx.where}{path} = {value!r}")
    ):
        return value.strip().lower() == "true"
    return value


def _canonical_value(attribute: Attribute, value: Any, path: str, ctx: _Context, *, element: bool = False) -> Any:
    """``value`` (one element of a multi-valued attribute when ``element``) with the profile's
    tolerances applied and the sub-attribute names of a complex value in canonical case."""
    if attribute.multi_valued and not element:
        if isinstance(value, list):
            return [_canonical_value(attribute, item, path, ctx, element=True) for item in value]
        return value  # the wrong shape: left for the validation to report
    if attribute.type == "boolean":
        return _boolean(value, path, ctx)
    if attribute.type != "complex":
        return value
    if (
        isinstance(value, str | int | float)  # bool is an int too
        and attribute.sub("value") is not None
        and ctx.profile.allows(Tolerance.MANAGER_BARE_STRING, f"{ctx.where}{path} given as {value!r}")
    ):
        value = {"value": value}  # Entra ID sends manager as the bare id
    return _canonical_object(attribute.sub_attributes, value, path, ctx)


def _canonical_object(attributes: tuple[Attribute, ...], value: Any, path: str, ctx: _Context) -> Any:
    """A JSON object with its keys matched to ``attributes``: canonical case, unknown keys out."""
    if not isinstance(value, dict):
        return value
    result: dict[str, Any] = {}
    for key, item in value.items():
        attribute = _find(attributes, str(key))
        if attribute is None:
            ctx.unknown(_join(path, str(key)))
            continue
        if attribute.mutability == "readOnly" or item is None:
            continue
        result[attribute.name] = _canonical_value(attribute, item, _join(path, attribute.name), ctx)
    return result


def _schemas_of(resource: ResourceTypeDef, payload: Mapping[str, Any], ctx: _Context) -> None:
    """Check ``schemas`` (RFC 7643 §3) by the rule every message follows (``schemas_problem``): present,
    an array of URNs naming the resource's core schema. Other URNs must name its extensions, or be
    ignored under ``unknown_schema_ignored``."""
    key = next((k for k in payload if isinstance(k, str) and k.lower() == "schemas"), None)
    core = resource.schema.id
    if key is None:
        raise InvalidValue(missing_schemas(core, resource.name))
    schemas = payload[key]
    problem = schemas_problem(schemas, core, resource.name)
    if problem is not None:
        raise InvalidValue(problem)
    known = {schema.id.lower() for schema in resource.schemas}
    for urn in schemas:
        if urn.lower() not in known:
            ctx.unknown(urn, schema=True)


def _canonicalise(resource: ResourceTypeDef, payload: Mapping[str, Any], ctx: _Context) -> dict[str, Any]:
    """The payload with canonical names, extension attributes gathered under their URN, unknowns out."""
    top = COMMON_ATTRIBUTES + resource.schema.attributes
    result: dict[str, Any] = {}
    extensions: dict[str, dict[str, Any]] = {}
    for key, value in payload.items():
        if not isinstance(key, str) or key.lower() == "schemas":
            continue
        extension = resource.extension(key)
        if extension is not None:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise InvalidValue(
                    f"Attribute '{extension.id}': expected an object of {extension.name} attributes, "
                    f"got {_json_kind(value)}."
                )
            canonical = _canonical_object(extension.attributes, value, extension.id, ctx)
            extensions.setdefault(extension.id, {}).update(canonical)
            continue
        urn, rest = split_urn_path(key, resource)
        if urn is not None and rest and "." not in rest:
            # A fully qualified attribute name such as "urn:...:enterprise:2.0:User:department".
            if urn == resource.schema.id:
                canonical = _canonical_object(top, {rest: value}, "", ctx)
                result.update(canonical)
            else:
                ext = resource.extension(urn)
                assert ext is not None  # split_urn_path only returns the resource's schemas
                canonical = _canonical_object(ext.attributes, {rest: value}, ext.id, ctx)
                extensions.setdefault(ext.id, {}).update(canonical)
            continue
        if urn is None and key.lower().startswith("urn:"):
            # An extension object (or attribute) of a schema this server does not offer.
            ctx.unknown(key, schema=True)
            continue
        result.update(_canonical_object(top, {key: value}, "", ctx))
    result.update(extensions)
    return result


# --- Errors ----------------------------------------------------------------------------------------------


def _flatten(messages: Any, path: str = "") -> list[str]:
    """marshmallow's nested error messages as ``"Attribute 'emails[1].value': expected a string"`` lines."""
    if isinstance(messages, dict):
        lines: list[str] = []
        for key, nested in messages.items():
            if isinstance(key, int):
                sub = f"{path}[{key}]"
            elif key == SCHEMA:  # errors of the object as a whole
                sub = path
            else:
                sub = _join(path, str(key))
            lines += _flatten(nested, sub)
        return lines
    if isinstance(messages, list):
        lines = []
        for message in messages:
            lines += _flatten(message, path) if isinstance(message, dict | list) else [_line(path, str(message))]
        return lines
    return [_line(path, str(messages))]


def _join(path: str, name: str) -> str:
    """The SCIM path of ``name`` inside ``path``: ``urn:...:User:department``, ``name.givenName``."""
    if not path:
        return name
    if split_urn_path(path)[1] == "":
        return f"{path}:{name}"
    return f"{path}.{name}"


def _line(path: str, message: str) -> str:
    return f"Attribute '{path}': {message}" if path else message


def _prune(data: dict[str, Any]) -> dict[str, Any]:
    """Drop empty arrays and objects: RFC 7643 §2.5 treats them as unassigned."""
    pruned: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            value = _prune(value)
        if value in ({}, [], None):
            continue
        pruned[key] = value
    return pruned


# --- Public API ------------------------------------------------------------------------------------------


def load_attribute_value(
    attribute: Attribute,
    value: Any,
    *,
    profile: ActiveProfile | None = None,
    path: str | None = None,
    element: bool = False,
    where: str = "",
) -> Any:
    """One value of ``attribute`` loaded exactly as a POST or PUT body's would be: the one value loader.

    The profile's tolerances apply (``string_booleans``; ``manager_bare_string``: a bare value given for
    a complex attribute with a ``value`` sub-attribute means that sub-attribute; unknown sub-attributes
    dropped under ``unknown_attribute_ignored``, else invalidValue); sub-attribute names take their
    canonical case; readOnly sub-attributes and null sub-values are dropped (RFC 7643 §2.2, §2.5); then
    the type checks of the attribute's marshmallow field run. Required sub-attributes are not enforced
    (a PATCH merges partial values; the whole resource is validated after). ``element`` loads one
    element of a multi-valued attribute instead of the whole list. ``path`` names the attribute in
    messages (its name by default); ``where`` prefixes every message (``Operation 2 (add emails): ``).

    Returns the canonical value (None for None); raises :class:`~scim_service.errors.InvalidValue`.
    """
    if value is None:
        return None
    ctx = _Context(profile if profile is not None else strict(), [], where)
    name = path or attribute.name
    canonical = _canonical_value(attribute, value, name, ctx, element=element)
    field = _field_for(attribute, in_list=element)
    try:
        loaded = field.deserialize(canonical, partial=True)
    except ma.ValidationError as error:
        raise InvalidValue(f"{where}{'; '.join(_flatten(error.messages, name))}.") from None
    if isinstance(loaded, dict):
        return _prune(loaded)
    if isinstance(loaded, list):
        return [_prune(item) if isinstance(item, dict) else item for item in loaded]
    return loaded


def load_resource(
    resource: ResourceTypeDef,
    payload: object,
    *,
    default_active: bool = True,
    profile: ActiveProfile | None = None,
) -> Loaded:
    """Validate and normalise a POST/PUT body for ``resource``; see the module docstring for the rules.

    ``profile`` is the request's IdP profile (strict ``generic`` when None); the tolerances that fire
    are recorded on it. Raises :class:`~scim_service.errors.InvalidSyntax` when the body is not a JSON
    object and :class:`~scim_service.errors.InvalidValue` for a missing or wrong ``schemas``, an unknown
    attribute or schema the profile does not let pass, a missing required attribute or a value of the
    wrong type.
    """
    if not isinstance(payload, dict):
        raise InvalidSyntax(
            f"The request body must be a JSON object (a {resource.name} resource), got {_json_kind(payload)}."
        )
    ignored: list[str] = []
    ctx = _Context(profile if profile is not None else strict(), ignored)
    _schemas_of(resource, payload, ctx)
    canonical = _canonicalise(resource, payload, ctx)
    try:
        data = _resource_loader(resource).load(canonical)
    except ma.ValidationError as error:
        detail = "; ".join(_flatten(error.messages))
        raise InvalidValue(f"Invalid {resource.name}: {detail}.") from None
    for index, (extension, _required) in enumerate(resource.extensions):
        if _extension_field(index) in data:
            data[extension.id] = data.pop(_extension_field(index))
    # writeOnly attributes (the password) are never stored: the service does no authentication itself.
    for attribute in resource.schema.attributes:
        if attribute.mutability == "writeOnly":
            data.pop(attribute.name, None)
    data = _prune(data)
    if default_active and resource.schema.attribute("active") is not None:
        data.setdefault("active", True)
    return Loaded(data=data, ignored=tuple(dict.fromkeys(ignored)))  # each name once, in order


def load_user(
    payload: object,
    *,
    default_active: bool = True,
    profile: ActiveProfile | None = None,
    resource: ResourceTypeDef = USER_RESOURCE,
) -> Loaded:
    """Validate a User body (POST /Users, PUT /Users/{id}); ``active`` defaults to true.

    A PATCH result is validated with ``default_active=False``: removing ``active`` leaves it
    unassigned (RFC 7644 §3.5.2.2), which the product rules treat as active. ``resource`` is the app's
    User resource type (the base one plus any configured extensions)."""
    return load_resource(resource, payload, default_active=default_active, profile=profile)


def load_group(
    payload: object, *, profile: ActiveProfile | None = None, resource: ResourceTypeDef = GROUP_RESOURCE
) -> LoadedGroup:
    """Validate a Group body (POST /Groups, PUT /Groups/{id}).

    Members are deduplicated by ``value`` (the first occurrence wins), their ``type`` defaults to
    ``User`` and must be ``User`` or ``Group`` (any case); ``$ref`` is ignored since the id says it all.
    """
    loaded = load_resource(resource, payload, profile=profile)
    data = dict(loaded.data)
    members: dict[str, Member] = {}
    for index, item in enumerate(data.pop("members", [])):
        value = item.get("value")
        if not value or not value.strip():
            raise InvalidValue(f"Invalid Group: Attribute 'members[{index}].value': is required (the member's id).")
        given = item.get("type") or "User"
        member_type = next((t for t in MEMBER_TYPES if t.lower() == given.lower()), None)
        if member_type is None:
            raise InvalidValue(
                f"Invalid Group: Attribute 'members[{index}].type': expected User or Group, got \"{given}\"."
            )
        members.setdefault(value, Member(value=value, type=member_type, display=item.get("display")))
    return LoadedGroup(data=data, members=tuple(members.values()), ignored=loaded.ignored)
