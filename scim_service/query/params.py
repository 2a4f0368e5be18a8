"""List and search request parameters (RFC 7644 §3.4.2, §3.4.3) parsed into a :class:`ListRequest`.

``GET /Users?filter=...&sortBy=...&startIndex=...&count=...&attributes=...`` goes through
:func:`parse_list_params`; ``POST /Users/.search`` bodies through :func:`parse_search_request` (the
SearchRequest message itself is checked by :func:`scim_service.schemas.messages.load_search_request`).
Both clamp paging the way RFC 7644 §3.4.2.4 asks (startIndex below 1 counts as 1, a negative count as 0,
a count above the server maximum as the maximum), parse and resolve the filter and sortBy, and keep the
projection lists for the schema dump.

A single resource (``GET /Users/{id}``, and the answer of a POST, PUT or PATCH) takes only
``attributes``/``excludedAttributes``: :func:`parse_projection`. Whether a user's groups or a group's
members are worth reading is decided once, in :func:`parse_projection`, for lists and single resources
alike (:attr:`Projection.include_groups`, :attr:`Projection.include_members`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scim_service.errors import InvalidFilter, InvalidValue
from scim_service.profiles import ActiveProfile, Tolerance
from scim_service.query.ast import AttrPath, ListQuery
from scim_service.query.parser import parse_attr_path, parse_filter
from scim_service.query.resolve import resolve_filter, resolve_path
from scim_service.schemas.definitions import ResourceTypeDef
from scim_service.schemas.messages import SEARCH_REQUEST_SCHEMA, load_search_request
from scim_service.schemas.projection import includes

__all__ = [
    "SEARCH_REQUEST_SCHEMA",
    "ListRequest",
    "Projection",
    "list_request",
    "parse_list_params",
    "parse_projection",
    "parse_search_request",
]

# The parameters of RFC 7644 §3.4.2 (and cursor, RFC 9865) by their lower-case name.
MAX_ATTRIBUTE_NAMES = 100
"""Most names one ``attributes`` or ``excludedAttributes`` parameter may list (docs/rules.md, "Limits")."""
_PARAMS = ("filter", "sortby", "sortorder", "startindex", "count", "attributes", "excludedattributes", "cursor")


@dataclass(frozen=True)
class Projection:
    """``attributes``/``excludedAttributes`` as the client wrote them (at most one set; None when not
    asked for), and what they imply for the store: whether a user's ``groups`` and a group's
    ``members`` survive the projection, so the backend reads them only when they do."""

    attributes: tuple[str, ...] | None = None
    excluded_attributes: tuple[str, ...] | None = None
    include_groups: bool = True
    include_members: bool = True


@dataclass(frozen=True)
class ListRequest:
    """A parsed list or search request: the query for the backend and the projection for the dump.

    ``attributes`` / ``excluded_attributes`` are the names as the client wrote them (at most one of the
    two is set), None when not asked for.
    """

    query: ListQuery
    attributes: tuple[str, ...] | None = None
    excluded_attributes: tuple[str, ...] | None = None

    @property
    def projection(self) -> Projection:
        """The projection of the listed resources (its include flags are the query's)."""
        return Projection(
            self.attributes, self.excluded_attributes, self.query.include_groups, self.query.include_members
        )


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
    if len(names) > MAX_ATTRIBUTE_NAMES:
        # Each name is resolved against the schemas: an unbounded list is an unbounded cost.
        raise InvalidValue(f"The parameter {name} names {len(names)} attributes; at most {MAX_ATTRIBUTE_NAMES}.")
    return names


def _projection(params: Mapping[str, Any], resource: ResourceTypeDef) -> Projection:
    """The projection parameters (by lower-case name) and the one decision of which relations to read."""
    attributes = None
    excluded = None
    if params.get("attributes") is not None:
        attributes = _name_list("attributes", params["attributes"]) or None
    if params.get("excludedattributes") is not None:
        excluded = _name_list("excludedAttributes", params["excludedattributes"]) or None
    if attributes is not None and excluded is not None:
        raise InvalidValue("Give either attributes or excludedAttributes, not both")
    # A relation this resource type does not have stays True (the flag is not the backend's business).
    relations = {
        name: includes(resource, attributes, excluded, name)
        for name in ("groups", "members")
        if resource.schema.attribute(name) is not None
    }
    return Projection(
        attributes,
        excluded,
        include_groups=relations.get("groups", True),
        include_members=relations.get("members", True),
    )


def _build(
    params: Mapping[str, Any],
    resource: ResourceTypeDef,
    *,
    default_count: int,
    max_count: int,
    profile: ActiveProfile | None = None,
) -> ListRequest:
    filter_ = None
    raw_filter = params.get("filter")
    if raw_filter is not None:
        if not isinstance(raw_filter, str):
            raise InvalidFilter(f"The filter must be a string, got {raw_filter!r}")
        if raw_filter.strip():
            sub = None
            if profile is not None:
                active = profile

                def sub(detail: str) -> bool:
                    return active.allows(Tolerance.VALUE_PATH_FILTER_SUB, detail)

            filter_ = resolve_filter(parse_filter(raw_filter, value_path_sub=sub), resource)

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

    projection = _projection(params, resource)
    query = ListQuery(
        filter=filter_,
        sort_by=sort_by,
        descending=descending,
        start_index=start_index,
        count=count,
        cursor=cursor,
        include_members=projection.include_members,
        include_groups=projection.include_groups,
    )
    return ListRequest(
        query=query, attributes=projection.attributes, excluded_attributes=projection.excluded_attributes
    )


def _resolve_sort(text: str, resource: ResourceTypeDef) -> AttrPath:
    """Parse and resolve a sortBy attribute path; anything wrong is an InvalidValue."""
    return resolve_path(parse_attr_path(text, error=InvalidValue), resource, error=InvalidValue)


def parse_list_params(
    args: Mapping[str, str],
    resource: ResourceTypeDef,
    *,
    default_count: int,
    max_count: int,
    profile: ActiveProfile | None = None,
) -> ListRequest:
    """Parse the query-string parameters of ``GET /Users`` or ``GET /Groups`` (RFC 7644 §3.4.2).

    Parameter names are matched case-insensitively. Raises :class:`InvalidFilter` for a bad filter and
    :class:`InvalidValue` for a bad sortBy, sortOrder, startIndex, count or projection. ``profile`` (the
    request's IdP profile; strict when None) decides whether Entra's ``emails[type eq "work"].value eq
    "x"`` filter form is accepted (tolerance ``value_path_filter_sub``).
    """
    return _build(_pick(args), resource, default_count=default_count, max_count=max_count, profile=profile)


def parse_projection(args: Mapping[str, Any], resource: ResourceTypeDef) -> Projection:
    """Only ``attributes``/``excludedAttributes`` of a query string (names in any case), for a single
    resource: every other list parameter (a filter, paging) is not for it and is ignored.

    Raises :class:`InvalidValue` when both are given.
    """
    return _projection(_pick(args), resource)


def list_request(
    params: Mapping[str, Any],
    resource: ResourceTypeDef,
    *,
    default_count: int,
    max_count: int,
    profile: ActiveProfile | None = None,
) -> ListRequest:
    """A :class:`ListRequest` from parameters already picked by lower-case name (a loaded SearchRequest,
    :func:`~scim_service.schemas.messages.load_search_request`); the errors of :func:`parse_list_params`."""
    return _build(params, resource, default_count=default_count, max_count=max_count, profile=profile)


def parse_search_request(body: Any, resource: ResourceTypeDef, *, default_count: int, max_count: int) -> ListRequest:
    """Parse the JSON body of ``POST .search`` (RFC 7644 §3.4.3) for one resource type.

    The message is checked by :func:`~scim_service.schemas.messages.load_search_request` (``schemas``
    must list :data:`SEARCH_REQUEST_SCHEMA`, a missing or wrong one is ``InvalidValue``;
    ``attributes``/``excludedAttributes`` are JSON arrays of names, ``startIndex``/``count`` JSON
    integers; ``InvalidSyntax`` for a body that is not an object), then its parameters as by
    :func:`parse_list_params`.
    """
    return list_request(load_search_request(body), resource, default_count=default_count, max_count=max_count)
