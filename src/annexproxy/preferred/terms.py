"""The terms of the preferred-content language and how each word is parsed (section 4).

Every term is a frozen value that keeps the word it came from (``text``), so a printed
expression reproduces the input. `parse_term` follows git-annex's token table: a word
equal to a keyword term is that term, otherwise it is split at the first ``=`` into a name
and a value parsed by the named term's rules; anything else is an error whose message is
git-annex's (``near "foo"``, ``bad size``, ``bad number for copies``, ...). Evaluation
lives in `annexproxy.preferred.evaluate`. Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from annexproxy.space.numbers import readish_int
from annexproxy.space.units import parse_size


class TrustLevel(enum.IntEnum):
    """Trust levels, ordered low to high (preferred-content.md section 1)."""

    # Values start at 1 so that no level is falsy.
    DEAD = 1
    UNTRUSTED = 2
    SEMITRUSTED = 3
    TRUSTED = 4

    @classmethod
    def from_name(cls, name: str) -> TrustLevel | None:
        """The level named like git-annex names it (``trusted``, ``dead``, ...), or None."""
        return _TRUST_NAMES.get(name)


_TRUST_NAMES = {
    "trusted": TrustLevel.TRUSTED,
    "semitrusted": TrustLevel.SEMITRUSTED,
    "untrusted": TrustLevel.UNTRUSTED,
    "dead": TrustLevel.DEAD,
}

#: Terms that are a whole word with no value.
KEYWORDS = frozenset(
    {
        "anything",
        "nothing",
        "present",
        "securehash",
        "inpreferreddir",
        "standard",
        "groupwanted",
        "unused",
    }
)
BALANCED_KINDS = ("balanced", "fullybalanced", "sizebalanced", "fullysizebalanced")


class TermError(Exception):
    """A word is not a valid term; ``args[0]`` is git-annex's message for it."""


@dataclass(frozen=True, slots=True)
class Keyword:
    """A keyword term: anything, nothing, present, securehash, inpreferreddir, ..."""

    text: str


@dataclass(frozen=True, slots=True)
class Include:
    """``include=GLOB`` (or ``exclude=GLOB`` when ``negate``)."""

    text: str
    glob: str
    negate: bool


@dataclass(frozen=True, slots=True)
class SizeLimit:
    """``largerthan=SIZE`` (``larger``) or ``smallerthan=SIZE``."""

    text: str
    size: int
    larger: bool


@dataclass(frozen=True, slots=True)
class Copies:
    """``copies=N``, ``copies=TRUST:N``, ``copies=TRUST+:N``, ``copies=GROUP:N``."""

    text: str
    count: int
    trust: TrustLevel | None = None
    at_least: bool = False
    group: str | None = None


@dataclass(frozen=True, slots=True)
class LackingCopies:
    """``lackingcopies=N`` or ``approxlackingcopies=N`` (``approx``)."""

    text: str
    needed: int
    approx: bool


@dataclass(frozen=True, slots=True)
class InBackend:
    """``inbackend=NAME``."""

    text: str
    name: str


@dataclass(frozen=True, slots=True)
class GroupTerm:
    """``inallgroup=GROUP`` (``all_members``) or ``onlyingroup=GROUP``."""

    text: str
    group: str
    all_members: bool


@dataclass(frozen=True, slots=True)
class MetaData:
    """``metadata=FIELD=GLOB`` / ``FIELD<V`` / ``<=`` / ``>`` / ``>=``."""

    text: str
    field: str
    op: str
    value: str


@dataclass(frozen=True, slots=True)
class Url:
    """``url=GLOB``."""

    text: str
    glob: str


@dataclass(frozen=True, slots=True)
class Balanced:
    """``balanced=``, ``fullybalanced=``, ``sizebalanced=``, ``fullysizebalanced=``.

    ``count`` is None for ``:lackingcopies``. ``copies`` is the copies term that
    ``balanced``/``sizebalanced`` build from the same value (section 13.1).
    """

    text: str
    kind: str
    group: str
    count: int | None
    copies: Copies | None = None

    @property
    def fully(self) -> bool:
        """True for the fully* kinds (no present/copies wrapper)."""
        return self.kind.startswith("fully")

    @property
    def by_size(self) -> bool:
        """True for the size-balanced kinds."""
        return self.kind.endswith("sizebalanced")


Term = (
    Keyword | Include | SizeLimit | Copies | LackingCopies | InBackend | GroupTerm | MetaData | Url
) | Balanced


def _parse_copies(text: str, value: str) -> Copies:
    parts = value.split(":")
    if len(parts) == 1:
        count = readish_int(parts[0])
        if count is None:
            raise TermError("bad number for copies")
        return Copies(text, count)
    if len(parts) != 2:
        # The binary says "bad number" here; the source would say "bad value".
        raise TermError("bad number for copies")
    spec, number = parts
    count = readish_int(number)
    if count is None:
        raise TermError("bad number for copies")
    at_least = spec.endswith("+")
    level = TrustLevel.from_name(spec[:-1] if at_least else spec)
    if level is not None:
        return Copies(text, count, trust=level, at_least=at_least)
    return Copies(text, count, group=spec)


def _parse_lacking(text: str, value: str, *, approx: bool) -> LackingCopies:
    needed = readish_int(value)
    if needed is None:
        raise TermError("bad value for number of lacking copies")
    return LackingCopies(text, needed, approx)


def _legal_field(name: str) -> bool:
    if not name or not name[0].isalnum():
        return False
    return all(c.isalnum() or c in "_-." for c in name[1:])


def _parse_metadata(text: str, value: str) -> MetaData:
    cut = next((i for i, c in enumerate(value) if c in "=<>"), len(value))
    name, rest = value[:cut], value[cut:]
    if not _legal_field(name):
        raise TermError(f'Illegal metadata field name, "{name}"')
    for op in ("=", "<=", "<", ">=", ">"):
        if rest.startswith(op):
            return MetaData(text, name, op, rest[len(op) :])
    return MetaData(text, name, "=", "")


def _parse_balanced(text: str, kind: str, value: str) -> Balanced:
    parts = value.split(":")
    count: int | None
    if len(parts) == 1:
        count = 1
    elif len(parts) == 2 and parts[1] == "lackingcopies":
        count = None
    elif len(parts) == 2:
        count = readish_int(parts[1])
        if count is None:
            raise TermError(f"bad number for {kind}")
    else:
        raise TermError(f"bad value for {kind}")
    copies = None
    if kind in ("balanced", "sizebalanced") and count is not None:
        copies = _parse_copies(text, value if ":" in value else value + ":1")
    return Balanced(text, kind, parts[0], count, copies)


def parse_term(word: str) -> Term:
    """Parse one term word.

    Raises:
        TermError: unknown word or bad value, with git-annex's message.
    """
    if word in KEYWORDS:
        return Keyword(word)
    name, sep, value = word.partition("=")
    if name in ("include", "exclude"):
        return Include(word, value, negate=name == "exclude")
    if name in ("largerthan", "smallerthan"):
        size = parse_size(value)
        if size is None:
            raise TermError("bad size")
        return SizeLimit(word, size, larger=name == "largerthan")
    if name == "copies":
        return _parse_copies(word, value)
    if name in ("lackingcopies", "approxlackingcopies"):
        return _parse_lacking(word, value, approx=name == "approxlackingcopies")
    if name == "inbackend":
        return InBackend(word, value)
    if name in ("inallgroup", "onlyingroup"):
        return GroupTerm(word, value, all_members=name == "inallgroup")
    if name == "metadata":
        return _parse_metadata(word, value)
    if name == "url":
        return Url(word, value)
    if name in BALANCED_KINDS:
        return _parse_balanced(word, name, value)
    del sep
    raise TermError(f"near {haskell_show(word)}")


_CONTROL_NAMES = (
    "NUL",
    "SOH",
    "STX",
    "ETX",
    "EOT",
    "ENQ",
    "ACK",
    "a",
    "b",
    "t",
    "n",
    "v",
    "f",
    "r",
    "SO",
    "SI",
    "DLE",
    "DC1",
    "DC2",
    "DC3",
    "DC4",
    "NAK",
    "SYN",
    "ETB",
    "CAN",
    "EM",
    "SUB",
    "ESC",
    "FS",
    "GS",
    "RS",
    "US",
)


def haskell_show(text: str) -> str:
    """Haskell ``show`` of a String (used in git-annex's ``near "WORD"`` message)."""
    out = ['"']
    for index, char in enumerate(text):
        following = text[index + 1 : index + 2]
        code = ord(char)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code < 0x20:
            escape = "\\" + _CONTROL_NAMES[code]
            out.append(escape)
            if escape == "\\SO" and following == "H":
                out.append("\\&")
        else:
            out.append("\\DEL" if code == 0x7F else f"\\{code}")
            if code != 0x7F and following.isdigit() and following.isascii():
                out.append("\\&")
    out.append('"')
    return "".join(out)
