"""From words to a matcher tree, with git-annex's grouping rules (section 3).

There is no operator precedence: the tree is folded strictly left to right, ``(``...``)``
groups continue from the accumulator, ``and`` is implied only between top-level terms and
groups, stray ``)`` are ignored and missing ``)`` tolerated. This is a transcription of
``Utility.Matcher.generate`` (tokenGroups, implicitAnd, process/consume, and its
*single-pass* simplify, which is why ``( and () ) and ( and () )`` is a configured
always-true expression while ``()`` is empty). Any unknown word or bad value makes the
whole expression a syntax error (`ExpressionSyntaxError`, with a caret at the first bad
word). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from annexproxy.errors import ExpressionSyntaxError
from annexproxy.preferred.terms import Term, TermError, parse_term
from annexproxy.preferred.tokens import tokenize


@dataclass(frozen=True, slots=True)
class MAny:
    """Matches everything (the empty expression)."""


@dataclass(frozen=True, slots=True)
class MAnd:
    """Both sides match (left evaluated first)."""

    left: Matcher
    right: Matcher


@dataclass(frozen=True, slots=True)
class MOr:
    """Either side matches (left evaluated first)."""

    left: Matcher
    right: Matcher


@dataclass(frozen=True, slots=True)
class MNot:
    """The inner matcher does not match."""

    inner: Matcher


@dataclass(frozen=True, slots=True)
class MOp:
    """One term."""

    term: Term


Matcher = MAny | MAnd | MOr | MNot | MOp
ANY = MAny()


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression: its source text and matcher tree."""

    source: str
    matcher: Matcher

    @property
    def is_empty(self) -> bool:
        """True when the tree is exactly `MAny` (git-annex's ``isEmpty``: not configured)."""
        return isinstance(self.matcher, MAny)


# Token stream items: a syntax word ("and", "or", "not", "(", ")") or an operation.
_Token = str | MOp


@dataclass(frozen=True, slots=True)
class _Group:
    items: tuple[_Item, ...]


_Item = str | MOp | _Group


def _token_groups(tokens: Sequence[_Token]) -> list[_Item]:
    """``tokenGroups``: nest ``(`` ... ``)``; stray ``)`` dropped, missing ``)`` tolerated."""
    root: list[_Item] = []
    stack: list[list[_Item]] = []
    current = root
    for token in tokens:
        if token == "(":
            stack.append(current)
            current = []
        elif token == ")":
            if stack:
                group = _Group(tuple(current))
                current = stack.pop()
                current.append(group)
        else:
            current.append(token)
    while stack:
        group = _Group(tuple(current))
        current = stack.pop()
        current.append(group)
    return root


def _needs_and(item: _Item) -> bool:
    return isinstance(item, MOp | _Group)


def _implicit_and(items: list[_Item]) -> list[_Item]:
    out: list[_Item] = []
    for index, item in enumerate(items):
        if index and _needs_and(items[index - 1]) and _needs_and(item):
            out.append("and")
        out.append(item)
    return out


def _process(acc: Matcher, items: Sequence[_Item]) -> Matcher:
    pos = 0
    while pos < len(items):
        acc, pos = _consume(acc, items, pos)
    return acc


def _consume(acc: Matcher, items: Sequence[_Item], pos: int) -> tuple[Matcher, int]:
    # consume m (One And:rest) = term (m `MAnd`) rest, and so on (Utility.Matcher).
    while pos < len(items):
        item = items[pos]
        if item == "and":
            operand, pos = _consume(ANY, items, pos + 1)
            return MAnd(acc, operand), pos
        if item == "or":
            operand, pos = _consume(ANY, items, pos + 1)
            return MOr(acc, operand), pos
        if item == "not":
            operand, pos = _consume(ANY, items, pos + 1)
            return MAnd(acc, MNot(operand)), pos
        if isinstance(item, MOp):
            return MAnd(acc, item), pos + 1
        if isinstance(item, _Group):
            return _process(acc, item.items), pos + 1
        pos += 1  # unreachable for well-formed groups (a stray syntax word)
    return acc, pos


def _simplify(matcher: Matcher) -> Matcher:
    # One top-down pass, exactly like git-annex (not a fixpoint).
    if isinstance(matcher, MAnd):
        if isinstance(matcher.left, MAny):
            return _simplify(matcher.right)
        if isinstance(matcher.right, MAny):
            return _simplify(matcher.left)
        return MAnd(_simplify(matcher.left), _simplify(matcher.right))
    if isinstance(matcher, MOr):
        return MOr(_simplify(matcher.left), _simplify(matcher.right))
    if isinstance(matcher, MNot):
        return MNot(_simplify(matcher.inner))
    return matcher


def generate(tokens: Sequence[str | Term]) -> Matcher:
    """Build a matcher from syntax words and terms (``Utility.Matcher.generate``).

    Raises:
        RecursionError: the expression nests deeper than Python's stack allows.
    """
    stream: list[_Token] = [t if isinstance(t, str) else MOp(t) for t in tokens]
    return _simplify(_process(ANY, _implicit_and(_token_groups(stream))))


def parse_expression(source: str) -> Expression:
    """Parse a preferred-content expression.

    ``standard`` and ``groupwanted`` stay as keyword terms here; they are expanded per
    repository when the evaluator compiles the expression.

    Raises:
        ExpressionSyntaxError: an unknown word or a bad value (the caret points at the
            first one; the message lists all, as git-annex does), or an expression nested
            too deeply to build.
    """
    tokens: list[str | Term] = []
    errors: list[str] = []
    first_bad: tuple[int, int] | None = None
    for word in tokenize(source):
        if word.is_syntax:
            tokens.append(word.text)
            continue
        try:
            tokens.append(parse_term(word.text))
        except TermError as exc:
            errors.append("Parse failure: " + str(exc.args[0]))
            if first_bad is None:
                first_bad = (word.start, word.end)
    if first_bad is not None:
        raise ExpressionSyntaxError(" ".join(errors), source=source, span=first_bad)
    try:
        matcher = generate(tokens)
    except RecursionError:
        raise ExpressionSyntaxError(
            "expression nests too deeply to evaluate; simplify it",
            source=source,
            span=(0, len(source)),
        ) from None
    return Expression(source, matcher)
