"""``maxsize.log``: the advisory maximum size of each repository (branch.md 5, maxsize.md).

Family 4.3, field = UUID, value = decimal bytes (``0`` = zero capacity). A line whose
value is not a decimal number is skipped, as git-annex's parser skips it. Pure.
"""

from __future__ import annotations

import re

from annexproxy.branch.logs.keyed import KeyedLog
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.errors import LogFormatError

PATH = "maxsize.log"

_DECIMAL = re.compile(rb"[0-9]{1,30}")


def _valid(value: bytes) -> bool:
    return _DECIMAL.fullmatch(value) is not None


def parse_maxsize_log(content: bytes) -> dict[str, int]:
    """Maximum size in effect per UUID. Never raises."""
    log = KeyedLog.parse(content, valid=_valid)
    return {u.decode("utf-8", "surrogateescape"): int(v) for u, v in log.values().items()}


def set_maxsize(content: bytes, uuid: str, size: int, now: Timestamp) -> bytes:
    """New content after setting ``uuid``'s maximum size in bytes.

    Raises:
        LogFormatError: a negative size or a bad UUID token.
    """
    if size < 0:
        raise LogFormatError(f"a maximum size cannot be negative: {size}")
    field = uuid.encode("utf-8", "surrogateescape")
    log = KeyedLog.parse(content, valid=_valid)
    return log.with_value(field, b"%d" % size, now).format()
