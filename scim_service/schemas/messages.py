"""The request messages of RFC 7644 (PatchOp, SearchRequest, BulkRequest) as marshmallow schemas.

The API parses each message here, at the edge, before anything reads the store: a malformed body is
answered without a database read. Each loader returns plain parsed parameters: a PATCH body becomes a
tuple of :class:`PatchOperation`, a SearchRequest the parameters that :mod:`scim_service.query.params`
turns into a query, a BulkRequest a :class:`BulkRequest` of :class:`BulkOperation`.

**The ``schemas`` rule**, one for every message and resource (:func:`schemas_problem`; the resource
loader of :mod:`scim_service.schemas.resources` applies the same function):

* the key ``schemas`` is found in any case, like every attribute name (RFC 7643 §2.1);
* it must be a JSON array of strings that lists the message's URN (or, for a resource, its core
  schema's URN), compared case-insensitively: URNs name schemas, and a client that writes
  ``urn:ietf:params:scim:api:messages:2.0:patchop`` cannot mean anything else;
* a ``schemas`` that is missing, not an array of strings or without that URN is a required value
  missing: **400 invalidValue** (RFC 7644 §3.12), whatever the message.

Other keys of a message are matched case-insensitively too (an exact match wins); keys a message does
not define are ignored. Every other problem maps to the scimType RFC 7644 §3.12 gives it: a body that
is not an object, or an ``Operations`` that is not a non-empty list, is ``invalidSyntax``; a PATCH
``path`` that is not a string is ``invalidPath``; a wrong value is ``invalidValue``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import marshmallow as ma

from scim_service.errors import InvalidPath, InvalidSyntax, InvalidValue, PayloadTooLarge, ScimError
from scim_service.profiles import ActiveProfile, Tolerance, strict

__all__ = [
    "BULK_REQUEST_SCHEMA",
    "BULK_RESPONSE_SCHEMA",
    "PATCH_OP_SCHEMA",
    "SEARCH_REQUEST_SCHEMA",
    "BulkOperation",
    "BulkRequest",
    "PatchOperation",
    "SchemasField",
    "load_bulk_request",
    "load_patch_op",
    "load_search_request",
    "schemas_problem",
]

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"

PATCH_OPS = ("add", "replace", "remove")
BULK_METHODS = ("POST", "PUT", "PATCH", "DELETE")


# -- the schemas rule -------------------------------------------------------------------------------------


def json_kind(value: object) -> str:
    """How a JSON value looks, for error messages (``the string "x"``, ``an array``, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f'the string "{value}"' if len(value) <= 40 else "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def missing_schemas(urn: str, what: str) -> str:
    """The message for a message or resource without ``schemas``."""
    return f"The 'schemas' attribute is missing: a {what} must list {urn}."


def schemas_problem(value: Any, urn: str, what: str) -> str | None:
    """What is wrong with a present ``schemas`` value that must list ``urn`` (case-insensitive), or None.

    ``what`` names the message or resource (``PatchOp request``, ``User``) in the message. The one
    statement of the rule in the module docstring; a caller raises ``InvalidValue`` with the text.
    """
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        return f"The 'schemas' attribute must be an array of schema URNs, got {json_kind(value)}."
    if urn.lower() not in (s.lower() for s in value):
        return f"The 'schemas' attribute does not contain {urn}, which a {what} must list."
    return None


class SchemasField(ma.fields.Field):
    """The ``schemas`` attribute of a message (required unless ``required=False``), checked by
    :func:`schemas_problem`."""

    def __init__(self, urn: str, what: str, *, required: bool = True) -> None:
        super().__init__(
            required=required,
            metadata={"scim_error": InvalidValue},
            error_messages={
                "required": missing_schemas(urn, what),
                "null": f"The 'schemas' attribute must be an array of schema URNs, got null (a {what} lists {urn}).",
            },
        )
        self.urn = urn
        self.what = what

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        problem = schemas_problem(value, self.urn, self.what)
        if problem is not None:
            raise ma.ValidationError(problem)
        return tuple(value)


# -- the machinery shared by the message schemas ---------------------------------------------------------


class _Message(ma.Schema):
    """Base of the message schemas: keys in any case (an exact match wins), unknown keys ignored."""

    class Meta:
        unknown = ma.EXCLUDE

    @ma.pre_load
    def _canonical_keys(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        names = {(f.data_key or name).lower(): f.data_key or name for name, f in self.fields.items()}
        out: dict[str, Any] = {}
        for key, value in data.items():
            canonical = names.get(key.lower()) if isinstance(key, str) else None
            if canonical is not None and (canonical not in out or key == canonical):
                out[canonical] = value
        return out


def _first_message(messages: Any) -> str:
    if isinstance(messages, Mapping):
        return _first_message(next(iter(messages.values()), ""))
    if isinstance(messages, list | tuple):
        return _first_message(messages[0]) if messages else ""
    return str(messages)


def _load(schema: ma.Schema, data: Any, prefix: str = "") -> dict[str, Any]:
    """``schema.load(data)``; the first problem (in the order the fields are declared) as a ScimError of
    the class the field names in its ``scim_error`` metadata (``InvalidValue`` by default)."""
    try:
        return schema.load(data)
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, Mapping) else {"_schema": error.messages}
        for name, declared in schema.fields.items():
            key = declared.data_key or name
            if key in messages:
                cls: type[ScimError] = declared.metadata.get("scim_error", InvalidValue)
                raise cls(prefix + _first_message(messages[key])) from None
        raise InvalidValue(prefix + _first_message(messages)) from None


def _object(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidSyntax(f"The {what} must be a JSON object, got {json_kind(body)}.")
    return body


class _NonEmptyList(ma.fields.Field):
    """A JSON array with at least one element (``Operations``); anything else is ``invalidSyntax``."""

    def __init__(self, message: str) -> None:
        super().__init__(
            required=True,
            metadata={"scim_error": InvalidSyntax},
            error_messages={"required": message, "null": message, "empty": message},
        )

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise self.make_error("empty")
        return list(value)


class _JsonInteger(ma.fields.Field):
    """A JSON integer (not a boolean, not a string of digits)."""

    def __init__(self, name: str) -> None:
        super().__init__(allow_none=True, metadata={"scim_error": InvalidValue})
        self.label = name

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ma.ValidationError(f"{self.label} must be a JSON integer, got {value!r}")
        return value


class _JsonArray(ma.fields.Field):
    """A JSON array, passed on as it is (its items are checked by the code that reads them)."""

    def __init__(self, name: str) -> None:
        super().__init__(allow_none=True, metadata={"scim_error": InvalidValue})
        self.label = name

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, list):
            raise ma.ValidationError(f"{self.label} must be a JSON array, got {json_kind(value)}")
        return value


class _OptionalString(ma.fields.Field):
    """A string or null; ``blank_is_none`` turns an empty or blank string into None."""

    def __init__(self, message: str, error: type[ScimError] = InvalidValue, *, blank_is_none: bool = False) -> None:
        super().__init__(allow_none=True, metadata={"scim_error": error})
        self.message = message
        self.blank_is_none = blank_is_none

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ma.ValidationError(self.message.format(value=value))
        if self.blank_is_none and not value.strip():
            return None
        return value


# -- PatchOp (RFC 7644 §3.5.2) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchOperation:
    """One validated operation of a PatchOp body; ``index`` is its 1-based position, for messages.

    ``op`` is lower case; ``path`` is None for a path-less operation; ``has_value`` tells a missing
    ``value`` from an explicit null. ``profile`` is the request's IdP profile: the PATCH engine asks it
    before applying a tolerance to this operation.
    """

    op: str
    path: str | None
    value: Any
    has_value: bool
    index: int
    profile: ActiveProfile = field(default_factory=strict, compare=False)

    @property
    def where(self) -> str:
        """``Operation 2 (replace emails[...])``: the prefix of every error message about this operation."""
        target = f" {self.path}" if self.path else ""
        return f"Operation {self.index} ({self.op}{target})"


class _PatchOpSchema(_Message):
    schemas = SchemasField(PATCH_OP_SCHEMA, "PatchOp request")
    Operations = _NonEmptyList("The PATCH body needs Operations: a non-empty list of operations.")


class _OpField(ma.fields.Field):
    """``op``: add, replace or remove; another case only when the schema's profile allows it."""

    def __init__(self) -> None:
        super().__init__(
            required=True,
            allow_none=False,
            metadata={"scim_error": InvalidSyntax},
            error_messages={
                "required": "op must be add, replace or remove, got None",
                "null": "op must be add, replace or remove, got None",
            },
        )

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, str) or value.lower() not in PATCH_OPS:
            raise ma.ValidationError(f"op must be add, replace or remove, got {value!r}")
        return value  # its case is judged by load_patch_op, under the request's profile


class _PatchOperationSchema(_Message):
    op = _OpField()
    path = _OptionalString("path must be a string, got {value!r}", InvalidPath, blank_is_none=True)
    value = ma.fields.Raw(allow_none=True, metadata={"scim_error": InvalidValue})

    @ma.validates_schema
    def _value_required(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if data["op"].lower() != "remove" and "value" not in data:
            raise ma.ValidationError(f"a value is required for {data['op']}", field_name="value")


# One instance of each message schema for every request: building one deep-copies its fields, and
# ``load`` keeps no state on the instance (the profile is applied by the loaders, not the schemas).
_PATCH_OP = _PatchOpSchema()
_PATCH_OPERATION = _PatchOperationSchema()


def load_patch_op(body: Any, profile: ActiveProfile | None = None) -> tuple[PatchOperation, ...]:
    """Validate a PatchOp body (RFC 7644 §3.5.2) and return its operations in order.

    ``schemas`` follows the module's rule (400 invalidValue). ``InvalidSyntax`` when the body is not an
    object, ``Operations`` is not a non-empty list of objects, or an ``op`` is not add, replace or
    remove (in another case only when ``profile`` allows ``capitalised_ops``); ``InvalidPath`` for a
    ``path`` that is not a string; ``InvalidValue`` for an add or replace without a value. A blank path
    counts as none.
    """
    profile = profile if profile is not None else strict()
    envelope = _load(_PATCH_OP, _object(body, "PATCH body"))
    operations: list[PatchOperation] = []
    for index, raw in enumerate(envelope["Operations"], start=1):
        if not isinstance(raw, Mapping):
            raise InvalidSyntax(f"Operation {index} must be an object with op, path and value")
        loaded = _load(_PATCH_OPERATION, raw, prefix=f"Operation {index}: ")
        op = loaded["op"]
        if op not in PATCH_OPS and not profile.allows(Tolerance.CAPITALISED_OPS, f"op {op!r}"):
            raise InvalidSyntax(f"Operation {index}: op must be add, replace or remove in lower case, got {op!r}")
        operations.append(
            PatchOperation(
                op=op.lower(),
                path=loaded.get("path"),
                value=loaded.get("value"),
                has_value="value" in loaded,
                index=index,
                profile=profile,
            )
        )
    return tuple(operations)


# -- SearchRequest (RFC 7644 §3.4.3) ---------------------------------------------------------------------


class _SearchRequestSchema(_Message):
    schemas = SchemasField(SEARCH_REQUEST_SCHEMA, "SearchRequest")
    startIndex = _JsonInteger("startIndex")
    count = _JsonInteger("count")
    attributes = _JsonArray("attributes")
    excludedAttributes = _JsonArray("excludedAttributes")
    # Their values are checked where the query string's are (query.params), with the same messages.
    filter = ma.fields.Raw(allow_none=True)
    sortBy = ma.fields.Raw(allow_none=True)
    sortOrder = ma.fields.Raw(allow_none=True)
    cursor = ma.fields.Raw(allow_none=True)


_SEARCH_REQUEST = _SearchRequestSchema()


def load_search_request(body: Any) -> dict[str, Any]:
    """Validate a SearchRequest body and return its parameters by lower-case name (``sortby``,
    ``startindex``, ...), as :func:`scim_service.query.params.parse_search_request` reads them.

    ``startIndex`` and ``count`` must be JSON integers, ``attributes`` and ``excludedAttributes`` JSON
    arrays (``InvalidValue``); the filter, sortBy, sortOrder and cursor are checked with the list
    parameters. ``InvalidSyntax`` when the body is not an object.
    """
    loaded = _load(_SEARCH_REQUEST, _object(body, "search request body"))
    loaded.pop("schemas")
    return {key.lower(): value for key, value in loaded.items()}


# -- BulkRequest (RFC 7644 §3.7) -------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkOperation:
    """One operation of a BulkRequest, its envelope checked; ``index`` is its 0-based position.

    ``method`` is upper case. ``data`` (a resource or a PatchOp body) is parsed when the operation runs,
    after its ``bulkId:`` references are resolved. ``error`` is set when the operation itself is
    malformed: it then fails with that error, without running. ``references`` are the bulkIds its path
    and data refer to (each defined by another operation of the request).
    """

    index: int
    method: str
    path: str | None = None
    bulk_id: str | None = None
    data: Any = None
    version: str | None = None
    error: ScimError | None = None
    references: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BulkRequest:
    """A parsed BulkRequest: its operations in request order and ``failOnErrors`` (None: never stop)."""

    operations: tuple[BulkOperation, ...]
    fail_on_errors: int | None = None


class _FailOnErrors(ma.fields.Field):
    def __init__(self) -> None:
        super().__init__(allow_none=True, metadata={"scim_error": InvalidValue})

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ma.ValidationError("failOnErrors must be a positive integer.")
        return value


class _BulkRequestSchema(_Message):
    schemas = SchemasField(BULK_REQUEST_SCHEMA, "BulkRequest")
    Operations = _NonEmptyList("A BulkRequest needs a non-empty 'Operations' list.")
    failOnErrors = _FailOnErrors()


class _MethodField(ma.fields.Field):
    def __init__(self) -> None:
        message = "A bulk operation needs a method: POST, PUT, PATCH or DELETE."
        super().__init__(required=True, error_messages={"required": message, "null": message})

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, str) or value.upper() not in BULK_METHODS:
            raise ma.ValidationError(f"Unknown bulk method {value!r}: use POST, PUT, PATCH or DELETE.")
        return value.upper()


class _Version(ma.fields.Field):
    """An ETag (``W/"3"``, ``"3"`` or ``3``) as the bare version; anything else is no version."""

    def __init__(self) -> None:
        super().__init__(allow_none=True)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            return None
        text = value.strip()
        return (text[2:] if text.startswith("W/") else text).strip('"')


class _BulkOperationSchema(_Message):
    method = _MethodField()
    path = _OptionalString("Operation path {value!r} is not /Users, /Groups or one of their ids.")
    bulkId = _OptionalString("bulkId must be a string, got {value!r}")
    version = _Version()
    data = ma.fields.Raw(allow_none=True)


_BULK_REQUEST = _BulkRequestSchema()
_BULK_OPERATION = _BulkOperationSchema()


def _bulk_operation(index: int, raw: Any) -> BulkOperation:
    """One operation's envelope; a malformed one carries its error instead of failing the request,
    except what makes the request itself unreadable (see :func:`load_bulk_request`)."""
    if not isinstance(raw, Mapping):
        raise InvalidSyntax(f"Operation {index + 1} of the BulkRequest must be an object.")
    given = next((v for k, v in raw.items() if isinstance(k, str) and k.lower() == "bulkid"), None)
    if given is not None and not isinstance(given, str):
        # Other operations may refer to it: the whole request is unreadable, not just this operation.
        raise InvalidValue(f"Operation {index + 1}: bulkId must be a string, got {type(given).__name__}.")
    method = raw.get("method") if isinstance(raw.get("method"), str) else ""
    try:
        loaded = _load(_BULK_OPERATION, raw)
    except ScimError as error:
        return BulkOperation(index, str(method).upper(), bulk_id=given, error=error)
    path, data = loaded.get("path"), loaded.get("data")
    return BulkOperation(
        index,
        loaded["method"],
        path=path,
        bulk_id=loaded.get("bulkId"),
        data=data,
        version=loaded.get("version"),
        references=frozenset(_references(path, data)),
    )


BULK_REFERENCE = re.compile(r"^bulkId:(.+)$")


def bulk_reference(value: str) -> str | None:
    """The bulkId a string refers to: ``bulkId:x`` as a whole value, or as the last segment of a path
    (``/Users/bulkId:x``); None for any other string. The one rule of what a reference is."""
    if "bulkId:" not in value:
        return None
    if value.startswith("/"):
        value = value.rpartition("/")[2]
    match = BULK_REFERENCE.match(value)
    return match.group(1) if match else None


def _references(path: str | None, data: Any) -> set[str]:
    """Every bulkId the path and data refer to; a loop, not recursion, whatever the nesting."""
    found: set[str] = set()
    stack: list[Any] = [path, data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            ref = bulk_reference(value)
            if ref is not None:
                found.add(ref)
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def load_bulk_request(body: Any, *, max_operations: int) -> BulkRequest:
    """Validate a BulkRequest envelope and each operation's own keys.

    ``schemas`` follows the module's rule; ``InvalidSyntax`` when the body is not an object or
    ``Operations`` is not a non-empty list; ``PayloadTooLarge`` beyond ``max_operations``;
    ``InvalidValue`` for a ``failOnErrors`` that is not a positive integer. A malformed operation does
    not fail the request: it carries its error (RFC 7644 §3.7.3 reports errors per operation), except
    what no operation can run with, found before any runs: an operation that is not an object
    (``InvalidSyntax``), a bulkId that is not a string, given twice, or referred to but defined by no
    operation (``InvalidValue``).
    """
    envelope = _load(_BULK_REQUEST, _object(body, "BulkRequest"))
    operations = envelope["Operations"]
    if len(operations) > max_operations:
        raise PayloadTooLarge(
            f"The BulkRequest has {len(operations)} operations; this server accepts at most {max_operations}."
        )
    parsed = tuple(_bulk_operation(i, raw) for i, raw in enumerate(operations))
    defined: set[str] = set()
    for operation in parsed:
        if operation.bulk_id is None:
            continue
        if operation.bulk_id in defined:
            raise InvalidValue(f"bulkId {_clip(operation.bulk_id)!r} is given to more than one operation.")
        defined.add(operation.bulk_id)
    for operation in parsed:
        unknown = operation.references - defined
        if unknown:
            raise InvalidValue(
                f"Operation {operation.index + 1} refers to bulkId {_clip(min(unknown))!r}, "
                "which no operation of this request defines."
            )
    return BulkRequest(operations=parsed, fail_on_errors=envelope.get("failOnErrors"))


def _clip(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
