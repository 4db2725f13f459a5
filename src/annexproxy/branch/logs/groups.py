"""``group.log``: the groups of each repository (branch.md 5).

Family 4.2. Value: group names separated by single spaces, sorted; empty means no
groups; readers tolerate extra spaces (example 08 case 7). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.branch.logs.uuidbased import UUIDLog
from annexproxy.errors import LogFormatError

PATH = "group.log"


def decode_groups(value: bytes) -> frozenset[str]:
    """The set of groups a stored value names."""
    return frozenset(w for w in value.decode("utf-8", "surrogateescape").split(" ") if w)


def encode_groups(groups: Iterable[str]) -> bytes:
    """The stored value of a set of groups: sorted, single spaces.

    Raises:
        LogFormatError: a group name is empty or holds whitespace.
    """
    names = sorted(set(groups))
    for name in names:
        if not name or any(c.isspace() for c in name):
            raise LogFormatError(f"a group name cannot be empty or hold spaces: {name!r}")
    return " ".join(names).encode("utf-8", "surrogateescape")


def parse_group_log(content: bytes) -> dict[str, frozenset[str]]:
    """Groups in effect per UUID that has a line. Never raises."""
    return {
        uuid.decode("utf-8", "surrogateescape"): decode_groups(value)
        for uuid, value in UUIDLog.parse(content).values().items()
    }


def set_groups(content: bytes, uuid: str, groups: Iterable[str], now: Timestamp) -> bytes:
    """New ``group.log`` content after setting ``uuid``'s groups.

    Raises:
        LogFormatError: a bad UUID token or group name.
    """
    key = uuid.encode("utf-8", "surrogateescape")
    return UUIDLog.parse(content).with_value(key, encode_groups(groups), now).format()
