"""Parser: git-annex's grouping rules (section 3), errors with a caret, the printer."""

from __future__ import annotations

import pytest

from annexproxy.errors import ExpressionSyntaxError
from annexproxy.preferred import format_expression, parse_expression
from annexproxy.preferred.parser import MAnd, MAny, Matcher, MNot, MOp, MOr
from annexproxy.preferred.terms import haskell_show
from annexproxy.preferred.tokens import tokenize


def sexp(matcher: Matcher) -> str:
    if isinstance(matcher, MAny):
        return "ANY"
    if isinstance(matcher, MOp):
        return matcher.term.text.removeprefix("include=")
    if isinstance(matcher, MNot):
        return f"(not {sexp(matcher.inner)})"
    word = "and" if isinstance(matcher, MAnd) else "or"
    assert isinstance(matcher, MAnd | MOr)
    return f"({word} {sexp(matcher.left)} {sexp(matcher.right)})"


def with_terms(source: str) -> str:
    return " ".join(
        w if w in ("and", "or", "not", "(", ")") else f"include={w}"
        for w in source.replace("(", " ( ").replace(")", " ) ").split()
    )


def tree(source: str) -> str:
    return sexp(parse_expression(with_terms(source)).matcher)


# preferred-content.md 3.4 and 3.5, all verified with the binary.
GROUPING = [
    ("a or b and c", "(and (or a b) c)"),
    ("a and b or c", "(or (and a b) c)"),
    ("not a or b", "(or (not a) b)"),
    ("not ( a or b )", "(not (or a b))"),
    ("a b", "(and a b)"),
    ("a not b", "(and a (not b))"),
    ("a ( b or c ) not d", "(and (and a (or b c)) (not d))"),
    ("a not not not b", "(and a (not (not (not b))))"),
    ("a or", "(or a ANY)"),
    ("or a", "(or ANY a)"),
    ("a and or b", "(and a (or ANY b))"),
    ("not", "(not ANY)"),
    ("(a or b", "(or a b)"),
    ("a ) ) or b", "(or a b)"),
    ("", "ANY"),
    ("()", "ANY"),
    ("( )", "ANY"),
    ("and", "ANY"),
    ("a ( b or c )", "(and a (or b c))"),
    ("( a ( b or c ) )", "(or (and a b) c)"),
    # git-annex's simplify is a single pass: this one is configured and always true.
    ("( and () ) and ( and () )", "(and ANY ANY)"),
]


@pytest.mark.parametrize(("source", "expected"), GROUPING)
def test_grouping(source: str, expected: str) -> None:
    assert tree(source) == expected


@pytest.mark.parametrize(("source", "_expected"), GROUPING)
def test_printer_round_trip(source: str, _expected: str) -> None:
    parsed = parse_expression(with_terms(source))
    assert parse_expression(format_expression(parsed)).matcher == parsed.matcher


def test_parentheses_are_words_and_spaces_are_haskell_spaces() -> None:
    words = [w.text for w in tokenize("(include=a\u00a0include=b)\u2003x\x1cy")]
    assert words == ["(", "include=a", "include=b", ")", "x\x1cy"]


def test_empty_expressions_are_not_configured() -> None:
    assert parse_expression(" ( ) ").is_empty
    assert not parse_expression("or").is_empty


@pytest.mark.parametrize(
    ("source", "message", "span"),
    [
        ("include=*.mp3 and frobnicate", 'Parse failure: near "frobnicate"', (18, 28)),
        ("copies=x", "Parse failure: bad number for copies", (0, 8)),
        ("copies=a:b:c", "Parse failure: bad number for copies", (0, 12)),
        ("largerthan=5 kb", 'Parse failure: near "kb"', (13, 15)),
        ("largerthan=mb", "Parse failure: bad size", (0, 13)),
        ("lackingcopies=x", "Parse failure: bad value for number of lacking copies", (0, 15)),
        ("balanced=g:x", "Parse failure: bad number for balanced", (0, 12)),
        ("fullybalanced=g:1:2", "Parse failure: bad value for fullybalanced", (0, 19)),
        ("metadata=-x=1", 'Parse failure: Illegal metadata field name, "-x"', (0, 13)),
        ("anything=x", 'Parse failure: near "anything=x"', (0, 10)),
        ("AND", 'Parse failure: near "AND"', (0, 3)),
    ],
)
def test_errors_point_at_the_bad_word(source: str, message: str, span: tuple[int, int]) -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        parse_expression(source)
    assert info.value.args[0] == message
    assert info.value.span == span
    rendered = str(info.value).splitlines()
    assert rendered[1].strip() == source
    assert rendered[2].index("^") - rendered[1].index(source[0]) == span[0]


def test_all_errors_are_listed() -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        parse_expression("foo copies=x")
    assert info.value.args[0] == 'Parse failure: near "foo" Parse failure: bad number for copies'
    assert info.value.span == (0, 3)


def test_haskell_show_quotes_like_git_annex() -> None:
    assert haskell_show('a"b\\c') == '"a\\"b\\\\c"'
    assert haskell_show("é1") == '"\\233\\&1"'
    assert haskell_show("\x0eH\n") == '"\\SO\\&H\\n"'


def test_deep_nesting_is_a_syntax_error_not_a_crash() -> None:
    with pytest.raises(ExpressionSyntaxError):
        parse_expression("(" * 5000 + "anything")
