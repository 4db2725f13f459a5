"""Keyed logs, new layout (timestamp first): parse, resolve, rewrite (branch.md 4.3).

Owns the generic grammar of ``proxy.log``, ``cluster.log``, ``maxsize.log``,
``export.log``, ``group-preferred-content.log`` and ``config.log`` (git-annex
``Logs/MapLog.hs``)::

    line  := timestamp SP field SP value
    field := bytes up to the next space
    value := rest of the line, possibly empty (the line then ends "field ")

A line ``timestamp SP field`` without the second space is read as an empty value.
Resolution: per field the greatest clock wins; on a tie the *later* line wins.
Writing: one line per field, in field byte order, the new line's clock advanced past
every clock recorded for that field. Lines that do not parse (or whose value the
caller's ``valid`` rejects) take no part and are kept verbatim after the known lines.
Pure: no clock, no file, no git.
"""

from __future__ import annotations

from dataclasses import dataclass

from annexproxy.branch.logs.presence import split_lines
from annexproxy.branch.logs.timestamps import Timestamp, next_timestamp
from annexproxy.branch.logs.uuidbased import ValuePredicate, check_token, check_value
from annexproxy.errors import LogFormatError


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyedLine:
    """One line of a new-layout keyed log."""

    timestamp: Timestamp
    field: bytes
    value: bytes

    @classmethod
    def parse(cls, line: bytes) -> KeyedLine:
        """Parse one line (without its line break); see the module grammar.

        Raises:
            LogFormatError: no valid timestamp, or no field.
        """
        clock, space, rest = line.partition(b" ")
        if not space:
            raise LogFormatError(f"keyed log line without a field: {line!r}")
        field, _, value = rest.partition(b" ")
        if not field:
            raise LogFormatError(f"keyed log line with an empty field: {line!r}")
        return cls(timestamp=Timestamp.parse(clock), field=field, value=value)

    def format(self) -> bytes:
        """The line as git-annex writes it, without the final LF."""
        return b"%s %s %s" % (self.timestamp.to_bytes(), self.field, self.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyedLog:
    """A parsed keyed log: known lines in file order, plus unknown lines."""

    lines: tuple[KeyedLine, ...] = ()
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def parse(cls, content: bytes, *, valid: ValuePredicate | None = None) -> KeyedLog:
        """Parse a whole file. Never raises: bad lines become `unknown`."""
        known: list[KeyedLine] = []
        unknown: list[bytes] = []
        for raw in split_lines(content):
            try:
                line = KeyedLine.parse(raw)
            except LogFormatError:
                unknown.append(raw)
                continue
            if valid is not None and not valid(line.value):
                unknown.append(raw)
            else:
                known.append(line)
        return cls(lines=tuple(known), unknown=tuple(unknown))

    def format(self) -> bytes:
        """Serialise known lines in their order, then unknown lines, each with LF."""
        return b"".join(line.format() + b"\n" for line in self.lines) + b"".join(
            raw + b"\n" for raw in self.unknown
        )

    def resolve(self) -> dict[bytes, KeyedLine]:
        """The line in effect per field (later line wins a tie), in field byte order."""
        best: dict[bytes, KeyedLine] = {}
        for line in self.lines:
            held = best.get(line.field)
            if held is None or line.timestamp >= held.timestamp:
                best[line.field] = line
        return {field: best[field] for field in sorted(best)}

    def values(self) -> dict[bytes, bytes]:
        """The value in effect per field, in field byte order."""
        return {field: line.value for field, line in self.resolve().items()}

    def latest(self, field: bytes) -> Timestamp | None:
        """The largest clock of any line for ``field`` (for the advance rule)."""
        return max((ln.timestamp for ln in self.lines if ln.field == field), default=None)

    def with_value(self, field: bytes, value: bytes, now: Timestamp) -> KeyedLog:
        """The log git-annex writes after setting ``field`` to ``value``.

        Raises:
            LogFormatError: ``field`` is empty or holds a space or line break, or
                ``value`` holds a line break.
        """
        check_token(field, "field")
        check_value(value)
        resolved = self.resolve()
        resolved[field] = KeyedLine(
            timestamp=next_timestamp(now, self.latest(field)), field=field, value=value
        )
        return KeyedLog(
            lines=tuple(resolved[key] for key in sorted(resolved)), unknown=self.unknown
        )


def change_keyed_log(
    content: bytes,
    field: bytes,
    value: bytes,
    now: Timestamp,
    *,
    valid: ValuePredicate | None = None,
) -> bytes:
    """Set one field in a keyed log; return the whole new content.

    Raises:
        LogFormatError: as for `KeyedLog.with_value`.
    """
    return KeyedLog.parse(content, valid=valid).with_value(field, value, now).format()
