"""UUID-based logs, old layout (timestamp last): parse, resolve, rewrite (branch.md 4.2).

Owns the generic grammar shared by ``uuid.log``, ``remote.log``, ``trust.log``,
``group.log``, ``preferred-content.log``, ``required-content.log`` and the other logs of
branch.md 4.2, their tie rule and git-annex's whole-file rewrite. Values stay raw bytes
here; the per-log modules decode them. Pure: no clock, no file, no git.

Grammar (git-annex ``Logs/UUIDBased.hs`` ``parseLogOld``)::

    line := uuid SP value SP "timestamp=" timestamp
          | uuid SP value            ; no clock: "Unknown", older than any timestamp
          | uuid                     ; oldest trust.log form, empty value

``uuid`` is the bytes up to the first space. The rest is split on single spaces; when
the last token is ``timestamp=<timestamp>`` it is the clock and the other tokens,
re-joined with single spaces, are the value (so runs of spaces survive, and an empty
value is written with two spaces before ``timestamp=``).

Resolution: per UUID the greatest clock wins; on a tie the *later* line wins.
Writing: one line per UUID, in UUID byte order. Lines that do not parse (or that the
caller's ``valid`` predicate rejects, as git-annex's value parser would) take no part
in resolution; they are kept verbatim after the known lines when the file is
rewritten, so a newer git-annex's line forms are never destroyed by us.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from annexproxy.branch.logs.presence import split_lines
from annexproxy.branch.logs.timestamps import Timestamp, next_timestamp
from annexproxy.errors import LogFormatError

_CLOCK_PREFIX = b"timestamp="

ValuePredicate = Callable[[bytes], bool]


@dataclass(frozen=True, slots=True, kw_only=True)
class UUIDLogLine:
    """One line of an old-layout UUID log; ``timestamp`` None means "Unknown"."""

    uuid: bytes
    value: bytes
    timestamp: Timestamp | None

    @classmethod
    def parse(cls, line: bytes) -> UUIDLogLine:
        """Parse one line (without its line break); see the module grammar.

        Raises:
            LogFormatError: the line has no UUID (it is empty or starts with a space).
        """
        uuid, _, rest = line.partition(b" ")
        if not uuid:
            raise LogFormatError(f"UUID log line without a UUID: {line!r}")
        tokens = rest.split(b" ")
        last = tokens[-1]
        if last.startswith(_CLOCK_PREFIX):
            try:
                clock = Timestamp.parse(last[len(_CLOCK_PREFIX) :])
            except LogFormatError:
                return cls(uuid=uuid, value=rest, timestamp=None)
            return cls(uuid=uuid, value=b" ".join(tokens[:-1]), timestamp=clock)
        return cls(uuid=uuid, value=rest, timestamp=None)

    def format(self) -> bytes:
        """The line as git-annex writes it (``buildLogOld``), without the final LF."""
        if self.timestamp is None:
            return self.uuid + b" " + self.value
        return b"%s %s timestamp=%s" % (self.uuid, self.value, self.timestamp.to_bytes())


def _newer_or_tied(line: UUIDLogLine, held: UUIDLogLine) -> bool:
    if line.timestamp is None:
        return held.timestamp is None
    return held.timestamp is None or line.timestamp >= held.timestamp


@dataclass(frozen=True, slots=True, kw_only=True)
class UUIDLog:
    """A parsed old-layout UUID log: known lines in file order, plus unknown lines."""

    lines: tuple[UUIDLogLine, ...] = ()
    unknown: tuple[bytes, ...] = ()

    @classmethod
    def parse(cls, content: bytes, *, valid: ValuePredicate | None = None) -> UUIDLog:
        """Parse a whole file. Never raises: bad lines become `unknown`.

        Args:
            content: the file's bytes (any CR/LF run ends a line).
            valid: the per-log value check; a line whose value fails it is unknown.
        """
        known: list[UUIDLogLine] = []
        unknown: list[bytes] = []
        for raw in split_lines(content):
            try:
                line = UUIDLogLine.parse(raw)
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

    def resolve(self) -> dict[bytes, UUIDLogLine]:
        """The line in effect per UUID (later line wins a tie), in UUID byte order."""
        best: dict[bytes, UUIDLogLine] = {}
        for line in self.lines:
            held = best.get(line.uuid)
            if held is None or _newer_or_tied(line, held):
                best[line.uuid] = line
        return {uuid: best[uuid] for uuid in sorted(best)}

    def values(self) -> dict[bytes, bytes]:
        """The value in effect per UUID, in UUID byte order."""
        return {uuid: line.value for uuid, line in self.resolve().items()}

    def latest(self, uuid: bytes) -> Timestamp | None:
        """The largest timestamp of any line for ``uuid`` (for the advance rule)."""
        clocks = [ln.timestamp for ln in self.lines if ln.uuid == uuid and ln.timestamp]
        return max(clocks, default=None)

    def with_value(self, uuid: bytes, value: bytes, now: Timestamp) -> UUIDLog:
        """The log git-annex writes after setting ``uuid`` to ``value`` (``changeLog``).

        Compacted to one line per UUID in byte order; the new line's clock follows the
        advance rule against the largest clock already recorded for that UUID.

        Raises:
            LogFormatError: ``uuid`` is empty or holds a space or line break, or
                ``value`` holds a line break.
        """
        check_token(uuid, "UUID")
        check_value(value)
        resolved = self.resolve()
        resolved[uuid] = UUIDLogLine(
            uuid=uuid, value=value, timestamp=next_timestamp(now, self.latest(uuid))
        )
        return UUIDLog(lines=tuple(resolved[key] for key in sorted(resolved)), unknown=self.unknown)


def check_token(token: bytes, what: str) -> None:
    """Refuse a UUID or field that could not survive a round trip.

    Raises:
        LogFormatError: the token is empty or holds a space or line break.
    """
    if not token or any(c in token for c in b" \r\n"):
        raise LogFormatError(f"a log {what} must be non-empty, without spaces: {token!r}")


def check_value(value: bytes) -> None:
    """Refuse a value holding a line break.

    Raises:
        LogFormatError: the value holds CR or LF.
    """
    if b"\n" in value or b"\r" in value:
        raise LogFormatError(f"a log value cannot hold a line break: {value!r}")


def change_uuid_log(
    content: bytes,
    uuid: bytes,
    value: bytes,
    now: Timestamp,
    *,
    valid: ValuePredicate | None = None,
) -> bytes:
    """Set one UUID's value in an old-layout log; return the whole new content.

    Raises:
        LogFormatError: as for `UUIDLog.with_value`.
    """
    return UUIDLog.parse(content, valid=valid).with_value(uuid, value, now).format()
