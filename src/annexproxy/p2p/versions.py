"""Protocol versions and the features each one brings (wire.md section 1).

Version-dependent behaviour anywhere in annexproxy asks these flags instead of comparing
numbers. Pure: no I/O.
"""

from __future__ import annotations

MAX_VERSION = 4


def negotiate(requested: int) -> int:
    """The version a server answers to ``VERSION requested``: min(requested, ours)."""
    return min(requested, MAX_VERSION)


def has_validity(version: int) -> bool:
    """v1+: every DATA carrying key content is followed by VALID or INVALID."""
    return version >= 1


def has_plus(version: int) -> bool:
    """v2+: BYPASS and the -PLUS replies that list other UUIDs."""
    return version >= 2


def has_timestamps(version: int) -> bool:
    """v3+: GETTIMESTAMP / TIMESTAMP and REMOVE-BEFORE."""
    return version >= 3


def has_data_present(version: int) -> bool:
    """v4: DATA-PRESENT instead of DATA after PUT-FROM."""
    return version >= 4
