"""Reading SCIM attributes out of the stored JSON documents, per database dialect.

The filter compiler (:mod:`scim_sql.filters`) asks one :data:`JsonOps` object for every JSON
expression it needs: a node of a document, its JSON type, its text, number or instant, the elements of
an array, presence, lower-casing and LIKE matching. :class:`SqliteJson` answers with SQLite's JSON1
functions (a node is the document and a JSON path into it), :class:`PostgresJson` with ``jsonb``
operators. Both give two-valued predicates (never SQL NULL) and fold case and order strings like
Python, so the two databases agree with the reference evaluator. SQLite gets two helper functions,
``scim_lower`` and ``scim_instant``, registered on its connections (:func:`install_sqlite_functions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from scim_service.errors import InvalidFilter
from scim_service.query.evaluator import parse_datetime

__all__ = [
    "LIKE_ESCAPE",
    "Elements",
    "JsonOps",
    "PostgresJson",
    "SqliteJson",
    "install_sqlite_functions",
    "json_ops",
    "like_escape",
    "sqlite_instant_text",
]

Expr = ColumnElement[Any]
Pred = ColumnElement[bool]

LIKE_ESCAPE = "\\"
# SQLite refuses a LIKE pattern longer than SQLITE_MAX_LIKE_PATTERN_LENGTH (50,000 bytes by default)
# with "LIKE or GLOB pattern too complex" at run time: a client's filter, so a 400, checked up front.
SQLITE_LIKE_PATTERN_MAX = 50_000


def like_escape(text: str) -> str:
    """``text`` with the LIKE wildcards ``%`` and ``_`` and the escape character itself escaped."""
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


# -- SQLite helper functions ---------------------------------------------------------------------


def _py_lower(value: Any) -> Any:
    # SQLite's lower() only folds ASCII; the evaluator uses str.lower().
    return value.lower() if isinstance(value, str) else value


def sqlite_instant_text(value: datetime) -> str:
    """A UTC instant as fixed-width text that sorts like the instant (the form ``scim_instant`` returns)."""
    value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


def _py_instant(value: Any) -> str | None:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    return None if parsed is None else sqlite_instant_text(parsed)


def _register(dbapi_connection: Any) -> None:
    dbapi_connection.create_function("scim_lower", 1, _py_lower, deterministic=True)
    dbapi_connection.create_function("scim_instant", 1, _py_instant, deterministic=True)


def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    if not record.info.get("scim_sql_functions"):
        _register(dbapi_connection)
        record.info["scim_sql_functions"] = True


def install_sqlite_functions(engine: Engine) -> None:
    """Register ``scim_lower`` (Unicode ``str.lower``) and ``scim_instant`` (ISO 8601 -> UTC text) on
    every SQLite connection of ``engine``, including connections a host app's pool opened before."""
    if engine.dialect.name != "sqlite" or event.contains(engine, "checkout", _on_checkout):
        return
    event.listen(engine, "checkout", _on_checkout)


# -- JSON access per dialect ---------------------------------------------------------------------


@dataclass(frozen=True)
class Elements:
    """The rows of a multi-valued JSON attribute: a FROM item, each row's node, its position, and 0 for an
    element marked primary (else 1). ``ordinal`` and ``primary_rank`` only use the row's own columns:
    SQLite cannot refer to the outer row in the ORDER BY of a correlated subquery."""

    from_: Any
    node: Any
    ordinal: Expr
    primary_rank: Expr


class SqliteJson:
    """JSON access on SQLite (JSON1): a node is the document plus a JSON path expression into it."""

    name = "sqlite"
    ordinal_base = 0  # json_each's key of an array element is its 0-based index

    @dataclass(frozen=True)
    class Node:
        """A place in a JSON document: ``json_extract(doc, path)``."""

        doc: Expr
        path: Expr

    @staticmethod
    def _key(key: str) -> str:
        if '"' in key or "\\" in key:
            raise InvalidFilter(f"attribute name {key!r} cannot be used in a filter")
        return f'."{key}"'

    def root(self, data: Expr, keys: Sequence[str]) -> Node:
        return self.Node(data, sa.literal("$" + "".join(self._key(k) for k in keys), sa.String))

    def child(self, node: Node, key: str) -> Node:
        return self.Node(node.doc, node.path.concat(self._key(key)))

    def jtype(self, node: Node) -> Expr:
        # Never NULL, so every test on it is two-valued: "missing" when the path is absent.
        return sa.func.coalesce(sa.func.json_type(node.doc, node.path), "missing")

    def value_or_self(self, node: Node) -> Node:
        # A dict reached without a sub-attribute stands for its "value" (the evaluator's rule).
        path = sa.case((self.jtype(node) == "object", node.path.concat('."value"')), else_=node.path)
        return self.Node(node.doc, path)

    def is_string(self, node: Node) -> Pred:
        return self.jtype(node) == "text"

    def is_number(self, node: Node) -> Pred:
        return self.jtype(node).in_(("integer", "real"))

    def is_object(self, node: Node) -> Pred:
        return self.jtype(node) == "object"

    def not_null(self, node: Node) -> Pred:
        return self.jtype(node).not_in(("null", "missing"))

    def text(self, node: Node) -> Expr:
        return sa.func.json_extract(node.doc, node.path, type_=sa.String)

    def number(self, node: Node) -> Expr:
        return sa.case((self.is_number(node), sa.func.json_extract(node.doc, node.path)))

    def boolean_is(self, node: Node, value: bool) -> Pred:
        return self.jtype(node) == ("true" if value else "false")

    def boolean_sort(self, node: Node) -> Expr:
        return sa.case((self.jtype(node) == "true", 1), (self.jtype(node) == "false", 0))

    def instant(self, node: Node) -> Expr:
        return sa.func.scim_instant(sa.case((self.is_string(node), self.text(node))), type_=sa.String)

    def instant_param(self, value: datetime) -> Any:
        return sqlite_instant_text(value)

    def present(self, node: Node) -> Pred:
        tree = sa.func.json_tree(node.doc, node.path).table_valued("type", "atom").alias("pr")
        return sa.exists(
            sa.select(1)
            .select_from(tree)
            .where(
                tree.c.type.not_in(("null", "object", "array")),
                sa.or_(tree.c.type != "text", tree.c.atom != ""),
            )
        )

    def elements(self, node: Node) -> Elements:
        each = sa.func.json_each(node.doc, node.path).table_valued("key", "type", "value").alias("el")
        element = self.Node(node.doc, node.path.concat("[").concat(sa.cast(each.c.key, sa.String)).concat("]"))
        primary = sa.and_(each.c.type == "object", sa.func.json_type(each.c.value, '$."primary"') == "true")
        return Elements(each, element, each.c.key, sa.case((primary, 0), else_=1))

    def lower(self, expr: Expr) -> Expr:
        return sa.func.scim_lower(expr, type_=sa.String)

    def ordering(self, expr: Expr) -> Expr:
        # BINARY collation on UTF-8 is code point order, as in Python.
        return expr

    def contains(self, expr: Expr, value: str, case_exact: bool) -> Pred:
        if case_exact:  # SQLite's LIKE ignores ASCII case
            return sa.func.instr(expr, value) > 0
        return expr.like(_sqlite_pattern(f"%{like_escape(value)}%"), escape=LIKE_ESCAPE)

    def startswith(self, expr: Expr, value: str, case_exact: bool) -> Pred:
        if case_exact:
            return sa.func.substr(expr, 1, len(value)) == value
        return expr.like(_sqlite_pattern(f"{like_escape(value)}%"), escape=LIKE_ESCAPE)

    def endswith(self, expr: Expr, value: str, case_exact: bool) -> Pred:
        if case_exact:
            return sa.true() if not value else sa.func.substr(expr, -len(value)) == value
        return expr.like(_sqlite_pattern(f"%{like_escape(value)}"), escape=LIKE_ESCAPE)


def _sqlite_pattern(pattern: str) -> str:
    size = len(pattern.encode("utf-8", "surrogatepass"))
    if size > SQLITE_LIKE_PATTERN_MAX:
        raise InvalidFilter(
            f"A co, sw or ew value is too long: its pattern is {size} bytes, this store accepts at most "
            f"{SQLITE_LIKE_PATTERN_MAX}."
        )
    return pattern


_PG_PRESENT = 'strict $.** ? (@.type() == "number" || @.type() == "boolean" || (@.type() == "string" && @ != ""))'
_PG_ISO = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|z|[+-]\d{2}(:?\d{2})?)?$"
_PG_OFFSET = r"(Z|z|[+-]\d{2}(:?\d{2})?)$"


class PostgresJson:
    """JSON access on PostgreSQL: a node is a ``jsonb`` expression.

    ``lower_collation`` names the collation ``lower()`` runs under. PostgreSQL lower-cases by the
    collation of its argument, which defaults to the database's LC_CTYPE: under ``C`` (``initdb
    --no-locale``, many container images) only ASCII is folded, so ``"ÉMILE" eq "émile"`` would fail and
    ``É`` would sort apart from ``é``. The ICU root collation ``und-x-icu`` folds like Python's
    ``str.lower()`` whatever the database locale; the backend passes it when the server has ICU.
    """

    name = "postgresql"
    ordinal_base = 1  # WITH ORDINALITY counts from 1
    J = postgresql.JSONB()

    def __init__(self, lower_collation: str | None = None) -> None:
        self.lower_collation = lower_collation

    def root(self, data: Expr, keys: Sequence[str]) -> Expr:
        return sa.func.jsonb_extract_path(data, *[sa.literal(k, sa.Text) for k in keys], type_=self.J)

    def child(self, node: Expr, key: str) -> Expr:
        return sa.func.jsonb_extract_path(node, sa.literal(key, sa.Text), type_=self.J)

    def jtype(self, node: Expr) -> Expr:
        # Never NULL, so every test on it is two-valued: "missing" when the path is absent.
        return sa.func.coalesce(sa.func.jsonb_typeof(node, type_=sa.Text), "missing")

    def value_or_self(self, node: Expr) -> Expr:
        return sa.case((self.jtype(node) == "object", self.child(node, "value")), else_=node)

    def is_string(self, node: Expr) -> Pred:
        return self.jtype(node) == "string"

    def is_number(self, node: Expr) -> Pred:
        return self.jtype(node) == "number"

    def is_object(self, node: Expr) -> Pred:
        return self.jtype(node) == "object"

    def not_null(self, node: Expr) -> Pred:
        return self.jtype(node).not_in(("null", "missing"))

    def text(self, node: Expr) -> Expr:
        # The text of any jsonb value, strings unquoted.
        return sa.func.jsonb_build_array(node, type_=self.J).op("->>", return_type=sa.Text)(sa.literal(0))

    def number(self, node: Expr) -> Expr:
        return sa.case((self.is_number(node), sa.cast(self.text(node), sa.Numeric)))

    def boolean_is(self, node: Expr, value: bool) -> Pred:
        return sa.and_(self.jtype(node) == "boolean", self.text(node) == ("true" if value else "false"))

    def boolean_sort(self, node: Expr) -> Expr:
        return sa.case((self.boolean_is(node, True), 1), (self.boolean_is(node, False), 0))

    def instant(self, node: Expr) -> Expr:
        text = self.text(node)
        iso = sa.and_(self.is_string(node), text.regexp_match(_PG_ISO))
        return sa.case(
            (sa.and_(iso, text.regexp_match(_PG_OFFSET)), sa.cast(text, postgresql.TIMESTAMP(timezone=True))),
            (iso, sa.func.timezone("UTC", sa.cast(text, postgresql.TIMESTAMP(timezone=False)))),
        )

    def instant_param(self, value: datetime) -> Any:
        return sa.literal(value, postgresql.TIMESTAMP(timezone=True))

    def present(self, node: Expr) -> Pred:
        return sa.func.coalesce(
            sa.func.jsonb_path_exists(node, sa.literal(_PG_PRESENT, postgresql.JSONPATH), type_=sa.Boolean),
            sa.false(),
        )

    def elements(self, node: Expr) -> Elements:
        array = sa.case((self.jtype(node) == "array", node), else_=sa.func.jsonb_build_array(node, type_=self.J))
        each = (
            sa.func.jsonb_array_elements(array)
            .table_valued(sa.column("value", self.J), with_ordinality="ordinal")
            .render_derived(name="el")
        )
        primary = sa.and_(self.is_object(each.c.value), self.boolean_is(self.child(each.c.value, "primary"), True))
        return Elements(each, each.c.value, each.c.ordinal, sa.case((primary, 0), else_=1))

    def lower(self, expr: Expr) -> Expr:
        if self.lower_collation:
            expr = expr.collate(self.lower_collation)
        return sa.func.lower(expr, type_=sa.String)

    def ordering(self, expr: Expr) -> Expr:
        return expr.collate("C")  # code point order, as in Python

    def contains(self, expr: Expr, value: str, case_exact: bool) -> Pred:
        return expr.like(f"%{like_escape(value)}%", escape=LIKE_ESCAPE)

    def startswith(self, expr: Expr, value: str, case_exact: bool) -> Pred:
        return expr.like(f"{like_escape(value)}%", escape=LIKE_ESCAPE)

    def endswith(self, expr: Expr, value: str, case_exact: bool) -> Pred:
        return expr.like(f"%{like_escape(value)}", escape=LIKE_ESCAPE)


JsonOps = SqliteJson | PostgresJson


def json_ops(dialect_name: str, lower_collation: str | None = None) -> JsonOps:
    """The JSON access of a dialect; ``InvalidFilter`` for one this backend cannot query.

    ``lower_collation``: PostgreSQL only, see :class:`PostgresJson`.
    """
    if dialect_name == "sqlite":
        return SqliteJson()
    if dialect_name == "postgresql":
        return PostgresJson(lower_collation)
    raise InvalidFilter(f"the sql backend cannot filter on the {dialect_name!r} database dialect")
