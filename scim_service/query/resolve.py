"""Resolution of raw filter ASTs against a resource type's schemas.

The parser only checks syntax. :func:`resolve_filter` replaces every :class:`AttrPath` by its canonical
form (canonical names, ``schema`` = the URN of the defining schema, the leaf's type and caseExact, the
top attribute's multiValued) and rejects what cannot be evaluated: unknown attributes, ordering
operators on booleans and binaries, and comparison values of the wrong type. Backends and the evaluator
only ever see resolved filters.

A complex multi-valued attribute used without a sub-attribute (``emails eq "x"``) means its ``value``
sub-attribute (RFC 7644 §3.4.2.2).
"""

from __future__ import annotations

from scim_service.errors import InvalidFilter, ScimError
from scim_service.query.ast import And, AttrPath, Compare, Filter, Not, Or, Present, Value, ValuePath
from scim_service.query.evaluator import parse_datetime
from scim_service.query.parser import render_path
from scim_service.schemas.definitions import ResolvedAttribute, ResourceTypeDef, resolve_attribute

__all__ = ["canonical_path", "resolve_filter", "resolve_path"]

_STRING_TYPES = frozenset({"string", "reference", "binary"})
_ORDER_OPS = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING_OPS = frozenset({"co", "sw", "ew"})


def _lookup(path: AttrPath, resource: ResourceTypeDef, error: type[ScimError]) -> ResolvedAttribute:
    try:
        return resolve_attribute(resource, path.attr, path.sub_attr, path.schema)
    except LookupError as exc:
        raise error(f"Unknown attribute {render_path(path)!r}: {exc}") from None


def canonical_path(resolved: ResolvedAttribute) -> AttrPath:
    """The resolved :class:`AttrPath` of a resolved attribute definition."""
    leaf = resolved.leaf
    return AttrPath(
        attr=resolved.attribute.name,
        sub_attr=resolved.sub_attribute.name if resolved.sub_attribute is not None else None,
        schema=resolved.schema_urn,
        type=leaf.type,
        case_exact=leaf.case_exact,
        multi_valued=resolved.attribute.multi_valued,
    )


def _implicit_value(resolved: ResolvedAttribute) -> ResolvedAttribute:
    """A complex multi-valued attribute without a sub-attribute stands for its ``value`` (RFC 7644 §3.4.2.2)."""
    attribute = resolved.attribute
    if resolved.sub_attribute is None and attribute.type == "complex" and attribute.multi_valued:
        value = attribute.sub("value")
        if value is not None:
            return ResolvedAttribute(resolved.schema_urn, attribute, value)
    return resolved


def resolve_path(path: AttrPath, resource: ResourceTypeDef, *, error: type[ScimError] = InvalidFilter) -> AttrPath:
    """Resolve a sortBy path (or any path naming one simple value); raises ``error`` when it cannot.

    A complex multi-valued attribute resolves to its ``value`` sub-attribute; any other complex
    attribute without a sub-attribute is rejected (it has no single value to order by).
    """
    resolved = _implicit_value(_lookup(path, resource, error))
    if resolved.leaf.type == "complex":
        raise error(f"The attribute {render_path(path)!r} is complex: name one of its sub-attributes")
    return canonical_path(resolved)


def _check_value(path: AttrPath, op: str, value: Value, written: str) -> None:
    """Reject an operator or a comparison value that does not fit the attribute's type."""
    kind = path.type
    where = f"in '{written} {op} ...'"
    if value is None:
        if op not in ("eq", "ne"):
            raise InvalidFilter(f"Only eq and ne compare with null {where}")
        return
    if kind == "boolean":
        if op not in ("eq", "ne"):
            raise InvalidFilter(f"The operator {op!r} does not apply to the boolean attribute {written!r}")
        if not isinstance(value, bool):
            raise InvalidFilter(f"Expected true or false for the boolean attribute {written!r}, got {value!r}")
        return
    if kind in ("integer", "decimal"):
        if op in _SUBSTRING_OPS:
            raise InvalidFilter(f"The operator {op!r} does not apply to the numeric attribute {written!r}")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (kind == "integer" and isinstance(value, float))
        ):
            raise InvalidFilter(f"Expected {'an integer' if kind == 'integer' else 'a number'} {where}, got {value!r}")
        return
    if kind == "dateTime":
        if op in _SUBSTRING_OPS:
            raise InvalidFilter(f"The operator {op!r} does not apply to the dateTime attribute {written!r}")
        if not isinstance(value, str) or parse_datetime(value) is None:
            raise InvalidFilter(
                f'Expected an ISO 8601 date-time string such as "2024-01-31T12:00:00Z" {where}, got {value!r}'
            )
        return
    if kind == "binary" and op in _ORDER_OPS:
        raise InvalidFilter(f"The operator {op!r} does not apply to the binary attribute {written!r}")
    if kind == "complex":
        raise InvalidFilter(f"The attribute {written!r} is complex: compare one of its sub-attributes")
    if not isinstance(value, str):
        raise InvalidFilter(f"Expected a string {where}, got {value!r}")


def _resolve_leaf(path: AttrPath, resource: ResourceTypeDef) -> AttrPath:
    return canonical_path(_implicit_value(_lookup(path, resource, InvalidFilter)))


def _resolve(f: Filter, resource: ResourceTypeDef) -> Filter:
    if isinstance(f, Compare):
        path = _resolve_leaf(f.path, resource)
        _check_value(path, f.op, f.value, render_path(f.path))
        return Compare(path, f.op, f.value)
    if isinstance(f, Present):
        # "name pr" / "emails pr" keep the complex attribute; _resolve_leaf maps emails -> emails.value,
        # which is present exactly when some element has a value.
        return Present(_resolve_leaf(f.path, resource))
    if isinstance(f, And):
        return And(_resolve(f.left, resource), _resolve(f.right, resource))
    if isinstance(f, Or):
        return Or(_resolve(f.left, resource), _resolve(f.right, resource))
    if isinstance(f, Not):
        return Not(_resolve(f.expr, resource))
    if isinstance(f, ValuePath):
        outer = _lookup(f.attr, resource, InvalidFilter)
        if outer.sub_attribute is not None or outer.attribute.type != "complex":
            raise InvalidFilter(
                f"A value filter needs a complex attribute; {render_path(f.attr)!r} is {outer.leaf.type}"
            )
        attr = canonical_path(outer)
        return ValuePath(attr, _resolve_inner(f.filter, resource, attr))
    raise TypeError(f"not a filter node: {f!r}")


def _resolve_inner(f: Filter, resource: ResourceTypeDef, outer: AttrPath) -> Filter:
    """Resolve the filter inside ``outer[...]``: each path is a sub-attribute of ``outer``."""
    if isinstance(f, Compare | Present):
        if f.path.sub_attr is None:
            raise InvalidFilter(f"Expected a sub-attribute of {outer.attr!r} inside its value filter")
        raw = AttrPath(attr=outer.attr, sub_attr=f.path.sub_attr, schema=outer.schema)
        path = canonical_path(_lookup(raw, resource, InvalidFilter))
        if isinstance(f, Present):
            return Present(path)
        _check_value(path, f.op, f.value, f"{outer.attr}[{f.path.sub_attr}]")
        return Compare(path, f.op, f.value)
    if isinstance(f, And):
        return And(_resolve_inner(f.left, resource, outer), _resolve_inner(f.right, resource, outer))
    if isinstance(f, Or):
        return Or(_resolve_inner(f.left, resource, outer), _resolve_inner(f.right, resource, outer))
    if isinstance(f, Not):
        return Not(_resolve_inner(f.expr, resource, outer))
    raise InvalidFilter(f"Value filters cannot be nested (inside {outer.attr!r})")


def resolve_filter(f: Filter, resource: ResourceTypeDef) -> Filter:
    """Check ``f`` against ``resource``'s schemas and return it with every path in canonical form.

    Raises :class:`~scim_service.errors.InvalidFilter` naming the unknown attribute, the operator that
    does not apply, or the value of the wrong type.
    """
    return _resolve(f, resource)
