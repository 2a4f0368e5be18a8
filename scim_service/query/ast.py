"""The immutable AST of a SCIM filter (RFC 7644 §3.4.2.2) and of a list request.

The parser produces it, :mod:`scim_service.query.resolve` checks every attribute path against the
schemas (canonical names, types, caseExact), and backends compile it to their own query language.
"""

from __future__ import annotations

from dataclasses import dataclass

# Comparison operators of RFC 7644 §3.4.2.2, table 3 (``pr`` is its own node).
COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})

Value = str | int | float | bool | None


@dataclass(frozen=True)
class AttrPath:
    """An attribute reference: ``[schema:]attr[.sub_attr]``.

    After resolution ``schema`` is always the URN of the schema that defines ``attr`` and the names
    have their canonical case; ``type`` is the SCIM type of the leaf (string, boolean, decimal,
    integer, dateTime, reference, binary, complex), ``case_exact`` its caseExact characteristic and
    ``multi_valued`` whether ``attr`` is multi-valued.
    """

    attr: str
    sub_attr: str | None = None
    schema: str | None = None
    type: str = "string"
    case_exact: bool = False
    multi_valued: bool = False

    def dotted(self) -> str:
        """The path as ``attr.sub`` without the schema (the key a dict evaluator walks)."""
        return f"{self.attr}.{self.sub_attr}" if self.sub_attr else self.attr


@dataclass(frozen=True)
class Compare:
    """``path op value`` for the operators in :data:`COMPARE_OPS`."""

    path: AttrPath
    op: str
    value: Value


@dataclass(frozen=True)
class Present:
    """``path pr``: the attribute has a non-empty value."""

    path: AttrPath


@dataclass(frozen=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    expr: Filter


@dataclass(frozen=True)
class ValuePath:
    """``attr[filter]``: some single value of multi-valued ``attr`` satisfies ``filter`` on its own.

    The paths inside ``filter`` name ``attr`` with a ``sub_attr``.
    """

    attr: AttrPath
    filter: Filter


Filter = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True)
class ListQuery:
    """A list or search request, after parsing and clamping (RFC 7644 §3.4.2).

    ``count`` is the page size already clamped to the server's maximum (0 asks for totalResults only).
    ``cursor`` is None for index paging, "" for the first page of cursor paging (RFC 9865).
    ``include_members`` / ``include_groups`` are False when the projection leaves out group members
    or a user's groups, so the backend need not read them.
    """

    filter: Filter | None = None
    sort_by: AttrPath | None = None
    descending: bool = False
    start_index: int = 1
    count: int = 100
    cursor: str | None = None
    include_members: bool = True
    include_groups: bool = True
