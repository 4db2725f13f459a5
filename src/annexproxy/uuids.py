"""Repository UUIDs: the value type and the cluster-UUID shape rule.

A UUID is opaque on the wire (any non-empty token without whitespace is accepted,
wire.md section 1). A cluster UUID has ``ac`` at positions 0-1 and ``8`` at position 14
(branch.md section 7.5). Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import NewType

from annexproxy.errors import AnnexProxyError

RepoUUID = NewType("RepoUUID", str)

WEB_UUID = RepoUUID("00000000-0000-0000-0000-000000000001")
BITTORRENT_UUID = RepoUUID("00000000-0000-0000-0000-000000000002")


class UUIDFormatError(AnnexProxyError):
    """A string cannot be used as a repository UUID."""


# Whitespace (as str.isspace), control characters and DEL.
_UNSAFE_UUID_CHAR = re.compile(r"[\x00-\x1f\x7f\s]")


def parse_uuid(text: str) -> RepoUUID:
    """Accept a UUID token as git-annex does: any non-empty string without whitespace.

    Raises:
        UUIDFormatError: the token is empty or holds whitespace or control characters.
    """
    if not text or _UNSAFE_UUID_CHAR.search(text):
        raise UUIDFormatError(f"not a repository UUID: {text!r}")
    return RepoUUID(text)


def is_cluster_uuid(uuid: str) -> bool:
    """Tell whether a UUID has the shape git-annex reserves for clusters."""
    return len(uuid) >= 15 and uuid.startswith("ac") and uuid[14] == "8"
