"""The guarded JSON loader and text checks every piece of client input goes through.

Request bodies (``api/http.py``'s ``json_body``) and filter string literals are loaded here, never with
a bare ``json.loads``: the loader bounds nesting before parsing (a deep document would otherwise end in
a RecursionError, a 500), refuses duplicate member names (SCIM names are case-insensitive, so
``userName`` and ``USERNAME`` in one object are duplicates too; silently keeping the last one hides a
client bug), and refuses lone UTF-16 surrogates (``"\\ud83d"``, a truncated emoji): they cannot be
encoded as UTF-8, so storing one poisons every later read of the resource.

No Flask here: the query parser and the blueprints share it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from scim_service.errors import InvalidSyntax, InvalidValue, ScimError

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects a request body may have (a SCIM resource needs 4)."""

# Strings first (so brackets inside them do not count), then the brackets themselves.
_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_RE = re.compile(r"[\[\]{}]")
# json.loads joins an escaped pair into one code point, so any surrogate left in a str is a lone one.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text``, counted without parsing it (no recursion)."""
    depth = deepest = 0
    for match in _BRACKET_RE.finditer(_STRING_RE.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def check_text(value: str, what: str, error: type[ScimError] = InvalidValue) -> str:
    """``value`` unchanged, or ``error`` when it holds a lone UTF-16 surrogate (not encodable as UTF-8)."""
    if _SURROGATE_RE.search(value):
        raise error(f"{what} contains a lone UTF-16 surrogate (a truncated character); send valid Unicode.")
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: an object whose member names repeat (compared case-insensitively) is refused."""
    seen: dict[str, str] = {}
    for key, _value in pairs:
        folded = key.lower()
        if folded in seen:
            first = seen[folded]
            twice = f"'{key}'" if first == key else f"'{first}' and '{key}' (names are case-insensitive)"
            raise InvalidSyntax(f"The JSON object names the attribute {twice} twice; send each attribute once.")
        seen[folded] = key
    return dict(pairs)


def _check_strings(document: Any) -> None:
    """Raise InvalidValue when any key or string value of ``document`` holds a lone surrogate."""
    pending = [document]
    while pending:  # iterative: the depth is already bounded, but no recursion is needed at all
        item = pending.pop()
        if isinstance(item, str):
            check_text(item, "A value of the request")
        elif isinstance(item, dict):
            for key, value in item.items():
                check_text(key, f"The attribute name {key.encode('utf-8', 'backslashreplace').decode()!r}")
                pending.append(value)
        elif isinstance(item, list):
            pending.extend(item)


def load_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, what: str = "The request body") -> Any:
    """Parse ``raw`` as a client's JSON document, or raise a SCIM error saying what is wrong with it.

    Not valid JSON (or not UTF-8), nested deeper than ``max_depth``, or with a duplicate member name:
    400 invalidSyntax. A lone UTF-16 surrogate in any key or string: 400 invalidValue.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise InvalidSyntax(f"{what} is not valid UTF-8: {exc}") from exc
    depth = json_depth(text)
    if depth > max_depth:
        raise InvalidSyntax(f"{what} nests arrays and objects {depth} deep; at most {max_depth} are accepted.")
    try:
        document = json.loads(text, object_pairs_hook=_unique_members)
    except RecursionError:  # the count above is a bound on this; kept so no input can reach a 500
        raise InvalidSyntax(f"{what} nests too deep.") from None
    except ValueError as exc:
        raise InvalidSyntax(f"{what} is not valid JSON: {exc}") from exc
    _check_strings(document)
    return document
