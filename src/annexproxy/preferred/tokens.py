"""Words of a preferred-content expression (preferred-content.md section 2).

git-annex splits on white space (GHC ``isSpace``: ASCII white space, NBSP and Unicode
space separators), then makes every ``(`` and ``)`` a word of its own, and drops empty
words. There is no quoting and no escaping. Each word keeps its character span in the
source so errors can point at it. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from annexproxy.space.numbers import is_haskell_space

#: Words that are syntax rather than terms (case-sensitive).
SYNTAX_WORDS = frozenset({"and", "or", "not", "(", ")"})


@dataclass(frozen=True, slots=True)
class Word:
    """One word of an expression and where it is in the source."""

    text: str
    start: int
    end: int

    @property
    def is_syntax(self) -> bool:
        """True for ``and``, ``or``, ``not``, ``(`` and ``)``."""
        return self.text in SYNTAX_WORDS


def tokenize(source: str) -> list[Word]:
    """Split an expression into words.

    Grammar: ``expression := (space* word)*``; ``word`` is a maximal run of non-space
    characters, further split so that each parenthesis is a word.

    Returns:
        The words in order, with their spans.
    """
    words: list[Word] = []
    start = -1
    for pos, char in enumerate(source):
        if is_haskell_space(char) or char in "()":
            if start >= 0:
                words.append(Word(source[start:pos], start, pos))
                start = -1
            if char in "()":
                words.append(Word(char, pos, pos + 1))
        elif start < 0:
            start = pos
    if start >= 0:
        words.append(Word(source[start:], start, len(source)))
    return words
