"""Git objects as bytes: tree and commit bodies, object ids, pack files and their indexes.

Owns the encodings the branch layer writes itself instead of asking libgit2 for loose
objects: a tree body (entries in git's order), a commit body, an object id, and a
version 2 pack (undeltified entries, each zlib-compressed) with its version 2 index.
A branch commit then lands as two files instead of one file per blob and tree.

Also reads what merging such packs needs: the ids and entry offsets of a pack index, and
whether a pack holds only whole (undeltified) objects.

Pure: no files. `PackEncoder` returns the bytes to append; the caller writes them.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from annexproxy.errors import RepositoryError

COMMIT = 1
TREE = 2
BLOB = 3
_TYPE_NAMES = {COMMIT: b"commit", TREE: b"tree", BLOB: b"blob", 4: b"tag"}
_DELTA_TYPES = frozenset({6, 7})  # OFS_DELTA, REF_DELTA

MODE_TREE = b"40000"
MODE_BLOB = b"100644"

_PACK_SIGNATURE = b"PACK"
_IDX_SIGNATURE = b"\377tOc"
_IDX_HEADER = 8
_FANOUT = 256 * 4
_LARGE_OFFSET = 0x80000000
# zlib level 1, as git uses for loose objects (core.looseCompression): the logs of a
# commit are a few hundred bytes each and gain little from more.
_ZLIB_LEVEL = 1

TreeEntries = dict[bytes, tuple[bytes, bytes]]
"""A tree's entries: name -> (mode, 20-byte object id)."""


def object_id(kind: int, body: bytes) -> bytes:
    """The 20-byte SHA-1 git names an object of type ``kind`` with ``body`` by."""
    digest = hashlib.sha1(b"%s %d\0" % (_TYPE_NAMES[kind], len(body)))
    digest.update(body)
    return digest.digest()


def parse_tree(body: bytes) -> TreeEntries:
    """The entries of a raw tree object.

    Raises:
        RepositoryError: the body is not a well-formed tree.
    """
    entries: TreeEntries = {}
    pos, end = 0, len(body)
    try:
        while pos < end:
            space = body.index(b" ", pos)
            nul = body.index(b"\0", space)
            oid = body[nul + 1 : nul + 21]
            if len(oid) != 20:
                raise ValueError("truncated object id")
            entries[body[space + 1 : nul]] = (body[pos:space], oid)
            pos = nul + 21
    except ValueError as exc:
        raise RepositoryError(f"malformed git tree object at byte {pos}: {exc}") from exc
    return entries


def _order(item: tuple[bytes, tuple[bytes, bytes]]) -> bytes:
    name, (mode, _) = item
    return name + b"/" if mode == MODE_TREE else name


def tree_body(entries: Mapping[bytes, tuple[bytes, bytes]]) -> bytes:
    """A tree object's body: entries sorted as git sorts them (a tree's name as ``name/``)."""
    return b"".join(
        b"%s %s\0%s" % (mode, name, oid)
        for name, (mode, oid) in sorted(entries.items(), key=_order)
    )


@dataclass(frozen=True, slots=True)
class Person:
    """An author or committer line's fields."""

    name: str
    email: str
    time: int  # seconds since the epoch
    offset: int  # minutes east of UTC

    def encode(self) -> bytes:
        """``Name <email> 1700000000 +0100`` as a commit records it."""
        sign = "-" if self.offset < 0 else "+"
        hours, minutes = divmod(abs(self.offset), 60)
        return f"{self.name} <{self.email}> {self.time} {sign}{hours:02d}{minutes:02d}".encode()


def commit_body(tree: bytes, parents: Iterable[bytes], person: Person, message: str) -> bytes:
    """A commit object's body (``tree``, ``parent`` lines, author = committer = ``person``)."""
    who = person.encode()
    lines = [b"tree " + tree.hex().encode()]
    lines.extend(b"parent " + parent.hex().encode() for parent in parents)
    lines.append(b"author " + who)
    lines.append(b"committer " + who)
    return b"\n".join(lines) + b"\n\n" + message.encode()


def _entry_header(kind: int, size: int) -> bytes:
    byte = (kind << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One object of a pack, as its index records it."""

    oid: bytes
    crc: int  # CRC-32 of the entry's bytes in the pack (header and compressed data)
    offset: int


class PackEncoder:
    """Encodes a version 2 pack of ``count`` objects, and then its version 2 index.

    Call `header`, then `add` (or `add_raw`) exactly ``count`` times, then `trailer`;
    append every returned chunk to the pack file, in order. `index` then gives the
    ``.idx`` file's content, and `checksum` the pack's name (``pack-<hex>.pack``).
    """

    def __init__(self, count: int) -> None:
        self._count = count
        self._digest = hashlib.sha1()
        self._offset = 0
        self._entries: list[IndexEntry] = []
        self._checksum: bytes | None = None

    def _emit(self, chunk: bytes) -> bytes:
        self._digest.update(chunk)
        self._offset += len(chunk)
        return chunk

    def header(self) -> bytes:
        """The 12-byte pack header."""
        return self._emit(_PACK_SIGNATURE + struct.pack(">II", 2, self._count))

    def add(self, kind: int, body: bytes, oid: bytes | None = None) -> bytes:
        """One whole object's entry (``oid`` when the caller has computed it already)."""
        entry = _entry_header(kind, len(body)) + zlib.compress(body, _ZLIB_LEVEL)
        return self.add_raw(oid or object_id(kind, body), entry, zlib.crc32(entry))

    def add_raw(self, oid: bytes, entry: bytes, crc: int) -> bytes:
        """An entry copied as it is from another pack (its CRC from that pack's index)."""
        if len(self._entries) >= self._count:
            raise RepositoryError(f"pack declared {self._count} objects and got more")
        self._entries.append(IndexEntry(oid, crc, self._offset))
        return self._emit(entry)

    def trailer(self) -> bytes:
        """The pack's closing SHA-1 of everything before it."""
        if len(self._entries) != self._count:
            raise RepositoryError(
                f"pack declared {self._count} objects and got {len(self._entries)}"
            )
        self._checksum = self._digest.digest()
        return self._checksum

    @property
    def checksum(self) -> bytes:
        """The pack's SHA-1 (after `trailer`)."""
        if self._checksum is None:
            raise RepositoryError("the pack has no trailer yet")
        return self._checksum

    def index(self) -> bytes:
        """The version 2 ``.idx`` for the pack (after `trailer`)."""
        entries = sorted(self._entries, key=lambda entry: entry.oid)
        fanout = [0] * 256
        for entry in entries:
            fanout[entry.oid[0]] += 1
        running = 0
        for byte in range(256):
            running += fanout[byte]
            fanout[byte] = running
        small: list[int] = []
        large: list[int] = []
        for entry in entries:
            if entry.offset < _LARGE_OFFSET:
                small.append(entry.offset)
            else:
                small.append(_LARGE_OFFSET | len(large))
                large.append(entry.offset)
        parts = [
            _IDX_SIGNATURE,
            struct.pack(">I", 2),
            struct.pack(">256I", *fanout),
            b"".join(entry.oid for entry in entries),
            struct.pack(f">{len(entries)}I", *(entry.crc for entry in entries)),
            struct.pack(f">{len(small)}I", *small),
            struct.pack(f">{len(large)}Q", *large),
            self.checksum,
        ]
        body = b"".join(parts)
        return body + hashlib.sha1(body).digest()


def read_index(idx: bytes) -> list[IndexEntry]:
    """The entries of a version 2 pack index, in id order.

    Raises:
        RepositoryError: it is not a well-formed version 2 index.
    """
    if len(idx) < _IDX_HEADER + _FANOUT + 40 or idx[:4] != _IDX_SIGNATURE:
        raise RepositoryError("not a version 2 git pack index")
    if struct.unpack_from(">I", idx, 4)[0] != 2:
        raise RepositoryError("not a version 2 git pack index")
    count = struct.unpack_from(">I", idx, _IDX_HEADER + _FANOUT - 4)[0]
    ids_at = _IDX_HEADER + _FANOUT
    crcs_at = ids_at + 20 * count
    offsets_at = crcs_at + 4 * count
    large_at = offsets_at + 4 * count
    if len(idx) < large_at + 40:
        raise RepositoryError("truncated git pack index")
    crcs = struct.unpack_from(f">{count}I", idx, crcs_at)
    offsets = struct.unpack_from(f">{count}I", idx, offsets_at)
    entries = []
    for number in range(count):
        offset = offsets[number]
        if offset & _LARGE_OFFSET:
            at = large_at + 8 * (offset & ~_LARGE_OFFSET)
            if len(idx) < at + 8 + 40:
                raise RepositoryError("truncated git pack index")
            offset = struct.unpack_from(">Q", idx, at)[0]
        oid = idx[ids_at + 20 * number : ids_at + 20 * (number + 1)]
        entries.append(IndexEntry(oid, crcs[number], offset))
    return entries


def index_checksum(idx: bytes) -> bytes:
    """The pack checksum a version 2 index records (the pack's name)."""
    return idx[-40:-20]


def entry_spans(entries: Iterable[IndexEntry], pack_size: int) -> list[tuple[IndexEntry, int]]:
    """Each entry with the end of its bytes in the pack (the next entry or the trailer)."""
    by_offset = sorted(entries, key=lambda entry: entry.offset)
    ends = [entry.offset for entry in by_offset[1:]] + [pack_size - 20]
    return list(zip(by_offset, ends, strict=True))


def is_whole_object_entry(first_byte: int) -> bool:
    """Whether an entry whose header starts with ``first_byte`` is a whole object."""
    return (first_byte >> 4) & 7 not in _DELTA_TYPES and (first_byte >> 4) & 7 != 0
