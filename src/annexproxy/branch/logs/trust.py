"""``trust.log``: trust levels (branch.md 5).

Family 4.2. Value: one character, ``1`` trusted, ``0`` untrusted, ``X`` dead, ``?``
semitrusted; any other text is semitrusted; an empty value (the legacy ``uuid``-only
line) is trusted; a UUID absent from the log is semitrusted (git-annex
``Logs/Trust/Pure.hs``). Pure.
"""

from __future__ import annotations

import enum

from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.branch.logs.uuidbased import UUIDLog

PATH = "trust.log"


class TrustLevel(enum.Enum):
    """A repository's trust level, by the word git-annex shows for it."""

    TRUSTED = "trusted"
    SEMITRUSTED = "semitrusted"
    UNTRUSTED = "untrusted"
    DEAD = "dead"


_LEVEL_BY_VALUE = {
    b"1": TrustLevel.TRUSTED,
    b"0": TrustLevel.UNTRUSTED,
    b"X": TrustLevel.DEAD,
    b"": TrustLevel.TRUSTED,
}
_VALUE_BY_LEVEL = {
    TrustLevel.TRUSTED: b"1",
    TrustLevel.UNTRUSTED: b"0",
    TrustLevel.DEAD: b"X",
    TrustLevel.SEMITRUSTED: b"?",
}


def decode_trust(value: bytes) -> TrustLevel:
    """The level a stored value means (unknown values are semitrusted)."""
    return _LEVEL_BY_VALUE.get(value, TrustLevel.SEMITRUSTED)


def parse_trust_log(content: bytes) -> dict[str, TrustLevel]:
    """Trust level in effect per UUID that has a line. Never raises."""
    return {
        uuid.decode("utf-8", "surrogateescape"): decode_trust(value)
        for uuid, value in UUIDLog.parse(content).values().items()
    }


def set_trust(content: bytes, uuid: str, level: TrustLevel, now: Timestamp) -> bytes:
    """New ``trust.log`` content after setting ``uuid``'s level.

    Raises:
        LogFormatError: ``uuid`` is not a usable UUID token.
    """
    key = uuid.encode("utf-8", "surrogateescape")
    return UUIDLog.parse(content).with_value(key, _VALUE_BY_LEVEL[level], now).format()
