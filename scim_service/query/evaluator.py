"""The reference evaluator of the filter AST over rendered SCIM documents: the oracle for every backend.

Every backend compiles the AST to its own query language; the conformance kit compares their results
with :func:`matches` / :func:`evaluate_list` over the same documents, so these semantics are the
contract and a backend must reproduce them exactly.

Documents are rendered SCIM resources: ``id``, ``userName``, ``emails`` (a list of dicts), ``meta`` (a
dict), the enterprise extension as a dict under its URN key, ... Keys are looked up case-insensitively.
A path whose ``schema`` names a key of the document (an extension URN) is looked up inside that dict;
otherwise at the top level.

Semantics (paths are expected to be resolved, see :mod:`scim_service.query.resolve`):

* **Values of a path.** ``attr`` gives the attribute's value, or each element when it is a list;
  ``attr.sub`` gives ``sub`` of the complex value, or of each element of a multi-valued attribute.
  An element that is a dict, reached without a sub-attribute, stands for its ``value`` sub-attribute.
  ``None`` values are dropped: a missing attribute, a null and an empty list all have no values.
* **Multi-valued.** ``eq co sw ew gt ge lt le`` are true when *any* value satisfies them; with no
  values they are false.
* **ne** is exactly ``not eq``: true when no value equals (so a missing attribute is ``ne`` anything,
  and ``ne null`` is true when the attribute has a value).
* **null.** ``eq null`` is true when the attribute has no values. Any other operator with ``null``
  is false (the resolver rejects it anyway).
* **pr** is true when some value is present, where absent means ``None``, ``""``, ``[]``, ``{}`` or
  a dict/list whose members are all absent (recursively).
* **Strings** (``string``, ``reference``, ``binary``) compare after ``str.lower()`` of both sides unless
  the leaf is ``caseExact``; ``co``/``sw``/``ew`` are substring/prefix/suffix tests; ``gt ge lt le``
  compare by Unicode code points.
* **Names** (:func:`compares_by_key`: a user's ``userName`` and ``emails.value``, also inside
  ``emails[...]``, and a group's ``displayName``): ``eq`` (and so ``ne``) compares
  :func:`scim_service.rules.comparison_key` of both sides, the key uniqueness uses, so a filter finds
  the holder of every name a write is refused for. Their other operators and sorting stay as above.
* **dateTime** values compare as instants: both sides are parsed as ISO 8601 (``Z`` or an offset;
  no offset means UTC); a side that does not parse makes the comparison false. ``co sw ew`` are false.
* **Numbers** (``integer``, ``decimal``) compare numerically; ``co sw ew`` are false.
* **Booleans** support only ``eq`` (and so ``ne``); any other operator is false.
* A value of a Python type that does not fit the comparison (a number for a string attribute, a
  string for a boolean, ...) does not match.
* **Value paths** ``attr[inner]`` are true when one single element of ``attr`` satisfies the whole
  inner filter (its paths are sub-attributes of ``attr``).

Sorting (:func:`sort_key`, :func:`evaluate_list`): a multi-valued attribute sorts by the value of its
primary element, or else its first element (RFC 7644 §3.4.2.3). Strings sort case-insensitively
(``str.lower()``) unless caseExact, a user's ``userName`` and a group's ``displayName`` by their
comparison key (:func:`sorts_by_key`, so a store sorts on the key column it already indexes), dateTimes
as instants, numbers numerically, booleans false first.
Documents without a value sort last ascending and first descending; ties keep ``id`` ascending.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from scim_service.model import GROUP_SCHEMA, USER_SCHEMA
from scim_service.query.ast import (
    And,
    AttrPath,
    Compare,
    Filter,
    ListQuery,
    Not,
    Or,
    Present,
    Value,
    ValuePath,
)
from scim_service.rules import comparison_key

__all__ = [
    "attribute_values",
    "compares_by_key",
    "evaluate_list",
    "get_ci",
    "is_present",
    "matches",
    "matches_element",
    "parse_datetime",
    "sort_key",
    "sorts_by_key",
]

_STRING_TYPES = frozenset({"string", "reference", "binary"})
_NUMBER_TYPES = frozenset({"integer", "decimal"})
_MISSING = object()


def get_ci(mapping: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``mapping[key]`` with the key compared case-insensitively (an exact match wins)."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return default


def parse_datetime(value: Any) -> datetime | None:
    """An ISO 8601 string (or a datetime) as an aware datetime; None when it is not one.

    A value without a UTC offset is taken as UTC.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if not text or not text[0].isdigit():
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def is_present(value: Any) -> bool:
    """The ``pr`` test of one value: not None, "", an empty list or dict, or made only of those."""
    if value is None:
        return False
    if isinstance(value, str):
        return value != ""
    if isinstance(value, Mapping):
        return any(is_present(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(is_present(v) for v in value)
    return True


def _container(doc: Mapping[str, Any], path: AttrPath) -> Mapping[str, Any]:
    """The dict that holds ``path.attr``: the extension dict under the schema URN key, or the document."""
    if path.schema:
        nested = get_ci(doc, path.schema)
        if isinstance(nested, Mapping):
            return nested
    return doc


def _element_values(element: Any, sub_attr: str | None) -> list[Any]:
    """The values one element (or single value) contributes to a path."""
    if sub_attr is not None:
        if isinstance(element, Mapping):
            return [get_ci(element, sub_attr)]
        return []
    if isinstance(element, Mapping):
        return [get_ci(element, "value")]
    return [element]


def attribute_values(doc: Mapping[str, Any], path: AttrPath) -> list[Any]:
    """Every non-null value ``path`` reaches in ``doc`` (see the module docstring)."""
    top = get_ci(_container(doc, path), path.attr)
    elements = top if isinstance(top, list | tuple) else [top]
    out: list[Any] = []
    for element in elements:
        if element is None:
            continue
        out.extend(v for v in _element_values(element, path.sub_attr) if v is not None)
    return out


def _path_values(doc: Mapping[str, Any], path: AttrPath, element: Mapping[str, Any] | None) -> list[Any]:
    if element is not None:
        # Inside a value path: the paths name sub-attributes of the one element under test.
        value = get_ci(element, path.sub_attr) if path.sub_attr else element
        return [value] if value is not None else []
    return attribute_values(doc, path)


def _present(doc: Mapping[str, Any], path: AttrPath, element: Mapping[str, Any] | None) -> bool:
    if element is not None:
        return is_present(get_ci(element, path.sub_attr) if path.sub_attr else element)
    top = get_ci(_container(doc, path), path.attr)
    if path.sub_attr is None:
        return is_present(top)
    elements = top if isinstance(top, list | tuple) else [top]
    return any(isinstance(e, Mapping) and is_present(get_ci(e, path.sub_attr)) for e in elements)


def compares_by_key(path: AttrPath) -> bool:
    """Whether ``eq`` on the resolved ``path`` compares comparison keys (:func:`~scim_service.rules.comparison_key`):
    the names uniqueness is judged by, a user's ``userName`` and ``emails.value`` and a group's
    ``displayName`` (a user's ``displayName`` is no name of that kind). A caseExact leaf never does."""
    if path.case_exact or path.type != "string":
        return False
    if path.schema == USER_SCHEMA:
        return (path.attr == "userName" and path.sub_attr is None) or (
            path.attr == "emails" and path.sub_attr == "value"
        )
    return path.schema == GROUP_SCHEMA and path.attr == "displayName" and path.sub_attr is None


def sorts_by_key(path: AttrPath) -> bool:
    """Whether sortBy ``path`` orders by comparison key: the single-valued names of :func:`compares_by_key`
    (``userName``, a group's ``displayName``), which a store keeps as an indexed key column."""
    return compares_by_key(path) and path.sub_attr is None


def _compare_one(actual: Any, op: str, expected: Value, path: AttrPath) -> bool:
    """One stored value against the filter value, for every operator except ``ne``."""
    if expected is None:
        return False
    if path.type == "dateTime":
        if op in ("co", "sw", "ew"):
            return False
        left, right = parse_datetime(actual), parse_datetime(expected)
        if left is None or right is None:
            return False
        return _ordered(left, op, right)
    if isinstance(expected, bool) or isinstance(actual, bool) or path.type == "boolean":
        return op == "eq" and isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(expected, int | float) or path.type in _NUMBER_TYPES:
        if not isinstance(actual, int | float) or not isinstance(expected, int | float) or op in ("co", "sw", "ew"):
            return False
        return _ordered(actual, op, expected)
    if not isinstance(actual, str) or not isinstance(expected, str):
        return False
    if op == "eq" and compares_by_key(path):
        return comparison_key(actual) == comparison_key(expected)
    if not path.case_exact:
        actual, expected = actual.lower(), expected.lower()
    if op == "co":
        return expected in actual
    if op == "sw":
        return actual.startswith(expected)
    if op == "ew":
        return actual.endswith(expected)
    return _ordered(actual, op, expected)


def _ordered(left: Any, op: str, right: Any) -> bool:
    if op == "eq":
        return left == right
    if op == "gt":
        return left > right
    if op == "ge":
        return left >= right
    if op == "lt":
        return left < right
    if op == "le":
        return left <= right
    return False


def _compare(doc: Mapping[str, Any], f: Compare, element: Mapping[str, Any] | None) -> bool:
    values = _path_values(doc, f.path, element)
    if f.op == "ne":
        return not _compare(doc, Compare(f.path, "eq", f.value), element)
    if f.value is None:
        return f.op == "eq" and not values
    return any(_compare_one(v, f.op, f.value, f.path) for v in values)


def _eval(f: Filter, doc: Mapping[str, Any], element: Mapping[str, Any] | None) -> bool:
    if isinstance(f, Compare):
        return _compare(doc, f, element)
    if isinstance(f, Present):
        return _present(doc, f.path, element)
    if isinstance(f, And):
        return _eval(f.left, doc, element) and _eval(f.right, doc, element)
    if isinstance(f, Or):
        return _eval(f.left, doc, element) or _eval(f.right, doc, element)
    if isinstance(f, Not):
        return not _eval(f.expr, doc, element)
    if isinstance(f, ValuePath):
        top = get_ci(_container(doc, f.attr), f.attr.attr)
        elements = top if isinstance(top, list | tuple) else [top]
        return any(isinstance(e, Mapping) and _eval(f.filter, doc, e) for e in elements)
    raise TypeError(f"not a filter node: {f!r}")


def matches(f: Filter, doc: Mapping[str, Any]) -> bool:
    """Whether the rendered SCIM document ``doc`` satisfies the filter ``f``."""
    return _eval(f, doc, None)


def matches_element(f: Filter, element: Mapping[str, Any]) -> bool:
    """Whether one element of a multi-valued attribute satisfies the inner filter of a value path.

    The paths of ``f`` name sub-attributes (``AttrPath(attr=outer, sub_attr=name)``); PATCH uses this to
    select the elements ``emails[type eq "work"]`` targets.
    """
    return _eval(f, {}, element)


# -- sorting and paging -------------------------------------------------------------------------


def _sort_value(doc: Mapping[str, Any], path: AttrPath) -> Any:
    top = get_ci(_container(doc, path), path.attr)
    if isinstance(top, list | tuple):
        # RFC 7644 §3.4.2.3: a multi-valued attribute sorts by its primary value, else its first.
        candidates = [e for e in top if e is not None]
        primary = [e for e in candidates if isinstance(e, Mapping) and get_ci(e, "primary") is True]
        ordered = primary + candidates
        for element in ordered:
            values = _element_values(element, path.sub_attr)
            if values and values[0] is not None:
                return values[0]
        return _MISSING
    if top is None:
        return _MISSING
    if path.sub_attr is not None:
        value = get_ci(top, path.sub_attr) if isinstance(top, Mapping) else None
        return _MISSING if value is None else value
    return top


def sort_key(path: AttrPath, doc: Mapping[str, Any]) -> tuple[Any, ...]:
    """An ordering key of ``doc`` for sortBy ``path``: sort ascending on it, or ``reverse=True`` for descending.

    Present values give ``(0, v)`` and missing ones ``(1,)``, so missing values come last ascending and
    first descending.
    """
    value = _sort_value(doc, path)
    if value is _MISSING:
        return (1,)
    if path.type == "dateTime":
        parsed = parse_datetime(value)
        return (1,) if parsed is None else (0, parsed.timestamp())
    if path.type in _NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return (1,)
        return (0, value)
    if path.type == "boolean":
        return (0, int(value)) if isinstance(value, bool) else (1,)
    if path.type == "complex":
        return (1,)
    text = value if isinstance(value, str) else str(value)
    if sorts_by_key(path):
        return (0, comparison_key(text))
    return (0, text if path.case_exact else text.lower())


def evaluate_list(docs: Iterable[Mapping[str, Any]], query: ListQuery) -> tuple[list[Mapping[str, Any]], int]:
    """Filter, sort and page ``docs`` as a backend must: returns (the page, the total number of matches).

    Ties (and the order without ``sort_by``) are by ``id`` ascending; ``start_index`` is 1-based and
    ``count`` the page size (0 gives an empty page with the total). Cursor paging is not modelled here.
    """
    selected = [d for d in docs if query.filter is None or matches(query.filter, d)]
    selected.sort(key=lambda d: str(get_ci(d, "id", "")))
    if query.sort_by is not None:
        sort_by = query.sort_by
        # list.sort is stable also with reverse=True, so ties keep id ascending either way.
        selected.sort(key=lambda d: sort_key(sort_by, d), reverse=query.descending)
    start = max(query.start_index, 1) - 1
    page: Sequence[Mapping[str, Any]] = selected[start : start + max(query.count, 0)]
    return list(page), len(selected)
