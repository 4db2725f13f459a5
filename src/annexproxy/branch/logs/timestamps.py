"""Timestamps ("vector clocks") of git-annex branch logs: parse, format, advance.

Owns the timestamp grammar, its canonical text form and the advance rule every writer of
a log must apply (branch.md section 3). Pure: no clock is read here; the caller passes
``now`` in (STYLE habit 8).

A timestamp is kept as an exact integer number of picoseconds, which is what git-annex
holds (Haskell ``POSIXTime`` is ``Fixed E12``): no float ever touches it, digits after
the twelfth decimal are truncated on parse exactly as git-annex truncates them, and
equality and ordering are exact.

Two quirks of git-annex's parser are reproduced on purpose, because a line must mean
to us what it means to git-annex (both verified with git-annex 10.20261026 via
``GIT_ANNEX_VECTOR_CLOCK``):

* the fraction is added to a non-negative integer part, so ``-0.5`` reads as ``0.5``
  (the sign of ``-0`` is lost); ``-1.5`` reads as ``-1.5``;
* leading zeros and a missing ``s`` are accepted (``0001`` is 1 second).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from annexproxy.errors import LogFormatError

PICOS_PER_SECOND = 10**12
_FRACTION_DIGITS = 12

# Longest integer part we accept. git-annex takes any length; a longer "timestamp" is
# no real clock and would only cost CPU, so such a line is treated as unparseable.
MAX_INTEGER_DIGITS = 1000

_S = ord("s")
_FAST_DIGITS = 19  # "NNNN...s" short enough that int() is trivially cheap

# timestamp := ["+"|"-"] DIGIT+ ["." DIGIT+] ["s"]            (branch.md section 3)
_TIMESTAMP = re.compile(rb"([+-]?)([0-9]+)(?:\.([0-9]+))?s?")


@dataclass(frozen=True, slots=True, order=True)
class Timestamp:
    """An exact git-annex timestamp, in picoseconds since the POSIX epoch."""

    picoseconds: int

    @classmethod
    def from_seconds(cls, seconds: int) -> Timestamp:
        """Make a timestamp of whole seconds (what git-annex writes from its clock)."""
        return cls(seconds * PICOS_PER_SECOND)

    @classmethod
    def parse(cls, text: bytes | str) -> Timestamp:
        """Parse a timestamp as git-annex's ``parserPOSIXTime`` does.

        Grammar (branch.md section 3): ``["+"|"-"] DIGIT+ ["." DIGIT+] ["s"]``.

        Args:
            text: the whole timestamp token, nothing before or after it.

        Returns:
            The timestamp, fraction truncated to picoseconds.

        Raises:
            LogFormatError: the text does not match the grammar, or its integer part
                is absurdly long (more than `MAX_INTEGER_DIGITS` digits).
        """
        raw = text.encode("ascii", "replace") if isinstance(text, str) else text
        # Fast path for what git-annex writes (whole seconds and "s"): one per log line.
        if 1 < len(raw) <= _FAST_DIGITS and raw[-1] == _S and raw[:-1].isdigit():
            return cls(int(raw[:-1]) * PICOS_PER_SECOND)
        match = _TIMESTAMP.fullmatch(raw)
        if match is None:
            raise LogFormatError(f"not a git-annex timestamp: {raw!r}")
        sign, whole, fraction = match.groups()
        if len(whole) > MAX_INTEGER_DIGITS:
            raise LogFormatError(f"timestamp has more than {MAX_INTEGER_DIGITS} digits")
        seconds = int(whole) * (-1 if sign == b"-" else 1)
        # floor(0.d1d2...dn * 10^12) is just the first twelve digits, zero-padded.
        picos = int((fraction or b"").ljust(_FRACTION_DIGITS, b"0")[:_FRACTION_DIGITS])
        # git-annex adds the fraction to n >= 0 and subtracts it from n < 0 (so "-0.5"
        # is +0.5): Utility/TimeStamp.hs mkPOSIXTime.
        if seconds < 0:
            return cls(seconds * PICOS_PER_SECOND - picos)
        return cls(seconds * PICOS_PER_SECOND + picos)

    def format(self) -> str:
        """Format as git-annex writes it: ``1795623909s``, ``1317929189.157237s``."""
        sign = "-" if self.picoseconds < 0 else ""
        whole, fraction = divmod(abs(self.picoseconds), PICOS_PER_SECOND)
        if not fraction:
            return f"{sign}{whole}s"
        digits = f"{fraction:0{_FRACTION_DIGITS}d}".rstrip("0")
        return f"{sign}{whole}.{digits}s"

    def to_bytes(self) -> bytes:
        """The `format` text as ASCII bytes, ready to go into a log line."""
        return self.format().encode("ascii")

    @property
    def seconds(self) -> Fraction:
        """The exact value in seconds."""
        return Fraction(self.picoseconds, PICOS_PER_SECOND)

    def plus_seconds(self, seconds: int) -> Timestamp:
        """This timestamp moved by a whole number of seconds."""
        return Timestamp(self.picoseconds + seconds * PICOS_PER_SECOND)

    def __str__(self) -> str:
        return self.format()


def parse_timestamp(text: bytes | str) -> Timestamp:
    """Parse a timestamp; see `Timestamp.parse`.

    Raises:
        LogFormatError: the text is not a timestamp.
    """
    return Timestamp.parse(text)


def format_timestamp(timestamp: Timestamp) -> str:
    """Format a timestamp as git-annex writes it; see `Timestamp.format`."""
    return timestamp.format()


def next_timestamp(now: Timestamp, prev: Timestamp | None) -> Timestamp:
    """Apply the advance rule (branch.md section 3, git-annex ``advanceVectorClock``).

    Args:
        now: the writer's clock (whole seconds, or ``GIT_ANNEX_VECTOR_CLOCK``).
        prev: the largest timestamp already present for the same field, if any.

    Returns:
        ``prev`` plus one second when ``prev >= now``, otherwise ``now``. This keeps a
        later change winning despite clock skew or several changes in one second.
    """
    if prev is not None and prev >= now:
        return prev.plus_seconds(1)
    return now
