"""``git annex matchexpression``: one expression against data the user provides.

Owns git-annex's ``MatchingUserInfo`` rule: the expression is parsed as preferred content
of *here* (so ``standard``/``groupwanted`` expand for here's groups) and evaluated against
``--key``, ``--file`` and ``--size``; a term that needs data that was not given fails with
git-annex's message ("cannot match this expression without key data"), but only when it
is actually evaluated. Location terms read the repository through `Wants`. Nothing is
printed here.
"""

from __future__ import annotations

from typing import cast

from annexproxy.errors import ConfigError
from annexproxy.keys import Key
from annexproxy.preferred import parse_expression
from annexproxy.preferred.termeval import Indexes, Question
from annexproxy.server.wants import Wants

_NO_KEY = "cannot match this expression without key data"


class _PartialKey:
    """The key as far as the user gave it: ``--key`` and/or ``--size``.

    ``size`` is the key's size field, else ``--size``; anything else needs ``--key``.
    Equal to, and hashed like, the key it stands for.
    """

    def __init__(self, key: Key | None, size: int | None) -> None:
        self._key = key
        self._size = size

    @property
    def size(self) -> int:
        if self._key is not None and self._key.size is not None:
            return self._key.size
        if self._size is None:
            raise ConfigError("cannot match this expression without size data")
        return self._size

    def _real(self) -> Key:
        if self._key is None:
            raise ConfigError(_NO_KEY)
        return self._key

    def __getattr__(self, name: str) -> object:
        return getattr(self._real(), name)

    def __str__(self) -> str:
        return str(self._real())

    def __hash__(self) -> int:
        return hash(self._real())

    def __eq__(self, other: object) -> bool:
        return self._real() == other


class _UserQuestion(Question):
    """A question about user-provided data (git-annex ``MatchingUserInfo``).

    Reading data that was not provided fails the way git-annex fails, only when a term
    that needs it is actually evaluated (terms short-circuit left to right).
    """

    def __init__(
        self, indexes: Indexes, key: Key | None, file: str | None, size: int | None
    ) -> None:
        self._user_key = key
        self._user_file = file
        self._user_size = size
        super().__init__(indexes, cast("Key", None), None, frozenset())

    @property
    def key(self) -> Key:
        if self._user_key is not None and self._user_key.size is not None:
            return self._user_key
        return cast("Key", _PartialKey(self._user_key, self._user_size))

    @key.setter
    def key(self, value: Key) -> None:
        del value  # Question.__init__ assigns it; the user data is kept apart

    @property
    def file(self) -> str | None:
        if self._user_file is None:
            raise ConfigError("cannot match this expression without file data")
        return self._user_file

    @file.setter
    def file(self, value: str | None) -> None:
        del value


def match_expression(
    wants: Wants,
    expression: str,
    *,
    key: Key | None = None,
    file: str | None = None,
    size: int | None = None,
) -> bool:
    """``git annex matchexpression``: does ``expression`` match the data given?

    The expression is parsed as preferred content of *here* (``standard`` and
    ``groupwanted`` expand for here's groups); terms that read the location log use
    this repository's branch.

    Raises:
        ExpressionSyntaxError: the expression does not parse.
        ConfigError: a term needs data that was not given ("without key data", ...).
        RepositoryError: the branch cannot be read.
    """
    parse_expression(expression)
    evaluator = wants.with_expression(expression)
    matcher = evaluator.preferred(wants.here)
    if matcher is None or not matcher.configured:
        return True
    question = _UserQuestion(Indexes(evaluator.context), key, file, size)
    return matcher.predicate(question)
