"""List and search request parameters (RFC 7644 §3.4.2, §3.4.3) parsed into a :class:`ListRequest`.

``GET /Users?filter=...&sortBy=...&startIndex=...&count=...&attributes=...`` goes through
:func:`parse_list_params`; ``POST /Users/.search`` bodies through :func:`parse_search_request`. Both
clamp paging the way RFC 7644 §3.4.2.4 asks (startIndex below 1 counts as 1, a negative count as 0,
a count above the server maximum as the maximum), parse and resolve the filter and sortBy, and keep the
projection lists for the schema dump.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scim_service.errors import InvalidFilter, InvalidSyntax, InvalidValue
from scim_service.query.ast import AttrPath, ListQuery
from scim_service.query.parser import parse_attr_path, parse_filter
from scim_service.query.resolve import resolve_filter, resolve_path
from scim_service.schemas.definitions import ResourceTypeDef, split_urn_path

__all__ = ["SEARCH_REQUEST_SCHEMA", "ListRequest", "parse_list_params", "parse_search_request"]

SEARCH_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

# The parameters of RFC 7644 §3.4.2 (and cursor, RFC 9865) by their lower-case name.
_PARAMS = ("filter", "sortby", "sortorder", "startindex", "count", "attributes", "excludedattributes", "cursor")


@dataclass(frozen=True)
class ListRequest:
    """A parsed list or search request: the query for the backend and the projection for the dump.

    ``attributes`` / ``excluded_attributes`` are the names as the client wrote them (at most one of the
    two is set), None when not asked for.
    """

    query: ListQuery
    attributes: tuple[str, ...] | None = None
    excluded_attributes: tuple[str, ...] | None = None


def _pick(args: Mapping[str, Any]) -> dict[str, Any]:
    """The known parameters by lower-case name; IdPs vary the case (startIndex, startindex, StartIndex)."""
    picked: dict[str, Any] = {}
    for key, value in args.items():
        lowered = key.lower() if isinstance(key, str) else key
        if lowered in _PARAMS and lowered not in picked:
            picked[lowered] = value
    return picked


def _int_param(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise InvalidValue(f"The parameter {name} must be an integer, got {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    raise InvalidValue(f"The parameter {name} must be an integer, got {raw!r}")


def _name_list(name: str, raw: Any) -> tuple[str, ...]:
    """A comma-separated string (query string) or a list of strings (search body) of attribute names."""
    if isinstance(raw, str):
        items = raw.split(",")
    elif isinstance(raw, list | tuple) and all(isinstance(x, str) for x in raw):
        items = [part for x in raw for part in x.split(",")]
    else:
        raise InvalidValue(f"The parameter {name} must be a list of attribute names, got {raw!r}")
    names = tuple(item.strip() for item in items if item.strip())
    return names


def _names_member(names: Sequence[str], attribute: str) -> bool:
    """Whether ``names`` lists ``attribute`` itself or one of its sub-attributes (URN prefix allowed)."""
    for name in names:
        _urn, rest = split_urn_path(name)
        lowered = rest.lower()
        if lowered == attribute or lowered.startswith(attribute + "."):
            return True
    return False


def _build(params: Mapping[str, Any], resource: ResourceTypeDef, *, default_count: int, max_count: int) -> ListRequest:
    filter_ = None
    raw_filter = params.get("filter")
    if raw_filter is not None:
        if not isinstance(raw_filter, str):
            raise InvalidFilter(f"The filter must be a string, got {raw_filter!r}")
        if raw_filter.strip():
            filter_ = resolve_filter(parse_filter(raw_filter), resource)

    sort_by = None
    raw_sort = params.get("sortby")
    if raw_sort is not None:
        if not isinstance(raw_sort, str):
            raise InvalidValue(f"sortBy must be an attribute name, got {raw_sort!r}")
        if raw_sort.strip():
            sort_by = _resolve_sort(raw_sort.strip(), resource)

    descending = False
    raw_order = params.get("sortorder")
    if raw_order is not None:
        order = raw_order.strip().lower() if isinstance(raw_order, str) else None
        if order not in ("ascending", "descending", ""):
            raise InvalidValue(f"sortOrder must be 'ascending' or 'descending', got {raw_order!r}")
        descending = order == "descending"

    start_index = 1
    if params.get("startindex") not in (None, ""):
        start_index = max(_int_param("startIndex", params["startindex"]), 1)

    count = default_count
    if params.get("count") not in (None, ""):
        count = _int_param("count", params["count"])
    count = min(max(count, 0), max_count)

    cursor: str | None = None
    if "cursor" in params and params["cursor"] is not None:
        if not isinstance(params["cursor"], str):
            raise InvalidValue(f"cursor must be a string, got {params['cursor']!r}")
        cursor = params["cursor"]  # "" asks for the first page (RFC 9865)

    attributes = None
    excluded = None
    if params.get("attributes") is not None:
        attributes = _name_list("attributes", params["attributes"]) or None
    if params.get("excludedattributes") is not None:
        excluded = _name_list("excludedAttributes", params["excludedattributes"]) or None
    if attributes is not None and excluded is not None:
        raise InvalidValue("Give either attributes or excludedAttributes, not both")

    include_members = include_groups = True
    if attributes is not None:
        include_members = _names_member(attributes, "members")
        include_groups = _names_member(attributes, "groups")
    elif excluded is not None:
        include_members = not any(split_urn_path(n)[1].lower() == "members" for n in excluded)
        include_groups = not any(split_urn_path(n)[1].lower() == "groups" for n in excluded)

    query = ListQuery(
        filter=filter_,
        sort_by=sort_by,
        descending=descending,
        start_index=start_index,
        count=count,
        cursor=cursor,
        include_members=include_members,
        include_groups=include_groups,
    )
    return ListRequest(query=query, attributes=attributes, excluded_attributes=excluded)


def _resolve_sort(text: str, resource: ResourceTypeDef) -> AttrPath:
    """Parse and resolve a sortBy attribute path; anything wrong is an InvalidValue."""
    return resolve_path(parse_attr_path(text, error=InvalidValue), resource, error=InvalidValue)


def parse_list_params(
    args: Mapping[str, str], resource: ResourceTypeDef, *, default_count: int, max_count: int
) -> ListRequest:
    """Parse the query-string parameters of ``GET /Users`` or ``GET /Groups`` (RFC 7644 §3.4.2).

    Parameter names are matched case-insensitively. Raises :class:`InvalidFilter` for a bad filter and
    :class:`InvalidValue` for a bad sortBy, sortOrder, startIndex, count or projection.
    """
    return _build(_pick(args), resource, default_count=default_count, max_count=max_count)


def parse_search_request(
    body: Mapping[str, Any], resource: ResourceTypeDef, *, default_count: int, max_count: int
) -> ListRequest:
    """Parse the JSON body of ``POST .search`` (RFC 7644 §3.4.3).

    ``schemas`` must list :data:`SEARCH_REQUEST_SCHEMA`; ``attributes``/``excludedAttributes`` are JSON
    arrays of names, ``startIndex``/``count`` JSON numbers. Raises :class:`InvalidSyntax` for a body that
    is not a search request and the errors of :func:`parse_list_params` otherwise.
    """
    if not isinstance(body, Mapping):
        raise InvalidSyntax("The search request body must be a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or SEARCH_REQUEST_SCHEMA not in schemas:
        raise InvalidSyntax(f"The search request must list {SEARCH_REQUEST_SCHEMA} in schemas")
    params = _pick(body)
    for name in ("startindex", "count"):
        value = params.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidValue(
                f"{'startIndex' if name == 'startindex' else 'count'} must be a JSON integer, got {value!r}"
            )
    for name in ("attributes", "excludedattributes"):
        value = params.get(name)
        if value is not None and not isinstance(value, list):
            raise InvalidValue(f"{'attributes' if name == 'attributes' else 'excludedAttributes'} must be a JSON array")
    return _build(params, resource, default_count=default_count, max_count=max_count)
