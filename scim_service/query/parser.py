"""A hand-written recursive-descent parser of SCIM filters and PATCH paths (RFC 7644 §3.4.2.2, §3.5.2).

The grammar (RFC 7644 §3.4.2.2, with the precedence of its table 4: ``not`` > ``and`` > ``or``)::

    FILTER    = orExp
    orExp     = andExp *(SP "or" SP andExp)
    andExp    = unary *(SP "and" SP unary)
    unary     = "not" [SP] "(" FILTER ")" / "(" FILTER ")" / valuePath / attrExp
    valuePath = attrPath "[" valFilter "]"          ; inside: paths are sub-attribute names
    attrExp   = attrPath SP "pr" / attrPath SP compareOp SP compValue
    compValue = "false" / "null" / "true" / number / string   ; JSON literals
    attrPath  = [URI ":"] ATTRNAME ["." ATTRNAME]

    PATH      = attrPath / valuePath ["." ATTRNAME]  ; the PATCH path of RFC 7644 §3.5.2

Keywords and operators are case-insensitive; ``and``/``or`` associate to the left. The parser checks only
syntax: the attribute paths it builds are *raw* (names as written, ``schema`` the URN prefix if one was
written, default type characteristics). :func:`scim_service.query.resolve.resolve_filter` checks them
against the schemas. A URN prefix is everything up to the last ``:`` of the path word, so
``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`` is the enterprise URN and
``employeeNumber``. Inside ``attr[...]`` the paths are sub-attributes of ``attr`` and are built as
``AttrPath(attr=<outer attr>, sub_attr=<inner name>, schema=<outer schema>)``.

Errors raise :class:`~scim_service.errors.InvalidFilter` (filters) or :class:`~scim_service.errors.InvalidPath`
(PATCH paths) with the character offset and what was expected.

Every filter has a budget (docs/rules.md, "Limits"): at most :data:`MAX_FILTER_DEPTH` levels of ``(``,
``not(`` and ``[`` and at most :data:`MAX_FILTER_TERMS` comparisons. The parser stops at the first level
or term beyond it, so no filter reaches a RecursionError here or in the backends' compilers, and no
filter costs a store more than a bounded query. Text with a lone UTF-16 surrogate (also written as a
``"\ud83d"`` escape in a string literal) is refused: no backend can store or compare it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from scim_service.errors import InvalidFilter, InvalidPath, ScimError
from scim_service.query.ast import (
    COMPARE_OPS,
    And,
    AttrPath,
    Compare,
    Filter,
    Not,
    Or,
    Present,
    Value,
    ValuePath,
)
from scim_service.safejson import check_text

__all__ = ["PatchPath", "parse_attr_path", "parse_filter", "parse_path", "render_filter", "render_path"]

# ATTRNAME = ALPHA *(nameChar); "$" is accepted too because RFC 7643 names the "$ref" sub-attribute.
_NAME_RE = re.compile(r"[A-Za-z$][A-Za-z0-9_\-$]*")
_NAME_FULL_RE = re.compile(r"\A[A-Za-z$][A-Za-z0-9_\-$]*\Z")
# A path word: a name, or a URN followed by ":" and a name; dots separate the sub-attribute
# (and appear inside URNs such as "2.0").
_WORD_RE = re.compile(r"[A-Za-z$][A-Za-z0-9_\-$.:]*")
# A JSON number (RFC 8259 §6).
_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_OPERATOR_WORDS = COMPARE_OPS | {"pr"}

MAX_FILTER_DEPTH = 16
"""Most levels of ``(``, ``not(`` and ``[`` one filter may nest (docs/rules.md, "Limits")."""
MAX_FILTER_TERMS = 100
"""Most comparisons (``attr op value`` or ``attr pr``) one filter may hold (docs/rules.md, "Limits")."""
_OPS_TEXT = "a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le) or 'pr'"


@dataclass(frozen=True)
class PatchPath:
    """A parsed PATCH ``path`` (RFC 7644 §3.5.2): ``attr``, ``attr.sub``, ``attr[filter]`` or ``attr[filter].sub``.

    ``attr`` is the attribute path (with its sub-attribute when written ``attr.sub`` without a filter);
    ``value_filter`` the filter inside the brackets, whose paths name sub-attributes of ``attr``;
    ``sub_attr`` the sub-attribute written after the closing bracket.
    """

    attr: AttrPath
    value_filter: Filter | None = None
    sub_attr: str | None = None


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "string", "number", "(", ")", "[", "]", ".", "end"
    text: str
    pos: int
    value: Value = None


class _Lexer:
    """Splits the text into tokens, remembering each token's character offset."""

    def __init__(self, text: str, error: type[ScimError]) -> None:
        self.text = text
        self.error = error

    def fail(self, pos: int, message: str) -> ScimError:
        return self.error(f"{message} at position {pos} of {self.text!r}")

    def tokens(self) -> list[_Token]:
        text = self.text
        out: list[_Token] = []
        i = 0
        n = len(text)
        while i < n:
            ch = text[i]
            if ch.isspace():
                i += 1
                continue
            if ch in "()[].":
                out.append(_Token(ch, ch, i))
                i += 1
                continue
            if ch == '"':
                end = self._string_end(i)
                raw = text[i : end + 1]
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise self.fail(i + exc.pos, f"Invalid string literal ({exc.msg})") from None
                check_text(value, f"The string literal at position {i}", self.error)
                out.append(_Token("string", raw, i, value))
                i = end + 1
                continue
            if ch == "-" or ch.isdigit():
                m = _NUMBER_RE.match(text, i)
                if m is None:
                    raise self.fail(i, "Invalid number: expected digits after '-'")
                raw = m.group(0)
                number: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
                if isinstance(number, float) and not math.isfinite(number):
                    raise self.fail(i, f"Number {raw!r} is out of range")
                out.append(_Token("number", raw, i, number))
                i = m.end()
                continue
            m = _WORD_RE.match(text, i)
            if m is None:
                raise self.fail(i, f"Unexpected character {ch!r}: expected an attribute path, a value or an operator")
            out.append(_Token("word", m.group(0), i))
            i = m.end()
        out.append(_Token("end", "", n))
        return out

    def _string_end(self, start: int) -> int:
        """The offset of the closing quote of the string literal that opens at ``start``."""
        i = start + 1
        text = self.text
        while i < len(text):
            ch = text[i]
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                return i
            i += 1
        raise self.fail(start, "Unterminated string literal: expected a closing '\"'")


class _Parser:
    """Recursive descent over the token list; one instance per text."""

    def __init__(self, text: str, error: type[ScimError], value_path_sub: Callable[[str], bool] | None = None) -> None:
        self.lexer = _Lexer(text, error)
        self.tokens = self.lexer.tokens()
        self.i = 0
        self.value_path_sub = value_path_sub
        self.depth = 0  # open '(', 'not(' and '[' around the current token
        self.terms = 0  # comparisons parsed so far

    def enter(self, token: _Token) -> None:
        """One more level of nesting opens at ``token``; beyond the budget the filter is refused."""
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            raise self.lexer.fail(
                token.pos, f"The filter nests deeper than {MAX_FILTER_DEPTH} levels of '(', 'not(' and '['"
            )

    # -- helpers -------------------------------------------------------------------------------

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def peek(self) -> _Token:
        """The token after the current one (the end token at the end)."""
        return self.tokens[min(self.i + 1, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind != "end":
            self.i += 1
        return token

    def fail(self, expected: str, token: _Token | None = None) -> ScimError:
        token = token or self.tok
        found = "the end of the text" if token.kind == "end" else repr(token.text)
        return self.lexer.fail(token.pos, f"Expected {expected}, found {found}")

    def is_keyword(self, word: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.lower() == word

    def expect(self, kind: str, expected: str) -> _Token:
        if self.tok.kind != kind:
            raise self.fail(expected)
        return self.advance()

    # -- filters -------------------------------------------------------------------------------

    def parse_filter(self) -> Filter:
        result = self.or_expr(inner=None)
        if self.tok.kind != "end":
            raise self.fail("'and', 'or' or the end of the filter")
        return result

    def or_expr(self, inner: AttrPath | None) -> Filter:
        left = self.and_expr(inner)
        while self.is_keyword("or"):
            self.advance()
            left = Or(left, self.and_expr(inner))
        return left

    def and_expr(self, inner: AttrPath | None) -> Filter:
        left = self.unary(inner)
        while self.is_keyword("and"):
            self.advance()
            left = And(left, self.unary(inner))
        return left

    def unary(self, inner: AttrPath | None) -> Filter:
        token = self.tok
        if token.kind == "(":
            self.enter(token)
            self.advance()
            expr = self.or_expr(inner)
            self.expect(")", "')' to close the '(' at position " + str(token.pos))
            self.depth -= 1
            return expr
        if token.kind == "word" and token.text.lower() == "not" and self.peek().kind == "(":
            self.enter(token)
            self.advance()
            open_token = self.advance()
            expr = self.or_expr(inner)
            self.expect(")", "')' to close the '(' at position " + str(open_token.pos))
            self.depth -= 1
            return Not(expr)
        following = self.peek()
        names_attribute = following.kind == "[" or (
            following.kind == "word" and following.text.lower() in _OPERATOR_WORDS
        )
        if token.kind == "word" and token.text.lower() == "not" and not names_attribute:
            # "not eq ..." compares an attribute called "not"; anything else is a malformed negation.
            raise self.fail("'(' after 'not'", following)
        if token.kind != "word":
            what = "a sub-attribute name" if inner is not None else "an attribute path"
            raise self.fail(f"{what}, 'not' or '('")
        path = self.attr_path(inner)
        if self.tok.kind == "[":
            if inner is not None:
                raise self.lexer.fail(self.tok.pos, "Nested value filters are not allowed: expected an operator")
            if path.sub_attr is not None:
                raise self.lexer.fail(
                    self.tok.pos,
                    f"A value filter applies to a multi-valued attribute, not to the sub-attribute {path.dotted()!r}",
                )
            return self.value_path(path)
        return self.attr_expr(path)

    def value_path(self, outer: AttrPath) -> ValuePath:
        self.enter(self.tok)
        open_token = self.advance()  # "["
        expr = self.or_expr(inner=outer)
        self.expect("]", f"']' to close the '[' at position {open_token.pos}")
        self.depth -= 1
        # Entra's 'emails[type eq "work"].value eq "x"': outside the RFC grammar, so only when the
        # caller's profile allows it; it means 'emails[type eq "work" and value eq "x"]'.
        if (
            self.tok.kind == "."
            and self.peek().kind == "word"
            and self.value_path_sub is not None
            and self.value_path_sub(f"filter '{outer.dotted()}[...].{self.peek().text}'")
        ):
            self.advance()
            sub = self.attr_path(inner=outer)
            return ValuePath(outer, And(expr, self.attr_expr(sub)))
        return ValuePath(outer, expr)

    def attr_expr(self, path: AttrPath) -> Filter:
        token = self.tok
        self.terms += 1
        if self.terms > MAX_FILTER_TERMS:
            raise self.lexer.fail(token.pos, f"The filter has more than {MAX_FILTER_TERMS} comparisons")
        op = token.text.lower() if token.kind == "word" else ""
        if op == "pr":
            self.advance()
            return Present(path)
        if op not in COMPARE_OPS:
            raise self.fail(f"{_OPS_TEXT} after {path.dotted()!r}")
        self.advance()
        return Compare(path, op, self.comp_value(op))

    def comp_value(self, op: str) -> Value:
        token = self.tok
        if token.kind in ("string", "number"):
            self.advance()
            return token.value
        if token.kind == "word":
            literal = token.text.lower()
            if literal in ("true", "false", "null"):
                self.advance()
                return {"true": True, "false": False, "null": None}[literal]
        raise self.fail(f'a value after {op!r} (a "string", a number, true, false or null)')

    def attr_path(self, inner: AttrPath | None) -> AttrPath:
        """Parse a path word; inside brackets (``inner`` set) it is a sub-attribute of ``inner``."""
        token = self.expect("word", "an attribute path")
        schema, attr, sub = self.split_word(token)
        if inner is None:
            return AttrPath(attr=attr, sub_attr=sub, schema=schema)
        if schema is not None or sub is not None:
            raise self.lexer.fail(
                token.pos,
                f"Inside '{inner.attr}[...]' expected a sub-attribute name of {inner.attr!r}, found {token.text!r}",
            )
        return AttrPath(attr=inner.attr, sub_attr=attr, schema=inner.schema)

    def split_word(self, token: _Token) -> tuple[str | None, str, str | None]:
        """``[urn:...:]name[.sub]`` -> (urn, name, sub), checking each part."""
        text = token.text
        schema: str | None = None
        rest = text
        if ":" in text:
            if not text.lower().startswith("urn:"):
                raise self.lexer.fail(token.pos, f"Expected an attribute path, found {text!r} (a ':' outside a URN)")
            cut = text.rindex(":")
            schema, rest = text[:cut], text[cut + 1 :]
            if not rest:
                raise self.lexer.fail(
                    token.pos + len(text), f"Expected an attribute name after the schema URN {schema!r}"
                )
        parts = rest.split(".")
        if len(parts) > 2:
            raise self.lexer.fail(
                token.pos + len(text) - len(rest),
                f"Expected at most one sub-attribute in {rest!r} (attr or attr.subAttr)",
            )
        offset = token.pos + len(text) - len(rest)
        for part in parts:
            if not _NAME_FULL_RE.match(part):
                raise self.lexer.fail(offset, f"Expected an attribute name, found {part!r}")
            offset += len(part) + 1
        return schema, parts[0], parts[1] if len(parts) == 2 else None

    # -- PATCH paths ---------------------------------------------------------------------------

    def parse_patch_path(self) -> PatchPath:
        path = self.attr_path(inner=None)
        value_filter: Filter | None = None
        sub: str | None = None
        if self.tok.kind == "[":
            if path.sub_attr is not None:
                raise self.lexer.fail(
                    self.tok.pos,
                    f"A value filter applies to a multi-valued attribute, not to the sub-attribute {path.dotted()!r}",
                )
            value_filter = self.value_path(path).filter
            if self.tok.kind == ".":
                dot = self.advance()
                token = self.tok
                if token.kind != "word" or not _NAME_FULL_RE.match(token.text):
                    raise self.fail(f"a sub-attribute name after the '.' at position {dot.pos}")
                if token.pos != dot.pos + 1:
                    raise self.lexer.fail(dot.pos + 1, "Expected a sub-attribute name right after '.'")
                sub = self.advance().text
        if self.tok.kind != "end":
            expected = "the end of the path" if value_filter is not None else "'[', '.subAttr' or the end of the path"
            raise self.fail(expected)
        return PatchPath(path, value_filter, sub)


def parse_filter(text: str, *, value_path_sub: Callable[[str], bool] | None = None) -> Filter:
    """Parse a SCIM filter into its AST with raw (unresolved) attribute paths.

    ``value_path_sub``, when given, is asked (with a description) whether Entra's
    ``attr[filter].sub op value`` form is accepted, as ``attr[filter and sub op value]``; without it (or
    when it answers False) the form is the RFC's invalidFilter.

    Raises :class:`~scim_service.errors.InvalidFilter` saying at which character offset what was expected.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidFilter('The filter is empty: expected an expression such as userName eq "bjensen"')
    check_text(text, "The filter", InvalidFilter)
    return _Parser(text, InvalidFilter, value_path_sub).parse_filter()


def parse_path(text: str) -> PatchPath:
    """Parse a PATCH ``path`` (``attrPath / valuePath [subAttr]``, RFC 7644 §3.5.2).

    Raises :class:`~scim_service.errors.InvalidPath` saying at which character offset what was expected.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidPath("The PATCH path is empty: expected an attribute path such as name.givenName")
    check_text(text, "The PATCH path", InvalidPath)
    return _Parser(text, InvalidPath).parse_patch_path()


def parse_attr_path(text: str, *, error: type[ScimError] = InvalidFilter) -> AttrPath:
    """Parse a lone attribute path (``[urn:]attr[.sub]``, as sortBy takes); raises ``error`` when it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise error("Expected an attribute path such as name.familyName, found nothing")
    check_text(text, "The attribute path", error)
    parser = _Parser(text, error)
    path = parser.attr_path(inner=None)
    if parser.tok.kind != "end":
        raise parser.fail("the end of the attribute path")
    return path


# -- rendering (the inverse of parsing: parse_filter(render_filter(f)) == f) ----------------------


def _render_value(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False)


def render_path(path: AttrPath) -> str:
    """``[urn:]attr[.sub]`` as it would be written in a filter."""
    prefix = f"{path.schema}:" if path.schema else ""
    return prefix + path.dotted()


def render_filter(f: Filter, *, _inner: bool = False) -> str:
    """Render a filter AST back to filter text, with the parentheses the precedence needs."""
    if isinstance(f, Compare | Present):
        path = f.path.sub_attr or f.path.attr if _inner else render_path(f.path)
        if isinstance(f, Present):
            return f"{path} pr"
        return f"{path} {f.op} {_render_value(f.value)}"
    if isinstance(f, Not):
        return f"not ({render_filter(f.expr, _inner=_inner)})"
    if isinstance(f, ValuePath):
        return f"{render_path(f.attr)}[{render_filter(f.filter, _inner=True)}]"
    if isinstance(f, Or):
        left = render_filter(f.left, _inner=_inner)
        right = render_filter(f.right, _inner=_inner)
        # "or" is left-associative: a right operand that is itself an "or" needs parentheses.
        if isinstance(f.right, Or):
            right = f"({right})"
        return f"{left} or {right}"
    if isinstance(f, And):
        left = render_filter(f.left, _inner=_inner)
        right = render_filter(f.right, _inner=_inner)
        if isinstance(f.left, Or):
            left = f"({left})"
        if isinstance(f.right, Or | And):
            right = f"({right})"
        return f"{left} and {right}"
    raise TypeError(f"not a filter node: {f!r}")
