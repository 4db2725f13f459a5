"""Print a matcher tree back as an expression that parses to the same tree.

Because git-annex folds left to right, a left operand never needs parentheses and a
right operand needs them only when it is itself ``and``/``or``; an `MAny` inside a
tree (it survives git-annex's one-pass simplify, e.g. ``nothing or``) prints as
``( and )``, which builds ``MAnd MAny MAny`` and simplifies back to `MAny`. The round
trip ``parse(format(parse(x))) == parse(x)`` is checked by a property test. Pure: no I/O.
"""

from __future__ import annotations

from annexproxy.preferred.parser import Expression, MAnd, MAny, Matcher, MNot, MOp, MOr


def format_matcher(matcher: Matcher) -> str:
    """The text of a matcher tree (empty text for a bare `MAny`)."""
    if isinstance(matcher, MAny):
        return ""
    return _format(matcher)


def format_expression(expression: Expression) -> str:
    """The canonical text of a parsed expression."""
    return format_matcher(expression.matcher)


def _format(matcher: Matcher) -> str:
    if isinstance(matcher, MAny):
        return "( and )"
    if isinstance(matcher, MOp):
        return matcher.term.text
    if isinstance(matcher, MNot):
        return "not " + _operand(matcher.inner)
    word = "and" if isinstance(matcher, MAnd) else "or"
    return f"{_format(matcher.left)} {word} {_operand(matcher.right)}"


def _operand(matcher: Matcher) -> str:
    # A right operand is one item: a term, a not-chain, or a group.
    if isinstance(matcher, MAnd | MOr):
        return f"( {_format(matcher)} )"
    return _format(matcher)
