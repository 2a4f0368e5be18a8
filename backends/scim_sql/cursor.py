"""Keyset cursors of the sql backend (RFC 9865 cursor paging).

A cursor names the last resource of a page by its sort key, not by its position, so the next page is
"the rows that sort after this key" (a keyset, or seek, query). Rows inserted or deleted between two
requests therefore never shift a page: no row that exists throughout the walk is skipped or repeated.

The cursor is opaque to clients: URL-safe base64 of a small JSON document holding a fingerprint of the
query (resource type, tenant, filter, sortBy, sortOrder) and the key values of the last row. A cursor
presented with another query, another tenant or another resource type has a different fingerprint and
is refused with ``invalidCursor``; so is anything that does not decode. Cursors never expire: they hold
no server-side state.

Forging a cursor gains nothing: the key values are bound parameters of a query that is still restricted
to the caller's tenant and filter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from scim_service.errors import InvalidCursor
from scim_service.model import Tenant
from scim_service.query.ast import ListQuery

__all__ = ["after_key", "decode_cursor", "encode_cursor", "query_fingerprint"]

_VERSION = 1


def query_fingerprint(resource: str, tenant: Tenant, query: ListQuery) -> str:
    """A short digest of everything a cursor is bound to (the AST's repr is deterministic)."""
    bound = repr((_VERSION, resource, tenant.id, query.filter, query.sort_by, query.descending))
    return hashlib.sha256(bound.encode()).hexdigest()[:24]


def _encode_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, Decimal):
        return {"d": str(value)}
    raise TypeError(f"cannot put a {type(value).__name__} sort key in a cursor")


def _decode_value(raw: Any) -> Any:
    if raw is None or isinstance(raw, bool | int | float | str):
        return raw
    if isinstance(raw, dict) and len(raw) == 1:
        ((tag, text),) = raw.items()
        if isinstance(text, str):
            try:
                if tag == "t":
                    return datetime.fromisoformat(text)
                if tag == "d":
                    return Decimal(text)
            except (ValueError, InvalidOperation):
                pass
    raise InvalidCursor("The cursor is malformed: it holds a value this server did not write.")


def encode_cursor(fingerprint: str, values: Sequence[Any]) -> str:
    """The opaque cursor for the row whose sort key is ``values``."""
    document = {"f": fingerprint, "k": [_encode_value(v) for v in values]}
    raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str, width: int) -> list[Any]:
    """The sort key a cursor holds; ``InvalidCursor`` when it is malformed or belongs to another query."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(f"The cursor {cursor[:40]!r} is not one this server issued.") from None
    if not isinstance(document, dict) or not isinstance(document.get("k"), list) or len(document["k"]) != width:
        raise InvalidCursor(f"The cursor {cursor[:40]!r} is not one this server issued.")
    if document.get("f") != fingerprint:
        raise InvalidCursor(
            "The cursor belongs to another query: a cursor is valid only with the filter, sortBy and "
            "sortOrder (and resource type) of the request that returned it. Start again with cursor=''."
        )
    return [_decode_value(v) for v in document["k"]]


def after_key(keys: Sequence[tuple[ColumnElement[Any], bool]], values: Sequence[Any]) -> ColumnElement[bool]:
    """The rows that sort strictly after ``values`` under ``keys`` ((expression, descending) pairs).

    Lexicographic: after at the first key, or equal there and after at the next one, and so on. A
    ``None`` in ``values`` is a missing sort value: rows are equal at that key when theirs is missing
    too, and none is strictly after it there (the preceding "missing" flag already ordered them).
    """
    alternatives: list[ColumnElement[bool]] = []
    equal_so_far: list[ColumnElement[bool]] = []
    for (expr, descending), value in zip(keys, values, strict=True):
        if value is None:
            equal_so_far.append(expr.is_(None))
            continue
        strictly = expr < value if descending else expr > value
        alternatives.append(sa.and_(*equal_so_far, strictly))
        equal_so_far.append(expr == value)
    return sa.or_(*alternatives) if alternatives else sa.false()
