"""git-annex's chunking of special-remote objects, and the chunk log (pure).

A remote configured with ``chunk=SIZE`` stores a key's content in chunks named by chunk
keys (the key with ``-S<size>-C<n>``, n from 1; an empty object is one empty chunk),
each stored like a whole object. Only keys of stable backends are chunked (hash
backends and WORM; not URL, VURL or external backends' keys). When every chunk is
stored, ``<hashdir>/<key>.log.cnk`` on the git-annex branch records
``TIMESTAMP UUID:SIZE COUNT`` (a keyed log; count 0 once removed).

A reader tries, in git-annex's order, the chunk layouts the log records for the
remote, the unchunked key (first when the remote does not chunk) and, when the key has
a size, the layout the current chunk size would give (`layouts`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from annexproxy.branch.logs.keyed import KeyedLog, change_keyed_log
from annexproxy.branch.logs.timestamps import Timestamp
from annexproxy.errors import ConfigError
from annexproxy.keys import Key
from annexproxy.space.units import parse_size
from annexproxy.special.remote import SpecialRemote
from annexproxy.storage.hashing import UNVERIFIABLE_HASH_BACKENDS, VERIFIABLE_BACKENDS

CHUNK_LOG = ".log.cnk"
_STABLE_OTHERS = frozenset({"WORM", "GITBUNDLE", "GITMANIFEST"})
_HASH_BACKENDS = VERIFIABLE_BACKENDS | UNVERIFIABLE_HASH_BACKENDS


def chunk_size_of(remote: SpecialRemote) -> int | None:
    """The remote's ``chunk=`` size in bytes, or None when it does not chunk.

    Raises:
        ConfigError: the size does not parse, or legacy ``chunksize=`` is configured.
    """
    if remote.params.get("chunksize"):
        raise ConfigError(
            f"special remote {remote.name!r} uses legacy chunksize=, which annexproxy "
            "does not support; reconfigure it with chunk="
        )
    text = remote.params.get("chunk")
    if not text:
        return None
    size = parse_size(text)
    if size is None or size <= 0:
        raise ConfigError(f"special remote {remote.name!r}: bad chunk={text}")
    return size


def chunkable(key: Key) -> bool:
    """Whether git-annex would chunk ``key``: only keys of stable backends.

    Stable are the hash backends, WORM and git-remote-annex's keys; URL and VURL keys are
    not, nor are external backends' (``X...``: git-annex asks the backend program, which
    a gateway does not run) or unknown ones.
    """
    if key.variety in _STABLE_OTHERS:
        return True
    return key.variety.removesuffix("E") in _HASH_BACKENDS


def chunk_count(size: int, chunk_size: int) -> int:
    """How many chunks ``size`` bytes make (at least one)."""
    return max(1, -(-size // chunk_size))


def chunk_keys(key: Key, chunk_size: int, count: int) -> list[Key]:
    """The chunk keys of ``key`` in order."""
    return [replace(key, chunk_size=chunk_size, chunk_num=n) for n in range(1, count + 1)]


def recorded_chunks(content: bytes, uuid: str) -> list[tuple[int, int]]:
    """(chunk size, count) that the chunk log records for ``uuid``, count > 0 only."""
    found = []
    prefix = uuid.encode() + b":"
    for field, value in KeyedLog.parse(content).values().items():
        if not field.startswith(prefix):
            continue
        size, count = field[len(prefix) :], value.strip()
        if size.isdigit() and count.isdigit() and int(count) > 0:
            found.append((int(size), int(count)))
    return found


def record_chunks(content: bytes, uuid: str, chunk_size: int, count: int, now: Timestamp) -> bytes:
    """The chunk log after recording ``count`` chunks of ``chunk_size`` (0: removed)."""
    field = b"%s:%d" % (uuid.encode(), chunk_size)
    return change_keyed_log(content, field, b"%d" % count, now)


def layouts(
    key: Key, chunk_size: int | None, recorded: Sequence[tuple[int, int]]
) -> list[list[Key]]:
    """Where the content of ``key`` may be, as lists of stored names, in git-annex's order."""
    lists = [chunk_keys(key, size, count) for size, count in recorded]
    lists = [[key], *lists] if chunk_size is None else [*lists, [key]]
    if chunk_size is not None and key.size is not None:
        speculative = (chunk_size, chunk_count(key.size, chunk_size))
        if speculative not in recorded:
            lists.append(chunk_keys(key, *speculative))
    return lists


def locate(names: Sequence[Key], position: int) -> tuple[int, int]:
    """Where byte ``position`` of the content is in a layout: (index in ``names``, offset).

    An unchunked layout holds everything in its one object; chunk n (from 1) of a
    chunked one holds bytes ``[(n-1)*size, n*size)``. A position past the last chunk
    gives ``(len(names), 0)``: nothing is left to read.
    """
    first = names[0] if names else None
    if first is None or not first.is_chunk or not first.chunk_size:
        return 0, position
    index, offset = divmod(position, first.chunk_size)
    if index >= len(names):
        return len(names), 0
    return index, offset
