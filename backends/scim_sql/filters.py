"""Compile a resolved SCIM filter AST and a sortBy path into SQLAlchemy expressions.

The semantics are exactly those of the reference evaluator (:mod:`scim_service.query.evaluator`):
strings compare after lower-casing unless caseExact, every operator but ``ne`` is false on a missing
value, ``ne`` is ``not eq``, ``pr`` is false on null, ``""``, ``[]``, ``{}`` (recursively), a
multi-valued attribute matches when any of its values does, a value path needs one element to satisfy
the whole inner filter, dateTimes compare as instants, and a value of the wrong type never matches.

Every compiled predicate is two-valued (never SQL NULL), so ``NOT`` and ``ne`` behave like the
evaluator on missing values.

Attributes stored in their own columns (id, userName, externalId, displayName, meta.created,
meta.lastModified) use those columns; group membership (``members`` of a group, ``groups`` of a user)
uses the membership table; ``emails.value`` ``eq`` (also inside ``emails[...]``) uses the indexed email
side table, and so does ``sw`` (see :meth:`FilterCompiler._email_match`); ``eq`` on a name (the evaluator's
:func:`~scim_service.query.evaluator.compares_by_key`: userName, emails.value, a group's displayName)
compares the comparison key the backend stored in Python (``user_name_lower``, the side table's
``value_key``, ``display_name_key``) with the literal's key; every other attribute is read from
the JSON document with the store's JSON functions. Everything dialect-specific about JSON sits in
:mod:`scim_sql.dialects` (SQLite JSON1, PostgreSQL ``jsonb``); this module holds no SQL of one dialect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from scim_service.errors import InvalidFilter, InvalidValue
from scim_service.model import GROUP_SCHEMA, USER_SCHEMA
from scim_service.query.ast import And, AttrPath, Compare, Filter, Not, Or, Present, Value, ValuePath
from scim_service.query.evaluator import compares_by_key, parse_datetime, sorts_by_key
from scim_service.rules import comparison_key
from scim_sql.dialects import Expr, JsonOps, Pred, json_ops
from scim_sql.tables import EMAIL_MAX, SqlTables, tables_for

__all__ = ["FilterCompiler", "prefix_end"]

Resource = Literal["User", "Group"]

_NUMBER_TYPES = frozenset({"integer", "decimal"})
_SUBSTRING_OPS = frozenset({"co", "sw", "ew"})


def _false() -> Pred:
    return sa.false()


def _ordered(left: Expr, op: str, right: Any) -> Pred:
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
    raise InvalidFilter(f"operator {op!r} cannot order values")


# -- leaves: one value of a path, and how it compares ---------------------------------------------


class Leaf:
    """One value a path reaches (a column, or a JSON node); compiles the evaluator's ``_compare_one``."""

    def compare(self, op: str, value: Value, path: AttrPath) -> Pred:
        """``value op expected`` with the evaluator's type rules; false when the types do not fit."""
        if value is None:
            return _false()
        if path.type == "dateTime":
            parsed = parse_datetime(value) if isinstance(value, str) else None
            if op in _SUBSTRING_OPS or parsed is None:
                return _false()
            return self.instant_compare(op, parsed)
        if isinstance(value, bool) or path.type == "boolean":
            if op != "eq" or not isinstance(value, bool):
                return _false()
            return self.boolean_eq(value)
        if isinstance(value, int | float) or path.type in _NUMBER_TYPES:
            if not isinstance(value, int | float) or isinstance(value, bool) or op in _SUBSTRING_OPS:
                return _false()
            return self.number_compare(op, value)
        if not isinstance(value, str):
            return _false()
        if op == "eq" and compares_by_key(path):
            return self.key_eq(comparison_key(value))
        return self.string_compare(op, value, path.case_exact)

    def key_eq(self, key: str) -> Pred:
        """``eq`` on a name: true when the value's comparison key is ``key``. Only leaves holding a stored
        key can answer; any other leaf of such a path compares lower-cased text (see FilterCompiler)."""
        return self.string_compare("eq", key, False)

    def string_compare(self, op: str, value: str, case_exact: bool) -> Pred:
        return _false()

    def number_compare(self, op: str, value: float) -> Pred:
        return _false()

    def boolean_eq(self, value: bool) -> Pred:
        return _false()

    def instant_compare(self, op: str, value: datetime) -> Pred:
        return _false()

    def has_value(self) -> Pred:
        return _false()

    def present(self) -> Pred:
        return _false()

    def sort_key(self, path: AttrPath) -> Expr | None:
        return None


def _string_ops(ops: JsonOps, expr: Expr, op: str, value: str, case_exact: bool) -> Pred:
    if not case_exact:
        expr = ops.lower(expr)
        value = value.lower()
    if op == "co":
        return ops.contains(expr, value, case_exact)
    if op == "sw":
        return ops.startswith(expr, value, case_exact)
    if op == "ew":
        return ops.endswith(expr, value, case_exact)
    if op == "eq":
        return expr == value
    return _ordered(ops.ordering(expr), op, value)


@dataclass
class ColumnLeaf(Leaf):
    """A value held in a column (or a constant). ``kind`` is its SCIM comparison kind."""

    ops: JsonOps
    expr: Expr
    kind: Literal["string", "boolean", "instant"]
    key: Expr | None = None  # the stored comparison key of a name (userName, a group's displayName)

    def key_eq(self, key: str) -> Pred:
        if self.key is None:
            return super().key_eq(key)
        return sa.and_(self.key.is_not(None), self.key == key)

    def string_compare(self, op: str, value: str, case_exact: bool) -> Pred:
        if self.kind != "string":
            return _false()
        return sa.and_(self.expr.is_not(None), _string_ops(self.ops, self.expr, op, value, case_exact))

    def boolean_eq(self, value: bool) -> Pred:
        if self.kind != "boolean":
            return _false()
        return self.expr.is_(sa.true()) if value else self.expr.is_(sa.false())

    def instant_compare(self, op: str, value: datetime) -> Pred:
        if self.kind != "instant":
            return _false()
        return sa.and_(self.expr.is_not(None), _ordered(self.expr, op, value))

    def has_value(self) -> Pred:
        return self.expr.is_not(None)

    def present(self) -> Pred:
        if self.kind == "string":
            return sa.and_(self.expr.is_not(None), self.expr != "")
        return self.expr.is_not(None)

    def sort_key(self, path: AttrPath) -> Expr | None:
        if self.kind == "string" and path.type not in ("dateTime", "boolean", *_NUMBER_TYPES):
            if path.case_exact:
                return self.ops.ordering(self.expr)
            if self.key is not None and sorts_by_key(path):
                return self.ops.ordering(self.key)  # the indexed key column (the evaluator sorts by the key too)
            return self.ops.ordering(self.ops.lower(self.expr))
        if self.kind == "boolean" and path.type == "boolean":
            return sa.case((self.expr.is_(sa.true()), 1), else_=0)
        if self.kind == "instant" and path.type == "dateTime":
            return self.expr
        return None


@dataclass
class JsonLeaf(Leaf):
    """A value inside the JSON document."""

    ops: JsonOps
    node: Any

    def string_compare(self, op: str, value: str, case_exact: bool) -> Pred:
        text = self.ops.text(self.node)
        return sa.and_(self.ops.is_string(self.node), _string_ops(self.ops, text, op, value, case_exact))

    def number_compare(self, op: str, value: float) -> Pred:
        number = self.ops.number(self.node)
        return sa.and_(number.is_not(None), _ordered(number, op, value))

    def boolean_eq(self, value: bool) -> Pred:
        return self.ops.boolean_is(self.node, value)

    def instant_compare(self, op: str, value: datetime) -> Pred:
        instant = self.ops.instant(self.node)
        return sa.and_(instant.is_not(None), _ordered(instant, op, self.ops.instant_param(value)))

    def has_value(self) -> Pred:
        return self.ops.not_null(self.node)

    def present(self) -> Pred:
        return self.ops.present(self.node)

    def sort_key(self, path: AttrPath) -> Expr | None:
        if path.type == "dateTime":
            return self.ops.instant(self.node)
        if path.type in _NUMBER_TYPES:
            return self.ops.number(self.node)
        if path.type == "boolean":
            return self.ops.boolean_sort(self.node)
        if path.type == "complex":
            return None
        text = sa.case((self.ops.is_string(self.node), self.ops.text(self.node)))
        return self.ops.ordering(text if path.case_exact else self.ops.lower(text))


class MissingLeaf(Leaf):
    """A path that has no value in any stored resource."""


# -- sources: where a top-level attribute's values come from ---------------------------------------


class Element:
    """One element of a multi-valued attribute, as the inner filter of a value path sees it."""

    def leaf(self, sub_attr: str | None) -> Leaf:
        raise NotImplementedError

    def is_complex(self) -> Pred:
        return sa.true()


@dataclass
class JsonElement(Element):
    ops: JsonOps
    node: Any
    ordinal: Expr | None = None  # its 0-based position in the array (the email side table's ``ordinal``)

    def leaf(self, sub_attr: str | None) -> Leaf:
        return JsonLeaf(self.ops, self.ops.child(self.node, sub_attr) if sub_attr else self.node)

    def is_complex(self) -> Pred:
        return self.ops.is_object(self.node)


@dataclass
class RowElement(Element):
    """One membership row (``members`` of a group or ``groups`` of a user)."""

    columns: dict[str, Leaf]

    def leaf(self, sub_attr: str | None) -> Leaf:
        return self.columns.get(sub_attr or "value", MissingLeaf())


class Source:
    """The values of one top-level attribute of the resource being filtered."""

    def any(self, path: AttrPath, test: Callable[[Leaf], Pred]) -> Pred:
        """True when some value reached by ``path`` passes ``test``."""
        raise NotImplementedError

    def present(self, path: AttrPath) -> Pred:
        raise NotImplementedError

    def some_element(self, test: Callable[[Element], Pred]) -> Pred:
        """True when one complex element satisfies ``test`` (a value path)."""
        raise NotImplementedError

    def sort_key(self, path: AttrPath) -> Expr | None:
        raise NotImplementedError


@dataclass
class ColumnSource(Source):
    """A singular attribute stored in a column."""

    leaf: Leaf

    def any(self, path: AttrPath, test: Callable[[Leaf], Pred]) -> Pred:
        return test(self.leaf)

    def present(self, path: AttrPath) -> Pred:
        return self.leaf.present()

    def some_element(self, test: Callable[[Element], Pred]) -> Pred:
        raise InvalidFilter("a value path needs a complex attribute")

    def sort_key(self, path: AttrPath) -> Expr | None:
        return self.leaf.sort_key(path)


@dataclass
class JsonSource(Source):
    """An attribute inside the JSON document, singular or multi-valued."""

    ops: JsonOps
    root: Any
    multi_valued: bool

    def _value(self, node: Any, path: AttrPath) -> Any:
        return self.ops.child(node, path.sub_attr) if path.sub_attr else self.ops.value_or_self(node)

    def any(self, path: AttrPath, test: Callable[[Leaf], Pred]) -> Pred:
        if not self.multi_valued:
            return test(JsonLeaf(self.ops, self._value(self.root, path)))
        els = self.ops.elements(self.root)
        return sa.exists(
            sa.select(1).select_from(els.from_).where(test(JsonLeaf(self.ops, self._value(els.node, path))))
        )

    def present(self, path: AttrPath) -> Pred:
        if path.sub_attr is None:
            return self.ops.present(self.root)
        if not self.multi_valued:
            return self.ops.present(self.ops.child(self.root, path.sub_attr))
        els = self.ops.elements(self.root)
        return sa.exists(
            sa.select(1)
            .select_from(els.from_)
            .where(self.ops.is_object(els.node), self.ops.present(self.ops.child(els.node, path.sub_attr)))
        )

    def some_element(self, test: Callable[[Element], Pred]) -> Pred:
        if not self.multi_valued:
            element = JsonElement(self.ops, self.root)
            return sa.and_(element.is_complex(), test(element))
        els = self.ops.elements(self.root)
        element = JsonElement(self.ops, els.node, els.ordinal - self.ops.ordinal_base)
        return sa.exists(sa.select(1).select_from(els.from_).where(element.is_complex(), test(element)))

    def sort_key(self, path: AttrPath) -> Expr | None:
        if not self.multi_valued:
            node = self.ops.child(self.root, path.sub_attr) if path.sub_attr else self.root
            return JsonLeaf(self.ops, node).sort_key(path)
        # RFC 7644 §3.4.2.3: the primary element's value, else the first element with a value.
        els = self.ops.elements(self.root)
        node = self._value(els.node, path)
        key = JsonLeaf(self.ops, node).sort_key(path)
        if key is None:
            return None
        return (
            sa.select(key)
            .select_from(els.from_)
            .where(self.ops.not_null(node))
            .order_by(els.primary_rank, els.ordinal)
            .limit(1)
            .scalar_subquery()
        )


@dataclass
class MembershipSource(Source):
    """``members`` of a group or ``groups`` of a user: rows of the membership table."""

    from_: Any
    where: Pred
    columns: dict[str, Leaf]

    def _exists(self, *conditions: Pred) -> Pred:
        return sa.exists(sa.select(1).select_from(self.from_).where(self.where, *conditions))

    def any(self, path: AttrPath, test: Callable[[Leaf], Pred]) -> Pred:
        return self._exists(test(RowElement(self.columns).leaf(path.sub_attr)))

    def present(self, path: AttrPath) -> Pred:
        if path.sub_attr is None:
            return self._exists()
        return self._exists(RowElement(self.columns).leaf(path.sub_attr).present())

    def some_element(self, test: Callable[[Element], Pred]) -> Pred:
        return self._exists(test(RowElement(self.columns)))

    def sort_key(self, path: AttrPath) -> Expr | None:
        raise InvalidValue(f"the sql backend cannot sort by {path.dotted()!r} (members have no order)")


# -- the compiler --------------------------------------------------------------------------------


def prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix``, in code point order (None: no bound).

    ``s`` starts with ``prefix`` exactly when ``prefix <= s < prefix_end(prefix)``: the last code point
    that can grow is incremented (surrogates, which no stored text holds, are skipped).
    """
    stripped = prefix.rstrip(chr(0x10FFFF))
    if not stripped:
        return None
    following = ord(stripped[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:
        following = 0xE000
    return stripped[:-1] + chr(following)


class FilterCompiler:
    """Compiles resolved filters and sort paths to expressions over the users or the groups table.

    ``resource`` is "User" or "Group"; ``dialect_name`` the engine's dialect (sqlite or postgresql).
    The expressions do not include the tenant or soft-delete conditions: the backend adds those.
    ``email_index`` False compiles every ``emails.value`` test but ``eq`` through the JSON document, as before the
    email side table existed (the query plan test compares the two). ``tables``: the backend's tables
    (named with its ``SCIM_TABLE_PREFIX``; the default prefix's when not given).
    """

    def __init__(
        self,
        resource: Resource,
        dialect_name: str,
        *,
        lower_collation: str | None = None,
        email_index: bool = True,
        tables: SqlTables | None = None,
    ) -> None:
        self.resource = resource
        self.ops: JsonOps = json_ops(dialect_name, lower_collation)
        self.tables = tables or tables_for()
        self.table = self.tables.users if resource == "User" else self.tables.groups
        self.email_index = email_index and resource == "User"
        # ``eq`` on an email compares comparison keys, which only the side table holds (SQL cannot
        # compute NFKC + casefold), so it uses the table even without ``email_index``.
        self.email_keys = resource == "User"

    # filters

    def where(self, f: Filter, *, tenant_id: str | None = None) -> Pred:
        """The SQL condition equivalent to the evaluator's ``matches(f, document)``.

        ``tenant_id``, the tenant the backend restricts the rows to, lets an email side-table lookup
        be an uncorrelated index range of that tenant; without it the lookup correlates on the row's
        tenant (the same result, but a plan per row).
        """
        return self._compile(f, None, tenant_id)

    def _compile(self, f: Filter, element: Element | None, tenant_id: str | None) -> Pred:
        if isinstance(f, Compare):
            return self._compare(f, element, tenant_id)
        if isinstance(f, Present):
            if element is not None:
                return element.leaf(f.path.sub_attr).present()
            return self._source(f.path).present(f.path)
        if isinstance(f, And):
            return sa.and_(self._compile(f.left, element, tenant_id), self._compile(f.right, element, tenant_id))
        if isinstance(f, Or):
            return sa.or_(self._compile(f.left, element, tenant_id), self._compile(f.right, element, tenant_id))
        if isinstance(f, Not):
            return sa.not_(self._compile(f.expr, element, tenant_id))
        if isinstance(f, ValuePath):
            if element is not None:
                raise InvalidFilter("a value path cannot be nested in another value path")
            return self._value_path(f, tenant_id)
        raise InvalidFilter(f"not a filter node: {f!r}")

    def _value_path(self, f: ValuePath, tenant_id: str | None) -> Pred:
        narrowed = self._email_necessary(f.filter, tenant_id) if self._is_emails(f.attr) else None
        if narrowed is not None and isinstance(f.filter, Compare):
            # emails[value eq "x"] is exactly "some element has that value": the side table alone.
            return narrowed
        # One element must satisfy the whole inner filter (type and value of the SAME element), which
        # only the JSON document can tell; the side-table condition, implied by it, lets the store
        # start from the index and test the JSON of the few candidate rows only.
        exact = self._source(f.attr).some_element(lambda el: self._compile(f.filter, el, tenant_id))
        return exact if narrowed is None else sa.and_(narrowed, exact)

    def _compare(self, f: Compare, element: Element | None, tenant_id: str | None) -> Pred:
        if f.op == "ne":
            return sa.not_(self._compare(Compare(f.path, "eq", f.value), element, tenant_id))
        if f.op not in ("eq", "co", "sw", "ew", "gt", "ge", "lt", "le"):
            raise InvalidFilter(f"unknown comparison operator {f.op!r}")
        if element is None and self._is_email_value(f.path, for_eq=f.op == "eq"):
            indexed = self._email_match(f.op, f.value, tenant_id)
            if indexed is not None:
                return indexed
        if (
            isinstance(element, JsonElement)
            and element.ordinal is not None
            and f.op == "eq"
            and self._is_email_value(f.path, for_eq=True)
            and compares_by_key(f.path)
        ):
            same = self._email_element_eq(f.value, element.ordinal)
            if same is not None:
                return same

        def test(leaf: Leaf) -> Pred:
            return leaf.compare(f.op, f.value, f.path)

        if element is not None:
            leaf = element.leaf(f.path.sub_attr)
            if f.value is None:
                return sa.not_(leaf.has_value()) if f.op == "eq" else _false()
            return test(leaf)
        source = self._source(f.path)
        if f.value is None:
            # eq null: the attribute has no values at all.
            return sa.not_(source.any(f.path, lambda leaf: leaf.has_value())) if f.op == "eq" else _false()
        return source.any(f.path, test)

    # sorting

    def sort_keys(self, path: AttrPath | None, descending: bool) -> list[tuple[Expr, bool]]:
        """The sort keys as (expression, descending) pairs, most significant first: a flag that is 1 when
        the resource has no value (so missing values come last ascending and first descending), the
        value itself, then ``id`` ascending for a stable order. Cursor paging compares rows on them."""
        keys: list[tuple[Expr, bool]] = []
        if path is not None:
            key = self._source(path).sort_key(path)
            if key is not None:
                missing = sa.case((key.is_(None), 1), else_=0)
                keys = [(missing, descending), (key, descending)]
        keys.append((self.table.c.id, False))
        return keys

    # paths

    def _source(self, path: AttrPath) -> Source:
        core = USER_SCHEMA if self.resource == "User" else GROUP_SCHEMA
        in_core = path.schema in (None, core)
        if in_core:
            column = self._column_source(path)
            if column is not None:
                return column
        keys = [path.attr] if in_core else [path.schema or "", path.attr]
        return JsonSource(self.ops, self.ops.root(self.table.c.data, keys), path.multi_valued)

    def _column_source(self, path: AttrPath) -> Source | None:
        t, ops = self.table, self.ops
        attr, sub = path.attr, path.sub_attr
        if attr == "id":
            return ColumnSource(ColumnLeaf(ops, t.c.id, "string"))
        if attr == "externalId":
            return ColumnSource(ColumnLeaf(ops, t.c.external_id, "string"))
        if attr == "displayName":
            key = self.tables.groups.c.display_name_key if self.resource == "Group" else None
            return ColumnSource(ColumnLeaf(ops, t.c.display_name, "string", key))
        if attr == "meta":
            if sub == "created":
                return ColumnSource(ColumnLeaf(ops, t.c.created, "instant"))
            if sub == "lastModified":
                return ColumnSource(ColumnLeaf(ops, t.c.last_modified, "instant"))
            if sub == "resourceType":
                return ColumnSource(ColumnLeaf(ops, sa.literal(self.resource, sa.String), "string"))
            raise InvalidFilter(f"the sql backend cannot filter or sort on meta.{sub}")
        if self.resource == "User":
            if attr == "userName":
                return ColumnSource(
                    ColumnLeaf(ops, self.tables.users.c.user_name, "string", self.tables.users.c.user_name_lower)
                )
            # ``active`` is read from the document, not the ``active`` column: a PATCH may remove it, and
            # an unassigned ``active`` has no value for filters and sorting (the column, used by the seat
            # and matching rules, still counts it as active).
            if attr == "groups":
                gm, g = self.tables.group_members.alias("gm"), self.tables.groups.alias("g")
                return MembershipSource(
                    from_=gm.join(g, g.c.id == gm.c.group_id),
                    where=sa.and_(
                        gm.c.member_id == self.tables.users.c.id, gm.c.tenant_id == self.tables.users.c.tenant_id
                    ),
                    columns={
                        "value": ColumnLeaf(ops, gm.c.group_id, "string"),
                        "display": ColumnLeaf(ops, g.c.display_name, "string"),
                        "type": ColumnLeaf(ops, sa.literal("direct", sa.String), "string"),
                    },
                )
        elif attr == "members":
            gm = self.tables.group_members.alias("gm")
            return MembershipSource(
                from_=gm,
                where=gm.c.group_id == self.tables.groups.c.id,
                columns={
                    "value": ColumnLeaf(ops, gm.c.member_id, "string"),
                    "display": ColumnLeaf(ops, gm.c.display, "string"),
                    "type": ColumnLeaf(ops, gm.c.member_type, "string"),
                },
            )
        return None

    # the email side table

    def _is_emails(self, path: AttrPath) -> bool:
        """``path`` names the core ``emails`` attribute of a user (and the side table is in use)."""
        return self.email_index and path.attr == "emails" and path.schema in (None, USER_SCHEMA) and path.multi_valued

    def _is_email_value(self, path: AttrPath, *, for_eq: bool = False) -> bool:
        """``path`` is ``emails.value`` (top level, or ``value`` inside ``emails[...]``), compared as a
        case-insensitive string, and the side table answers it (``for_eq``: an ``eq``, which it always does)."""
        return (
            (self.email_keys if for_eq else self.email_index)
            and path.attr == "emails"
            and path.sub_attr == "value"
            and path.schema in (None, USER_SCHEMA)
            and path.type == "string"
            and not path.case_exact
        )

    def _email_match(self, op: str, value: Value, tenant_id: str | None) -> Pred | None:
        """Users with some ``emails`` element whose string ``value`` satisfies ``op value``, through the
        side table; None when the side table cannot answer exactly (then the JSON path does).

        The table holds the comparison key (:func:`scim_service.rules.comparison_key`, ``value_key``)
        and ``str.lower()`` (``value_lower``) of every string value, both cut to EMAIL_MAX characters:
        the evaluator's ``eq`` on an email compares keys, exact for a key shorter than the cut (a cut
        key is EMAIL_MAX long, so it can never equal it); its ``sw`` compares lower-cased text, exact
        for a prefix no longer than the cut (cutting keeps every shorter prefix). The prefix is an
        index range, so ``%`` and ``_`` need no escaping and the meaning is the same on both dialects.
        """
        if not isinstance(value, str) or isinstance(value, bool):
            return None
        key, lowered = comparison_key(value), value.lower()
        e = self.tables.user_emails.alias("ue")
        if op == "eq" and len(key) < EMAIL_MAX:
            match = e.c.value_key == key
        elif op == "sw" and len(lowered) <= EMAIL_MAX:
            end = prefix_end(lowered)
            match = (
                e.c.value_lower >= lowered
                if end is None
                else sa.and_(e.c.value_lower >= lowered, e.c.value_lower < end)
            )
        else:
            return None
        if tenant_id is None:
            return sa.exists(
                sa.select(1).where(
                    e.c.user_id == self.tables.users.c.id, e.c.tenant_id == self.tables.users.c.tenant_id, match
                )
            )
        # Uncorrelated: the store reads the index range once and looks the users up by primary key.
        return self.tables.users.c.id.in_(sa.select(e.c.user_id).where(e.c.tenant_id == tenant_id, match))

    def _email_element_eq(self, value: Value, ordinal: Expr) -> Pred | None:
        """``value eq "x"`` inside ``emails[...]`` for the element at ``ordinal``: its side-table row holds
        the comparison key, which the JSON document cannot compute in SQL. None when the table cannot
        answer exactly (see :meth:`_email_match`)."""
        if not isinstance(value, str) or isinstance(value, bool):
            return None
        key = comparison_key(value)
        if len(key) >= EMAIL_MAX:
            return None
        e = self.tables.user_emails.alias("uo")
        return sa.exists(
            sa.select(1)
            .where(
                e.c.user_id == self.tables.users.c.id,
                e.c.tenant_id == self.tables.users.c.tenant_id,
                e.c.ordinal == ordinal,
                e.c.value_key == key,
            )
            # Correlated to the user row two levels up (through the JSON elements' subquery).
            .correlate_except(e)
        )

    def _email_necessary(self, f: Filter, tenant_id: str | None) -> Pred | None:
        """A side-table condition that every user with an ``emails`` element satisfying the inner filter
        ``f`` meets (None when there is none to offer): the index's share of a value path."""
        if isinstance(f, Compare):
            return self._email_match(f.op, f.value, tenant_id) if self._is_email_value(f.path) else None
        if isinstance(f, And):
            left, right = self._email_necessary(f.left, tenant_id), self._email_necessary(f.right, tenant_id)
            if left is None or right is None:
                return left if right is None else right
            return sa.and_(left, right)
        if isinstance(f, Or):
            left, right = self._email_necessary(f.left, tenant_id), self._email_necessary(f.right, tenant_id)
            return None if left is None or right is None else sa.or_(left, right)
        return None
