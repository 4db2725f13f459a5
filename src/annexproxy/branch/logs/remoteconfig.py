"""``remote.log``: special remote configurations (branch.md 5).

Family 4.2. The value is space-separated ``key=value`` pairs, sorted by key; in keys and
values every whitespace character and ``&`` is written ``&<decimal code point>;``
(git-annex ``Logs/Remote/Pure.hs``, ``configEscape``). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.branch.logs.uuidbased import UUIDLog

PATH = "remote.log"

_ESCAPED = re.compile(r"&([0-9]{1,7});")


def _escape(text: str) -> str:
    return "".join(f"&{ord(c)};" if c == "&" or c.isspace() else c for c in text)


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = int(match.group(1))
        return chr(code) if code <= 0x10FFFF else match.group(0)

    return _ESCAPED.sub(one, text)


def decode_config(value: bytes) -> dict[str, str]:
    """The configuration of one ``remote.log`` value; words without ``=`` are skipped."""
    config: dict[str, str] = {}
    for word in value.decode("utf-8", "surrogateescape").split(" "):
        name, sep, setting = word.partition("=")
        if sep and name:
            config[_unescape(name)] = _unescape(setting)
    return config


def encode_config(config: Mapping[str, str]) -> bytes:
    """The ``remote.log`` value of a configuration: escaped pairs sorted by key."""
    words = (f"{_escape(name)}={_escape(config[name])}" for name in sorted(config))
    return " ".join(words).encode("utf-8", "surrogateescape")


def parse_remote_log(content: bytes) -> dict[str, dict[str, str]]:
    """Configuration in effect per special remote UUID. Never raises."""
    return {
        uuid.decode("utf-8", "surrogateescape"): decode_config(value)
        for uuid, value in UUIDLog.parse(content).values().items()
    }


def set_remote_config(
    content: bytes, uuid: str, config: Mapping[str, str], now: Timestamp
) -> bytes:
    """New ``remote.log`` content after configuring ``uuid``.

    Raises:
        LogFormatError: ``uuid`` is not a usable UUID token.
    """
    key = uuid.encode("utf-8", "surrogateescape")
    return UUIDLog.parse(content).with_value(key, encode_config(config), now).format()
