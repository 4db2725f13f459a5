"""``uuid.log``: repository, special remote and cluster descriptions (branch.md 5).

Family 4.2 (`uuidbased`). A description is free text; an LF inside one is written as
the two characters backslash-n (git-annex ``Logs/UUID.hs``), so decoding turns backslash-n back
into LF. Pure.
"""

from __future__ import annotations

from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.branch.logs.uuidbased import UUIDLog

PATH = "uuid.log"


def encode_description(description: str) -> bytes:
    """The bytes git-annex stores for a description (LF becomes backslash-n)."""
    return description.replace("\r", "").replace("\n", "\\n").encode("utf-8", "surrogateescape")


def decode_description(value: bytes) -> str:
    """The description text of a stored value."""
    return value.decode("utf-8", "surrogateescape").replace("\\n", "\n")


def parse_descriptions(content: bytes) -> dict[str, str]:
    """Description in effect per UUID, in UUID order. Never raises."""
    return {
        uuid.decode("utf-8", "surrogateescape"): decode_description(value)
        for uuid, value in UUIDLog.parse(content).values().items()
    }


def set_description(content: bytes, uuid: str, description: str, now: Timestamp) -> bytes:
    """New ``uuid.log`` content after describing ``uuid`` (git-annex ``describeUUID``).

    Raises:
        LogFormatError: ``uuid`` is not a usable UUID token.
    """
    return (
        UUIDLog.parse(content)
        .with_value(uuid.encode("utf-8", "surrogateescape"), encode_description(description), now)
        .format()
    )
