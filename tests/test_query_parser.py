"""The SCIM filter and PATCH path parser: grammar, precedence, literals, errors and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim_service.errors import InvalidFilter, InvalidPath, InvalidValue
from scim_service.query.ast import COMPARE_OPS, And, AttrPath, Compare, Filter, Not, Or, Present, ValuePath
from scim_service.query.parser import PatchPath, parse_attr_path, parse_filter, parse_path, render_filter

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


def p(attr: str, sub: str | None = None, schema: str | None = None) -> AttrPath:
    return AttrPath(attr=attr, sub_attr=sub, schema=schema)


def a(name: str) -> Compare:
    """A short ``name eq 1`` leaf for precedence tests."""
    return Compare(p(name), "eq", 1)


# -- operators and literals ---------------------------------------------------------------------


@pytest.mark.parametrize("op", sorted(COMPARE_OPS))
def test_every_comparison_operator(op: str) -> None:
    assert parse_filter(f'userName {op} "bjensen"') == Compare(p("userName"), op, "bjensen")


@pytest.mark.parametrize("op", ["EQ", "Eq", "eQ"])
def test_operators_are_case_insensitive(op: str) -> None:
    assert parse_filter(f'userName {op} "x"') == Compare(p("userName"), "eq", "x")


def test_present() -> None:
    assert parse_filter("title pr") == Present(p("title"))
    assert parse_filter("title PR") == Present(p("title"))


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("true", True),
        ("False", False),
        ("NULL", None),
        ("0", 0),
        ("-12", -12),
        ("3.5", 3.5),
        ("1e3", 1000.0),
        ("-2.5E-1", -0.25),
        ('"plain"', "plain"),
        ('"with \\"quotes\\" and \\\\ backslash"', 'with "quotes" and \\ backslash'),
        ('"tab\\tnew\\nline \\u00e9"', "tab\tnew\nline é"),
        ('""', ""),
        ('"spaces  and (parens) [brackets] and or not"', "spaces  and (parens) [brackets] and or not"),
    ],
)
def test_comparison_values(literal: str, value: object) -> None:
    result = parse_filter(f"x eq {literal}")
    assert isinstance(result, Compare)
    assert result.value == value
    assert type(result.value) is type(value)


def test_integer_and_float_are_distinguished() -> None:
    assert isinstance(parse_filter("x eq 10").value, int)  # type: ignore[union-attr]
    assert isinstance(parse_filter("x eq 10.0").value, float)  # type: ignore[union-attr]


# -- attribute paths ----------------------------------------------------------------------------


def test_sub_attribute() -> None:
    assert parse_filter('name.givenName sw "B"') == Compare(p("name", "givenName"), "sw", "B")


def test_enterprise_urn_prefix() -> None:
    f = parse_filter(f'{ENT}:employeeNumber eq "7"')
    assert f == Compare(p("employeeNumber", schema=ENT), "eq", "7")


def test_core_urn_prefix_with_sub_attribute() -> None:
    f = parse_filter(f'{CORE}:name.givenName eq "Barbara"')
    assert f == Compare(p("name", "givenName", CORE), "eq", "Barbara")


def test_enterprise_urn_with_sub_attribute() -> None:
    assert parse_filter(f"{ENT}:manager.value pr") == Present(p("manager", "value", ENT))


def test_names_keep_their_case_and_dollar_ref() -> None:
    assert parse_filter('members.$ref eq "x"') == Compare(p("members", "$ref"), "eq", "x")
    assert parse_filter("USERNAME pr") == Present(p("USERNAME"))


def test_urn_prefix_is_case_preserved() -> None:
    f = parse_filter("URN:ietf:params:scim:schemas:core:2.0:User:userName pr")
    assert f == Present(p("userName", schema="URN:ietf:params:scim:schemas:core:2.0:User"))


# -- logic and precedence -----------------------------------------------------------------------


def test_and_binds_tighter_than_or() -> None:
    assert parse_filter("a eq 1 or b eq 1 and c eq 1") == Or(a("a"), And(a("b"), a("c")))
    assert parse_filter("a eq 1 and b eq 1 or c eq 1") == Or(And(a("a"), a("b")), a("c"))


def test_left_associative() -> None:
    assert parse_filter("a eq 1 or b eq 1 or c eq 1") == Or(Or(a("a"), a("b")), a("c"))
    assert parse_filter("a eq 1 and b eq 1 and c eq 1") == And(And(a("a"), a("b")), a("c"))


def test_parentheses_override_precedence() -> None:
    assert parse_filter("(a eq 1 or b eq 1) and c eq 1") == And(Or(a("a"), a("b")), a("c"))
    assert parse_filter("((a eq 1))") == a("a")


def test_not_binds_tightest() -> None:
    assert parse_filter("not (a eq 1) and b eq 1") == And(Not(a("a")), a("b"))
    assert parse_filter("NOT(a eq 1 or b eq 1)") == Not(Or(a("a"), a("b")))
    assert parse_filter("not (not (a eq 1))") == Not(Not(a("a")))


def test_keywords_case_insensitive() -> None:
    assert parse_filter("a eq 1 AND b eq 1 Or c eq 1") == Or(And(a("a"), a("b")), a("c"))


def test_extra_whitespace_is_allowed() -> None:
    assert parse_filter("  a   eq\t1   and\nb  pr ") == And(a("a"), Present(p("b")))


def test_attribute_named_like_a_keyword() -> None:
    # "not" followed by something other than "(" is an attribute path, not the operator.
    assert parse_filter('not eq "x"') == Compare(p("not"), "eq", "x")
    assert parse_filter("not pr") == Present(p("not"))
    assert parse_filter("not[x eq 1]") == ValuePath(p("not"), Compare(p("not", "x"), "eq", 1))
    assert parse_filter("a pr and or pr") == And(Present(p("a")), Present(p("or")))


def test_rfc_examples() -> None:
    f = parse_filter('userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")')
    assert f == And(
        Compare(p("userType"), "eq", "Employee"),
        Or(Compare(p("emails"), "co", "example.com"), Compare(p("emails", "value"), "co", "example.org")),
    )
    f = parse_filter('meta.lastModified gt "2011-05-13T04:42:34Z"')
    assert f == Compare(p("meta", "lastModified"), "gt", "2011-05-13T04:42:34Z")


# -- value paths --------------------------------------------------------------------------------


def test_value_path_inner_paths_are_sub_attributes() -> None:
    f = parse_filter('emails[type eq "work" and value co "@example.com"]')
    assert f == ValuePath(
        p("emails"),
        And(Compare(p("emails", "type"), "eq", "work"), Compare(p("emails", "value"), "co", "@example.com")),
    )


def test_value_path_with_urn_gives_inner_paths_the_schema() -> None:
    f = parse_filter(f'{CORE}:emails[type eq "work"]')
    assert f == ValuePath(p("emails", schema=CORE), Compare(p("emails", "type", CORE), "eq", "work"))


def test_value_path_combined_with_other_filters() -> None:
    f = parse_filter('userType eq "Employee" and emails[type eq "work" and value co "@x.com"] or not (a pr)')
    assert isinstance(f, Or)
    assert isinstance(f.left, And)
    assert isinstance(f.left.right, ValuePath)
    assert f.right == Not(Present(p("a")))


def test_value_path_with_not_and_parentheses_inside() -> None:
    f = parse_filter('emails[not (type eq "work") and (primary eq true or display pr)]')
    assert f == ValuePath(
        p("emails"),
        And(
            Not(Compare(p("emails", "type"), "eq", "work")),
            Or(Compare(p("emails", "primary"), "eq", True), Present(p("emails", "display"))),
        ),
    )


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("userName eq", ["position 11", "a value after 'eq'", "end of the text"]),
        ('userName xx "a"', ["position 9", "comparison operator", "'xx'"]),
        ("userName", ["position 8", "comparison operator"]),
        ("(a eq 1", ["position 7", "')' to close the '(' at position 0"]),
        ('emails[type eq "w"', ["position 18", "']' to close the '[' at position 6"]),
        ("not a eq 1", ["position 4", "'(' after 'not'"]),
        ('a eq "x', ["position 5", "Unterminated string"]),
        ('a eq "bad \\q escape"', ["position 10", "Invalid string literal"]),
        ("foo:bar eq 1", ["position 0", "':' outside a URN"]),
        ("a.b.c eq 1", ["position 0", "at most one sub-attribute"]),
        ("a eq 1 b eq 2", ["position 7", "'and', 'or' or the end"]),
        ("a eq 1 and", ["position 10", "an attribute path"]),
        ("a eq bjensen", ["position 5", "a value after 'eq'", "'bjensen'"]),
        ("a eq -", ["position 5", "Invalid number"]),
        ('emails[type.x eq "w"]', ["position 7", "sub-attribute name of 'emails'"]),
        ("emails[x[y eq 1]]", ["position 8", "Nested value filters"]),
        ("name.givenName[x eq 1]", ["position 14", "not to the sub-attribute"]),
        (f"{ENT}: eq 1", ["attribute name after the schema URN"]),
        ("a eq 1)", ["position 6", "'and', 'or' or the end"]),
        ("a # 1", ["position 2", "Unexpected character '#'"]),
        ('emails[type eq "w"].value eq "x"', ["position 19", "'and', 'or' or the end"]),
    ],
)
def test_errors_say_where_and_what(text: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidFilter) as info:
        parse_filter(text)
    assert info.value.scim_type == "invalidFilter"
    assert info.value.status == 400
    for fragment in fragments:
        assert fragment in info.value.detail


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_filter(text: str) -> None:
    with pytest.raises(InvalidFilter, match="empty"):
        parse_filter(text)


# -- PATCH paths ---------------------------------------------------------------------------------


def test_patch_paths() -> None:
    assert parse_path("active") == PatchPath(p("active"))
    assert parse_path("name.familyName") == PatchPath(p("name", "familyName"))
    assert parse_path(f"{ENT}:manager") == PatchPath(p("manager", schema=ENT))
    assert parse_path(f"{ENT}:manager.value") == PatchPath(p("manager", "value", ENT))
    assert parse_path('emails[type eq "work"]') == PatchPath(
        p("emails"), Compare(p("emails", "type"), "eq", "work"), None
    )
    assert parse_path('emails[type eq "work"].value') == PatchPath(
        p("emails"), Compare(p("emails", "type"), "eq", "work"), "value"
    )
    assert parse_path('members[value eq "1" or value eq "2"]') == PatchPath(
        p("members"), Or(Compare(p("members", "value"), "eq", "1"), Compare(p("members", "value"), "eq", "2"))
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ('emails[type eq "work"].', "a sub-attribute name after the '.'"),
        ('emails[type eq "work"]. value', "right after '.'"),
        ('emails[type eq "work"].value.x', "sub-attribute name after the '.'"),
        ('emails[type eq "work"] x', "the end of the path"),
        ("name.givenName.x", "at most one sub-attribute"),
        ("name x", "'[', '.subAttr' or the end of the path"),
        ('emails[type zz "work"]', "comparison operator"),
    ],
)
def test_patch_path_errors(text: str, fragment: str) -> None:
    with pytest.raises(InvalidPath) as info:
        parse_path(text)
    assert info.value.scim_type == "invalidPath"
    assert fragment in info.value.detail


def test_parse_attr_path() -> None:
    assert parse_attr_path("name.givenName") == p("name", "givenName")
    assert parse_attr_path(f"{ENT}:employeeNumber") == p("employeeNumber", schema=ENT)
    with pytest.raises(InvalidValue, match="end of the attribute path"):
        parse_attr_path("name x", error=InvalidValue)
    with pytest.raises(InvalidFilter):
        parse_attr_path("")


# -- rendering and round trips ------------------------------------------------------------------


def test_render_adds_only_needed_parentheses() -> None:
    assert render_filter(parse_filter("a eq 1 or b eq 1 and c eq 1")) == "a eq 1 or b eq 1 and c eq 1"
    assert render_filter(parse_filter("(a eq 1 or b eq 1) and c eq 1")) == "(a eq 1 or b eq 1) and c eq 1"
    assert render_filter(parse_filter("a eq 1 or (b eq 1 or c eq 1)")) == "a eq 1 or (b eq 1 or c eq 1)"


_NAMES = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_\-]{0,8}\Z")
_SCHEMAS = st.sampled_from([None, ENT, CORE])
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)


@st.composite
def _paths(draw: st.DrawFn) -> AttrPath:
    return AttrPath(attr=draw(_NAMES), sub_attr=draw(st.one_of(st.none(), _NAMES)), schema=draw(_SCHEMAS))


def _leaves(outer: AttrPath | None) -> st.SearchStrategy[Filter]:
    if outer is None:
        path = _paths()
    else:
        path = _NAMES.map(lambda n: AttrPath(attr=outer.attr, sub_attr=n, schema=outer.schema))
    compare = st.builds(Compare, path, st.sampled_from(sorted(COMPARE_OPS)), _VALUES)
    return st.one_of(compare, st.builds(Present, path))


def _logic(leaves: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.builds(And, children, children), st.builds(Or, children, children), st.builds(Not, children)
        ),
        max_leaves=6,
    )


@st.composite
def _value_paths(draw: st.DrawFn) -> Filter:
    outer = AttrPath(attr=draw(_NAMES), schema=draw(_SCHEMAS))
    return ValuePath(outer, draw(_logic(_leaves(outer))))


_FILTERS = st.recursive(
    st.one_of(_leaves(None), _value_paths()),
    lambda children: st.one_of(
        st.builds(And, children, children), st.builds(Or, children, children), st.builds(Not, children)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(_FILTERS)
def test_parse_render_round_trip(f: Filter) -> None:
    assert parse_filter(render_filter(f)) == f


def test_entra_sub_attribute_after_a_value_filter() -> None:
    """``emails[type eq "work"].value eq "x"`` parses to the AST of ``emails[type eq "work" and value eq
    "x"]`` when the caller's profile allows it (the callback says so), and is invalidFilter otherwise."""
    entra = 'emails[type eq "work"].value eq "x@y.test" and active eq true'
    asked: list[str] = []

    def allow(detail: str) -> bool:
        asked.append(detail)
        return True

    parsed = parse_filter(entra, value_path_sub=allow)
    assert parsed == parse_filter('emails[type eq "work" and value eq "x@y.test"] and active eq true')
    assert asked == ["filter 'emails[...].value'"]
    assert parse_filter('emails[type eq "work"].value pr', value_path_sub=allow) == parse_filter(
        'emails[type eq "work" and value pr]'
    )
    for refuse in (None, lambda detail: False):
        with pytest.raises(InvalidFilter, match="'and', 'or' or the end of the filter"):
            parse_filter(entra, value_path_sub=refuse)
    with pytest.raises(InvalidFilter):  # a sub-attribute with a URN or a dot is no sub-attribute name
        parse_filter('emails[type eq "work"].value.x eq "a"', value_path_sub=allow)
