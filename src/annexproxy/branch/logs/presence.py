"""Presence logs (location logs, url logs, equivalent-key logs): lines, resolution, rewrite.

Owns the presence-log line grammar, the generic line-splitting rule for branch files,
resolution of duplicate lines and the exact rewrite git-annex makes when it records a
change (branch.md sections 2, 4.1 and 4.5). Pure: bytes in, bytes out; it never reads
a clock, a file or git. The journal (``branch/journal.py``) feeds it content under the
journal lock.

Resolution mirrors git-annex ``Logs/Presence/Pure.hs``: per info the line with the
greatest timestamp wins and, among lines tied for it, the one appearing *first* in the
file. A rewrite is compacted (one line per info) and ordered by info bytes, and nothing
is written when the surviving line already has the wanted status.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from annexproxy.branch.logs.timestamps import PICOS_PER_SECOND, Timestamp, next_timestamp
from annexproxy.errors import LogFormatError

# Any run of CR and/or LF ends a line; empty lines are ignored (branch.md section 2).
_LINE_BREAKS = re.compile(rb"[\r\n]+")


class PresenceStatus(enum.Enum):
    """The status field of a presence-log line."""

    PRESENT = "1"
    MISSING = "0"
    DEAD = "X"  # not present and never to be again


_STATUS_BY_BYTE = {ord(status.value): status for status in PresenceStatus}
_PRESENT = ord(PresenceStatus.PRESENT.value)
_SPACE = ord(" ")
_S = ord("s")
_FAST_CLOCK = 19  # "NNN...s" short enough for the whole-seconds fast path


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceLine:
    """One line of a presence log: ``timestamp SP status SP info``."""

    timestamp: Timestamp
    status: PresenceStatus
    info: bytes  # a UUID for location logs, a URL for .log.web, a key for .log.ek

    @classmethod
    def parse(cls, line: bytes) -> PresenceLine:
        """Parse one line (without its line break).

        Grammar (branch.md 4.1): ``line := timestamp SP status SP info`` with
        ``status := "1" | "0" | "X"`` and ``info`` the verbatim rest of the line
        (possibly empty, possibly holding spaces).

        Raises:
            LogFormatError: the line does not match the grammar.
        """
        clock, space, rest = line.partition(b" ")
        if not space or len(rest) < 2 or rest[1:2] != b" ":
            raise LogFormatError(f"not a presence-log line: {line!r}")
        status = _STATUS_BY_BYTE.get(rest[0])
        if status is None:
            raise LogFormatError(f"unknown presence status {rest[:1]!r} in {line!r}")
        return cls(timestamp=Timestamp.parse(clock), status=status, info=rest[2:])

    def format(self) -> bytes:
        """Format the line as git-annex writes it, without the final LF."""
        return b"%s %s %s" % (self.timestamp.to_bytes(), self.status.value.encode(), self.info)


def split_lines(content: bytes) -> list[bytes]:
    """Split branch-file content into non-empty lines on any run of CR/LF.

    A final line without a line break is kept: git-annex parses it in branch blobs.
    (An interrupted *journal append* is discarded by the journal reader instead.)
    """
    return [line for line in _LINE_BREAKS.split(content) if line]


def parse_presence_log(content: bytes) -> list[PresenceLine]:
    """Parse a presence log, skipping lines that do not parse (branch.md section 2).

    Never raises: any bytes give a (possibly empty) list of lines, in file order.
    """
    lines = []
    for raw in split_lines(content):
        try:
            lines.append(PresenceLine.parse(raw))
        except LogFormatError:
            continue  # newer git-annex versions may add line forms: skip, never fail
    return lines


def format_presence_log(lines: Iterable[PresenceLine]) -> bytes:
    """Serialise lines in the given order, each followed by LF."""
    return b"".join(line.format() + b"\n" for line in lines)


def resolve(lines: Iterable[PresenceLine]) -> dict[bytes, PresenceLine]:
    """Keep, per info, the line that is in effect (branch.md 4.1).

    The greatest timestamp wins; among lines tied for it the first in file order wins
    (git-annex ``logMap``, a right fold that lets an earlier line replace a later one
    when its timestamp is not smaller).

    Returns:
        The surviving line per info, ordered by info bytes.
    """
    best: dict[bytes, PresenceLine] = {}
    for line in lines:
        held = best.get(line.info)
        if held is None or line.timestamp > held.timestamp:
            best[line.info] = line
    return {info: best[info] for info in sorted(best)}


def compact(lines: Iterable[PresenceLine]) -> list[PresenceLine]:
    """The compacted form git-annex writes: one line per info, in info byte order."""
    return list(resolve(lines).values())


def present_infos(content: bytes) -> list[bytes]:
    """The infos (UUIDs, URLs, ...) whose surviving line says present, in byte order.

    The same answer as resolving `parse_presence_log` (a property test holds them
    equal), computed without building a `PresenceLine` per line: this runs once per
    key whose location is asked.
    """
    best: dict[bytes, tuple[int, int]] = {}
    for raw in split_lines(content):
        clock, space, rest = raw.partition(b" ")
        if not space or len(rest) < 2 or rest[1] != _SPACE or rest[0] not in _STATUS_BY_BYTE:
            continue
        if 1 < len(clock) <= _FAST_CLOCK and clock[-1] == _S and clock[:-1].isdigit():
            picos = int(clock[:-1]) * PICOS_PER_SECOND
        else:
            try:
                picos = Timestamp.parse(clock).picoseconds
            except LogFormatError:
                continue
        info = rest[2:]
        held = best.get(info)
        if held is None or picos > held[0]:
            best[info] = (picos, rest[0])
    return sorted(info for info, (_, status) in best.items() if status == _PRESENT)


def change_presence(
    content: bytes, info: bytes | str, status: PresenceStatus, now: Timestamp
) -> bytes | None:
    """Record a status for one info the way git-annex does (``maybeAddLog``).

    The new line's timestamp follows the advance rule against the largest timestamp of
    any line for the same info (branch.md section 3).

    Args:
        content: the current content of the log (journal file, else branch blob).
        info: the info to change; ``str`` is encoded as UTF-8.
        status: the status to record.
        now: the writer's clock.

    Returns:
        The whole new, compacted and sorted content, or None when the line in effect
        for ``info`` already has ``status`` (git-annex then keeps the old timestamp and
        writes nothing).

    Raises:
        LogFormatError: ``info`` holds a CR or LF, which no log line may contain.
    """
    raw_info = info.encode("utf-8", "surrogateescape") if isinstance(info, str) else info
    if b"\n" in raw_info or b"\r" in raw_info:
        raise LogFormatError(f"a presence-log info cannot hold a line break: {raw_info!r}")
    old = parse_presence_log(content)
    current = resolve(old)
    held = current.get(raw_info)
    if held is not None and held.status is status:
        return None
    prev = max((line.timestamp for line in old if line.info == raw_info), default=None)
    current[raw_info] = PresenceLine(
        timestamp=next_timestamp(now, prev), status=status, info=raw_info
    )
    return format_presence_log(current[key] for key in sorted(current))
