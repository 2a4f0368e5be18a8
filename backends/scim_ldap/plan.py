"""Which part of a list request the directory answers, and which part Python answers over the candidates.

A filter is split node by node with :class:`~scim_ldap.filters.FilterCompiler`: a comparison the
compiler translates faithfully is *exact*; one it cannot (an attribute without a directory home such as
``emails.type`` or ``nickName``, a reference, several comparisons inside ``emails[...]``) becomes a
*necessary condition* instead, an LDAP filter every match satisfies (``(objectClass=*)`` when nothing
better is known; for ``emails[type eq "work" and value co "x"]`` the comparison on the value,
``(mail=*x*)``). ``and``/``or`` combine them; ``not`` of an inexact part knows nothing (it becomes
true). The directory evaluates the pushed filter, with its indexes, and returns the *candidates*; when
the split is not exact the backend evaluates the whole filter with the reference evaluator
(:mod:`scim_service.query.evaluator`) over the candidates' SCIM documents, so the answer is the
evaluator's by construction and the directory only narrows what is read.

``eq`` on a name (userName, emails.value, a group's displayName: the evaluator's
:func:`~scim_service.query.evaluator.compares_by_key`) compares comparison keys
(:func:`scim_service.rules.comparison_key`), which the directory's matching rules only approximate: it
is pushed as the necessary condition "holds the key's letters and digits in order" and decided in
Python, as the backend's uniqueness checks decide it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from scim_ldap.filters import FALSE, TRUE, FilterCompiler, key_pattern
from scim_service.errors import InvalidFilter, InvalidValue
from scim_service.model import ENTERPRISE_SCHEMA
from scim_service.query.ast import And, AttrPath, Compare, Filter, Not, Or, Present, ValuePath
from scim_service.query.evaluator import compares_by_key
from scim_service.rules import comparison_key


@dataclass(frozen=True)
class FilterPlan:
    """The LDAP filter the directory evaluates and whether it selects exactly the matches.

    ``pushed`` holds for every match; with ``exact`` it holds for nothing else. ``evaluated`` names the
    SCIM paths the directory could not evaluate (checked in Python), for messages and logs.
    """

    pushed: str
    exact: bool
    evaluated: tuple[str, ...] = ()


def path_name(path: AttrPath) -> str:
    """How a message names a path: ``emails.type``, ``<enterprise urn>:manager.value``."""
    return f"{path.schema}:{path.dotted()}" if path.schema == ENTERPRISE_SCHEMA else path.dotted()


def paths_of(f: Filter) -> Iterator[AttrPath]:
    """Every attribute path a filter names (value paths: the outer attribute and the inner paths)."""
    if isinstance(f, And | Or):
        yield from paths_of(f.left)
        yield from paths_of(f.right)
    elif isinstance(f, Not):
        yield from paths_of(f.expr)
    elif isinstance(f, ValuePath):
        yield f.attr
        yield from paths_of(f.filter)
    elif isinstance(f, Compare | Present):
        yield f.path


def names_attribute(f: Filter | None, attr: str) -> bool:
    """Whether the filter uses the core attribute ``attr`` (``groups`` of a user, ``members`` of a group)."""
    if f is None:
        return False
    return any(p.attr.lower() == attr and p.schema != ENTERPRISE_SCHEMA for p in paths_of(f))


def check_listable(path: AttrPath, error: type[InvalidFilter] | type[InvalidValue]) -> None:
    """Refuse ``meta.location``: it is the request's URL, which the backend never sees (as the sql backend)."""
    if path.attr.lower() == "meta" and (path.sub_attr or "").lower() == "location":
        verb = "filter" if error is InvalidFilter else "sort"
        raise error(f"The ldap backend cannot {verb} on meta.location: it depends on the request's URL")


_MARK = "scimkeymark7f3a"  # a placeholder that RFC 4515 escaping leaves as it is


def _key_eq(f: Filter) -> bool:
    """Whether ``f`` is, or holds inside a value path, an ``eq`` on a name with a string value."""
    if isinstance(f, ValuePath):
        return _key_eq(f.filter)
    if isinstance(f, And | Or):
        return _key_eq(f.left) or _key_eq(f.right)
    if isinstance(f, Not):
        return _key_eq(f.expr)
    return isinstance(f, Compare) and f.op in ("eq", "ne") and isinstance(f.value, str) and compares_by_key(f.path)


def _and(left: str, right: str) -> str:
    if left == TRUE:
        return right
    if right == TRUE:
        return left
    if FALSE in (left, right):
        return FALSE
    return f"(&{left}{right})"


def _or(left: str, right: str) -> str:
    if TRUE in (left, right):
        return TRUE
    if left == FALSE:
        return right
    if right == FALSE:
        return left
    return f"(|{left}{right})"


def names_relation(f: Filter, attr: str) -> bool:
    """Whether a comparison or value path is on the core attribute ``attr`` (a user's ``groups``)."""
    path = f.attr if isinstance(f, ValuePath) else f.path if isinstance(f, Compare | Present) else None
    return path is not None and path.attr.lower() == attr and path.schema != ENTERPRISE_SCHEMA


class FilterSplitter:
    """Splits filters of one resource type into the pushed LDAP filter and the part left to Python.

    ``membership``, for users, turns a comparison or value path on ``groups`` into a necessary condition:
    the members of the groups whose element could satisfy it (see the backend's ``_membership``).
    """

    def __init__(self, compiler: FilterCompiler, membership: Callable[[Filter], str] | None = None) -> None:
        self.compiler = compiler
        self.membership = membership

    def plan(self, f: Filter | None) -> FilterPlan:
        """The plan of ``f`` (None: every entry, exactly)."""
        if f is None:
            return FilterPlan(TRUE, True)
        for path in paths_of(f):
            check_listable(path, InvalidFilter)
        evaluated: list[str] = []
        pushed, exact = self._split(f, evaluated)
        return FilterPlan(pushed, exact, tuple(dict.fromkeys(evaluated)))

    def _split(self, f: Filter, evaluated: list[str]) -> tuple[str, bool]:
        if isinstance(f, And):
            (left, left_exact), (right, right_exact) = self._split(f.left, evaluated), self._split(f.right, evaluated)
            return _and(left, right), left_exact and right_exact
        if isinstance(f, Or):
            (left, left_exact), (right, right_exact) = self._split(f.left, evaluated), self._split(f.right, evaluated)
            return _or(left, right), left_exact and right_exact
        if isinstance(f, Not):
            inner, exact = self._split(f.expr, evaluated)
            if not exact:
                return TRUE, False  # the negation of a necessary condition is no necessary condition
            return (FALSE if inner == TRUE else TRUE if inner == FALSE else f"(!{inner})"), True
        if isinstance(f, Compare) and f.op == "eq" and _key_eq(f):
            evaluated.append(path_name(f.path))
            return self._key_candidates(f, lambda c: c), False
        if isinstance(f, Compare) and f.op == "ne" and _key_eq(f):
            evaluated.append(path_name(f.path))
            return TRUE, False  # not (a necessary condition) is none
        if isinstance(f, ValuePath) and _key_eq(f):
            return self._element_condition(f, f.filter, evaluated), False
        try:
            return self.compiler.compile(f), True
        except InvalidFilter:
            pass
        if self.membership is not None and names_relation(f, "groups"):
            evaluated.extend(path_name(p) for p in paths_of(f))
            return self.membership(f), False
        if isinstance(f, ValuePath):
            return self._element_condition(f, f.filter, evaluated), False
        evaluated.append(path_name(f.path))
        return TRUE, False

    def _key_candidates(self, f: Compare, wrap: Callable[[Compare], Filter]) -> str:
        """A necessary condition of ``f`` (an ``eq`` on a name): the key's characters in order
        (:func:`~scim_ldap.filters.key_pattern`), which every value with that comparison key holds;
        Python then compares the keys exactly, as the backend's uniqueness checks do."""
        assert isinstance(f.value, str)
        pattern = key_pattern(comparison_key(f.value))
        if pattern is None:
            return TRUE
        try:
            # Compile a "co" (the mapping's attribute and guards), then put the ordered pattern in. (An
            # "or" with the equality as sent would add nothing: every such entry holds the pattern.)
            return self.compiler.compile(wrap(Compare(f.path, "co", _MARK))).replace(f"*{_MARK}*", pattern)
        except InvalidFilter:
            return TRUE

    def _element_condition(self, outer: ValuePath, f: Filter, evaluated: list[str]) -> str:
        """A necessary condition of ``outer`` from the comparisons on ``value`` inside it.

        Every inner comparison on the element's ``value`` that the directory can test on the attribute's
        values is kept (``emails[type eq "work" and value co "x"]`` needs some email containing "x");
        the other sub-attributes, ``ne`` and ``not`` give nothing.
        """
        if isinstance(f, And):
            left, right = (
                self._element_condition(outer, f.left, evaluated),
                self._element_condition(outer, f.right, evaluated),
            )
            return _and(left, right)
        if isinstance(f, Or):
            left, right = (
                self._element_condition(outer, f.left, evaluated),
                self._element_condition(outer, f.right, evaluated),
            )
            return _or(left, right)
        on_value = isinstance(f, Compare | Present) and (f.path.sub_attr or "").lower() == "value"
        if isinstance(f, Compare) and f.op == "eq" and _key_eq(f):
            evaluated.append(path_name(f.path))
            return self._key_candidates(f, lambda c: ValuePath(outer.attr, c))
        if on_value and not (isinstance(f, Compare) and (f.op == "ne" or f.value is None)):
            try:
                return self.compiler.compile(ValuePath(outer.attr, f))
            except InvalidFilter:
                pass
        evaluated.extend(path_name(p) for p in paths_of(f))
        return TRUE
