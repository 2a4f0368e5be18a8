"""Keyset cursors of the ldap backend (RFC 9865 cursor paging).

A cursor names the last resource of a page by its sort key and id, never by its position, so entries
added or removed between two requests shift nothing: the next page is "what sorts after this key".

* When the directory sorts the list (``d`` cursors), the key is the raw directory value of the sort
  attribute of the last entry; the next page is one more sorted search whose filter adds "sorts after
  it" (:func:`after_filter`), written with the same ordering rules the sort control uses.
* When the backend sorts in Python (``p`` cursors: the filter or sortBy needs the reference evaluator),
  the key is the evaluator's sort key; the next page starts after it in the same order
  (:func:`after_key`).

The cursor is opaque to clients: URL-safe base64 of a small JSON document with a fingerprint of the query
(resource type, tenant, filter, sortBy, sortOrder, mode), the key and the id. A cursor of another query,
tenant or resource type is refused with ``invalidCursor``, as is anything that does not decode. Cursors
hold no server state and never expire. Forging one gains nothing: its values are escaped into a filter
that stays restricted to the caller's tenant and filter (or only compared in Python).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scim_ldap.controls import SortKey
from scim_ldap.filters import escape
from scim_service.errors import InvalidCursor
from scim_service.model import Tenant
from scim_service.query.ast import ListQuery

DIRECTORY, PYTHON = "d", "p"
_VERSION = 1
_NOT_OURS = "The cursor {!r} is not one this server issued."


def fingerprint(resource: str, tenant: Tenant, query: ListQuery, mode: str) -> str:
    """A short digest of everything a cursor is bound to (the AST's repr is deterministic)."""
    bound = repr((_VERSION, "ldap", mode, resource, tenant.id, query.filter, query.sort_by, query.descending))
    return hashlib.sha256(bound.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Position:
    """Where a page ended: the sort key of its last resource (a directory value or an evaluator key) and its id."""

    key: Any
    id: str


def encode(print_: str, position: Position) -> str:
    """The opaque cursor of ``position`` for the query with fingerprint ``print_``."""
    document = {"f": print_, "k": position.key, "i": position.id}
    raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, print_: str) -> Position:
    """The position a cursor holds; ``InvalidCursor`` when it is malformed or belongs to another query."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(_NOT_OURS.format(cursor[:40])) from None
    if not isinstance(document, dict) or not isinstance(document.get("i"), str) or "k" not in document:
        raise InvalidCursor(_NOT_OURS.format(cursor[:40]))
    if document.get("f") != print_:
        raise InvalidCursor(
            "The cursor belongs to another query: a cursor is valid only with the filter, sortBy and "
            "sortOrder (and resource type) of the request that returned it. Start again with cursor=''."
        )
    return Position(document["k"], document["i"])


# -- directory-sorted lists ----------------------------------------------------------------------


def _relation(key: SortKey, op: str, value: str) -> str:
    """``attribute op value`` (op: lt, eq, gt) under the ordering the sort control uses for ``key``.

    A key without an explicit rule sorts by the attribute's own ORDERING rule, which ``<=``/``>=`` use;
    one with a rule (``caseIgnoreOrderingMatch``) uses an extensible match with that rule, true when the
    value sorts before the assertion (RFC 4517), and its equality twin for ties.
    """
    a, v = key.attribute, escape(value)
    if not key.ordering_rule:
        return {"lt": f"(&({a}<={v})(!({a}={v})))", "eq": f"({a}={v})", "gt": f"(&({a}>={v})(!({a}={v})))"}[op]
    rule = key.ordering_rule
    before, same = f"({a}:{rule}:={v})", f"({a}:{rule.replace('OrderingMatch', 'Match')}:={v})"
    if op == "lt":
        return before
    if op == "eq":
        return same
    return f"(&({a}=*)(!{before})(!{same}))"


def after_filter(keys: Sequence[SortKey], value: str | None, last_id: str, id_key: SortKey) -> str:
    """The entries that sort after (``value``, ``last_id``) under ``keys`` (a sort key then ``id_key``, or
    ``id_key`` alone), as the directory sorts them: missing values last ascending and first descending,
    ties by id ascending."""
    later_id = _relation(id_key, "gt", last_id)
    if len(keys) == 1:
        return later_id
    key = keys[0]
    present = f"({key.attribute}=*)"
    if value is None:
        # Missing values: after the missing ones come the present ones (descending) or nothing (ascending).
        same = f"(&(!{present}){later_id})"
        return f"(|{present}{same})" if key.reverse else same
    beyond = _relation(key, "lt" if key.reverse else "gt", value)
    tie = f"(&{_relation(key, 'eq', value)}{later_id})"
    if key.reverse:
        return f"(|{beyond}{tie})"
    return f"(|{beyond}{tie}(!{present}))"


# -- Python-sorted lists -------------------------------------------------------------------------


def python_key(key: Any) -> tuple[Any, ...]:
    """A decoded evaluator sort key (JSON gives lists) as the tuple the evaluator compares."""
    if not isinstance(key, list) or not all(isinstance(v, str | int | float) for v in key):
        raise InvalidCursor("The cursor is malformed: it holds a key this server did not write.")
    return tuple(key)


def after_key(key: tuple[Any, ...], item_id: str, position: Position, descending: bool) -> bool:
    """Whether a resource with sort key ``key`` and id ``item_id`` comes after ``position`` in the order the
    evaluator gives (key ascending, or descending, then id ascending)."""
    last = python_key(position.key)
    try:
        if key != last:
            return key < last if descending else key > last
    except TypeError:
        raise InvalidCursor("The cursor is malformed: its key does not fit this sort.") from None
    return item_id > position.id
