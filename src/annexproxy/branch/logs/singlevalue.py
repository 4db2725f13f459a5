"""Single-value logs (``numcopies.log``, ``mincopies.log``): parse, resolve, write.

Owns branch.md 4.4 (git-annex ``Logs/SingleValue.hs``)::

    line := timestamp SP value        ; value: a decimal integer here

Resolution: the greatest clock wins; on a tie the greatest *value* (compared as an
integer, example 08 case 4). Writing replaces the file with one line whose clock is
advanced past every existing line. Lines that do not parse are skipped when reading
and kept verbatim after the new line when writing. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from annexproxy.branch.logs.presence import split_lines
from annexproxy.branch.logs.timestamps import Timestamp, next_timestamp
from annexproxy.errors import LogFormatError

# git-annex reads these values with Haskell ``reads``: optional minus, digits.
_INTEGER = re.compile(rb"-?[0-9]{1,30}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SingleValueLine:
    """One line of a single-value log."""

    timestamp: Timestamp
    value: int

    @classmethod
    def parse(cls, line: bytes) -> SingleValueLine:
        """Parse ``timestamp SP integer``.

        Raises:
            LogFormatError: the line does not match.
        """
        clock, space, value = line.partition(b" ")
        if not space or _INTEGER.fullmatch(value) is None:
            raise LogFormatError(f"not a single-value log line: {line!r}")
        return cls(timestamp=Timestamp.parse(clock), value=int(value))

    def format(self) -> bytes:
        """The line as git-annex writes it, without the final LF."""
        return b"%s %d" % (self.timestamp.to_bytes(), self.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class SingleValueLog:
    """A parsed single-value log."""

    lines: tuple[SingleValueLine, ...] = ()
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def parse(cls, content: bytes) -> SingleValueLog:
        """Parse a whole file. Never raises: bad lines become `unknown`."""
        known: list[SingleValueLine] = []
        unknown: list[bytes] = []
        for raw in split_lines(content):
            try:
                known.append(SingleValueLine.parse(raw))
            except LogFormatError:
                unknown.append(raw)
        return cls(lines=tuple(known), unknown=tuple(unknown))

    def format(self) -> bytes:
        """Serialise known lines, then unknown lines, each with LF."""
        return b"".join(line.format() + b"\n" for line in self.lines) + b"".join(
            raw + b"\n" for raw in self.unknown
        )

    def value(self) -> int | None:
        """The value in effect (greatest clock, then greatest value), or None."""
        if not self.lines:
            return None
        return max(self.lines, key=lambda line: (line.timestamp, line.value)).value

    def with_value(self, value: int, now: Timestamp) -> SingleValueLog:
        """The log git-annex writes when setting the value at ``now``."""
        prev = max((line.timestamp for line in self.lines), default=None)
        line = SingleValueLine(timestamp=next_timestamp(now, prev), value=value)
        return SingleValueLog(lines=(line,), unknown=self.unknown)


def change_single_value(content: bytes, value: int, now: Timestamp) -> bytes:
    """Set the value of a single-value log; return the whole new content."""
    return SingleValueLog.parse(content).with_value(value, now).format()
