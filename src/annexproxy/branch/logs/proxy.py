"""``proxy.log``: which repositories each proxy serves, and under which names (branch.md 5).

Family 4.3, field = UUID of the proxying repository, value = space-separated
``UUID:remotename`` entries sorted by UUID then name, possibly empty (git-annex
``Logs/Proxy.hs``). An entry whose name is not a legal git remote name is ignored by
readers (clusters.md 4). A value with a word that is not ``UUID:name`` makes the line
unknown, as git-annex's parser rejects it. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from annexproxy.branch.logs.keyed import KeyedLog
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.errors import LogFormatError

PATH = "proxy.log"

# Characters git-annex keeps in a remote name (``makeLegalName``); no leading "." or "-".
_LEGAL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def is_legal_remote_name(name: str) -> bool:
    """Whether git-annex accepts ``name`` as a git remote name unchanged."""
    return _LEGAL_NAME.fullmatch(name) is not None


@dataclass(frozen=True, slots=True, order=True)
class ProxyEntry:
    """One proxied repository: its UUID and the proxy's remote name for it."""

    uuid: str
    name: str

    @classmethod
    def parse(cls, word: bytes) -> ProxyEntry:
        """Parse ``UUID:name``.

        Raises:
            LogFormatError: no ``:``, or an empty UUID or name.
        """
        uuid, sep, name = word.partition(b":")
        if not sep or not uuid or not name:
            raise LogFormatError(f"not a proxy.log entry: {word!r}")
        return cls(uuid.decode("utf-8", "surrogateescape"), name.decode("utf-8", "surrogateescape"))

    def format(self) -> bytes:
        """``UUID:name`` as stored."""
        return f"{self.uuid}:{self.name}".encode("utf-8", "surrogateescape")


def decode_entries(value: bytes) -> frozenset[ProxyEntry]:
    """The entries of one value.

    Raises:
        LogFormatError: a word is not an entry.
    """
    return frozenset(ProxyEntry.parse(word) for word in value.split(b" ") if word)


def encode_entries(entries: Iterable[ProxyEntry]) -> bytes:
    """The stored value: entries sorted by UUID then name, single spaces.

    Raises:
        LogFormatError: an entry has an empty part or holds a space or ``:`` in its UUID.
    """
    out = []
    for entry in sorted(set(entries)):
        if not entry.uuid or not entry.name or any(c in entry.uuid for c in " :\n\r"):
            raise LogFormatError(f"cannot store proxy entry {entry!r}")
        if any(c in entry.name for c in " \n\r"):
            raise LogFormatError(f"cannot store proxy entry {entry!r}")
        out.append(entry.format())
    return b" ".join(out)


def _valid(value: bytes) -> bool:
    try:
        decode_entries(value)
    except LogFormatError:
        return False
    return True


def parse_proxy_log(content: bytes) -> dict[str, frozenset[ProxyEntry]]:
    """Entries in effect per proxy UUID, illegal names left out. Never raises."""
    result = {}
    for proxy, value in KeyedLog.parse(content, valid=_valid).values().items():
        entries = decode_entries(value)
        result[proxy.decode("utf-8", "surrogateescape")] = frozenset(
            e for e in entries if is_legal_remote_name(e.name)
        )
    return result


def set_proxies(content: bytes, proxy: str, entries: Iterable[ProxyEntry], now: Timestamp) -> bytes:
    """New ``proxy.log`` content after recording ``proxy``'s entries.

    Raises:
        LogFormatError: a bad UUID token or entry.
    """
    field = proxy.encode("utf-8", "surrogateescape")
    log = KeyedLog.parse(content, valid=_valid)
    return log.with_value(field, encode_entries(entries), now).format()
