"""``config.log``: repository-wide git config settings (branch.md 5).

Family 4.3, field = config name, value = setting; an empty value means unset. Pure.
"""

from __future__ import annotations

from annexproxy.branch.logs.keyed import KeyedLog
from annexproxy.branch.logs.timestamps import Timestamp

PATH = "config.log"


def parse_config_log(content: bytes) -> dict[str, str]:
    """Settings in effect, unset (empty) ones left out. Never raises."""
    return {
        name.decode("utf-8", "surrogateescape"): value.decode("utf-8", "surrogateescape")
        for name, value in KeyedLog.parse(content).values().items()
        if value
    }


def set_config(content: bytes, name: str, value: str | None, now: Timestamp) -> bytes:
    """New content after setting (or, with None, unsetting) one config name.

    Raises:
        LogFormatError: a bad name, or a line break in the value.
    """
    field = name.encode("utf-8", "surrogateescape")
    raw = (value or "").encode("utf-8", "surrogateescape")
    return KeyedLog.parse(content).with_value(field, raw, now).format()
