"""``numcopies.log`` and ``mincopies.log`` (branch.md 4.4, 5). Pure."""

from __future__ import annotations

from annexproxy.branch.logs.singlevalue import SingleValueLog
from annexproxy.branch.logs.timestamps import Timestamp

NUMCOPIES_PATH = "numcopies.log"
MINCOPIES_PATH = "mincopies.log"


def parse_copies(content: bytes) -> int | None:
    """The number in effect, or None when the log has no valid line. Never raises."""
    return SingleValueLog.parse(content).value()


def set_copies(content: bytes, value: int, now: Timestamp) -> bytes:
    """New content after setting the number (one line, clock advanced past all lines)."""
    return SingleValueLog.parse(content).with_value(value, now).format()
