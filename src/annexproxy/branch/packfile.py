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
import sys
import zlib
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import accumulate

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


class PackEncoder:
    """Encodes a version 2 pack of ``count`` objects, and then its version 2 index.

    Call `header`, then `add` (or `add_raw`) exactly ``count`` times, then `trailer`;
    append every returned chunk to the pack file, in order. `index` then gives the
    ``.idx`` file's content, and `checksum` the pack's name (``pack-<hex>.pack``).

    Objects must come in id order (the index lists them so, and ours are then read in
    one pass when packs are merged); an id out of order or repeated is refused. What
    the index needs is kept in flat arrays, 32 bytes an object.
    """

    def __init__(self, count: int) -> None:
        self._count = count
        self._digest = hashlib.sha1()
        self._offset = 0
        self._oids = bytearray()
        self._crcs = array("I")
        self._offsets = array("Q")
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
        if len(self._offsets) >= self._count:
            raise RepositoryError(f"pack declared {self._count} objects and got more")
        if self._oids and oid <= self._oids[-20:]:
            raise RepositoryError(f"object {oid.hex()} is out of id order or repeated in a pack")
        self._oids += oid
        self._crcs.append(crc)
        self._offsets.append(self._offset)
        return self._emit(entry)

    def trailer(self) -> bytes:
        """The pack's closing SHA-1 of everything before it."""
        if len(self._offsets) != self._count:
            raise RepositoryError(
                f"pack declared {self._count} objects and got {len(self._offsets)}"
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
        firsts = bytes(self._oids[0::20])
        fanout = array("I", accumulate(firsts.count(byte) for byte in range(256)))
        small = array("I", (o if o < _LARGE_OFFSET else 0 for o in self._offsets))
        large = array("Q")
        for number, offset in enumerate(self._offsets):
            if offset >= _LARGE_OFFSET:
                small[number] = _LARGE_OFFSET | len(large)
                large.append(offset)
        parts = [
            _IDX_SIGNATURE,
            struct.pack(">I", 2),
            _big_endian(fanout),
            bytes(self._oids),
            _big_endian(self._crcs),
            _big_endian(small),
            _big_endian(large),
            self.checksum,
        ]
        body = b"".join(parts)
        return body + hashlib.sha1(body).digest()


def _big_endian(values: array[int]) -> bytes:
    if sys.byteorder == "little":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


class PackIndex:
    """A version 2 pack index, read in place: ids, CRCs and offsets by position.

    Raises:
        RepositoryError: it is not a well-formed version 2 index.
    """

    def __init__(self, idx: bytes) -> None:
        if len(idx) < _IDX_HEADER + _FANOUT + 40 or idx[:4] != _IDX_SIGNATURE:
            raise RepositoryError("not a version 2 git pack index")
        if struct.unpack_from(">I", idx, 4)[0] != 2:
            raise RepositoryError("not a version 2 git pack index")
        self.count: int = struct.unpack_from(">I", idx, _IDX_HEADER + _FANOUT - 4)[0]
        self._ids_at = _IDX_HEADER + _FANOUT
        self._crcs_at = self._ids_at + 20 * self.count
        self._offsets_at = self._crcs_at + 4 * self.count
        self._large_at = self._offsets_at + 4 * self.count
        if len(idx) < self._large_at + 40:
            raise RepositoryError("truncated git pack index")
        self._idx = idx

    @property
    def pack_checksum(self) -> bytes:
        """The checksum of the pack this index is for (its name)."""
        return self._idx[-40:-20]

    def oid(self, number: int) -> bytes:
        """The id of the object at ``number`` (in id order)."""
        at = self._ids_at + 20 * number
        return self._idx[at : at + 20]

    def crc(self, number: int) -> int:
        """The CRC-32 of the object's entry."""
        return int(struct.unpack_from(">I", self._idx, self._crcs_at + 4 * number)[0])

    def offset(self, number: int) -> int:
        """Where the object's entry starts in the pack."""
        offset = int(struct.unpack_from(">I", self._idx, self._offsets_at + 4 * number)[0])
        if offset & _LARGE_OFFSET:
            at = self._large_at + 8 * (offset & ~_LARGE_OFFSET)
            if len(self._idx) < at + 8 + 40:
                raise RepositoryError("truncated git pack index")
            offset = int(struct.unpack_from(">Q", self._idx, at)[0])
        return offset

    def in_pack_order(self) -> bool:
        """Whether the entries lie in the pack in id order (as we write them)."""
        offsets = self._idx[self._offsets_at : self._large_at]
        if any(byte & 0x80 for byte in offsets[0::4]):
            return False  # 64-bit offsets: never ours
        values = array("I", offsets)
        if sys.byteorder == "little":
            values.byteswap()
        return all(values[n] < values[n + 1] for n in range(len(values) - 1))


def is_whole_object_entry(first_byte: int) -> bool:
    """Whether an entry whose header starts with ``first_byte`` is a whole object."""
    kind = (first_byte >> 4) & 7
    return kind != 0 and kind not in _DELTA_TYPES
