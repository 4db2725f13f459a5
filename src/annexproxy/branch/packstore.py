"""Pack files in a repository's ``objects/pack``: one per branch commit, merged as they add up.

Owns the files: a commit's new objects are written as one pack and its index (two
files, instead of a loose object file per blob and tree), made durable before they are
named; and small packs of ours (whole objects laid out in id order) are merged
geometrically, as ``git repack --geometric=2`` does, so their number stays logarithmic
in the objects written. A merge copies entries as they are (no decompression), writes
the merged pack before it removes any merged one, and leaves alone what it must not
touch: packs with a ``.keep``, ``.promisor``, ``.bitmap``, ``.rev`` or ``.mtimes``
beside them, packs not laid out as ours (git's own, with deltas), big packs, and every
pack while a ``multi-pack-index`` exists.

Encodings are in `annexproxy.branch.packfile`; this module only does the I/O.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from annexproxy.branch.packfile import (
    PackEncoder,
    PackIndex,
    is_whole_object_entry,
)
from annexproxy.durable import fsync_dir
from annexproxy.errors import RepositoryError

#: Packs with more objects than this are never merged by us (``git gc`` may).
MERGE_MAX_OBJECTS = 50_000
#: Each pack of the kept progression has at least this many times the objects of the
#: packs below it together (git repack --geometric=2).
GEOMETRIC_FACTOR = 2
_READ_PIECE = 256 << 10
_SIDE_FILES = (".keep", ".promisor", ".bitmap", ".rev", ".mtimes")


@dataclass(frozen=True, slots=True)
class _Pack:
    name: str  # pack-<hex>
    objects: int


class PackStore:
    """The ``objects/pack`` directory of one repository, as the branch layer writes it.

    Args:
        pack_dir: ``<gitdir>/objects/pack``.
        extra_mode: permission bits to add to git's 0444 (core.sharedRepository).
    """

    def __init__(self, pack_dir: Path, extra_mode: int = 0) -> None:
        self._dir = pack_dir
        self._extra_mode = extra_mode
        self._whole: dict[str, bool] = {}  # pack name -> is one of ours

    def write(self, objects: Mapping[bytes, tuple[int, bytes]]) -> str:
        """Write ``objects`` (id -> (type, body)) as one pack; return its name.

        Raises:
            RepositoryError: the files could not be written.
        """
        encoder = PackEncoder(len(objects))
        with self._errors("write a pack"):
            self._dir.mkdir(parents=True, exist_ok=True)
            entries = (encoder.add(*objects[oid], oid) for oid in sorted(objects))
            return self._write_pack(encoder, entries)

    def merge_small(self) -> str | None:
        """Merge our small packs when they break the geometric progression.

        Returns:
            The merged pack's name, or None when nothing needed merging.

        Raises:
            RepositoryError: a file could not be read or written (nothing was removed).
        """
        with self._errors("merge packs"):
            if (self._dir / "multi-pack-index").exists():
                return None
            chosen = _geometric_prefix(self._mergeable())
            if len(chosen) < 2:
                return None
            merged = self._merge(chosen)
            for pack in chosen:
                if pack.name == merged:
                    continue
                for suffix in (".idx", ".pack"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._dir / (pack.name + suffix))
                self._whole.pop(pack.name, None)
            return merged

    # --- internals ---------------------------------------------------------------------

    def _mergeable(self) -> list[_Pack]:
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            return []
        present = set(names)
        packs = []
        for file in names:
            if not (file.startswith("pack-") and file.endswith(".idx")):
                continue
            name = file.removesuffix(".idx")
            if name + ".pack" not in present or any(name + s in present for s in _SIDE_FILES):
                continue
            try:
                with open(self._dir / file, "rb") as handle:
                    handle.seek(8 + 255 * 4)
                    count = int.from_bytes(handle.read(4), "big")
            except FileNotFoundError:
                continue
            if count <= MERGE_MAX_OBJECTS and self._is_ours(name):
                packs.append(_Pack(name, count))
        return packs

    def _is_ours(self, name: str) -> bool:
        """Whether a pack is one we write: whole objects, laid out in id order."""
        known = self._whole.get(name)
        if known is None:
            try:
                index = PackIndex((self._dir / (name + ".idx")).read_bytes())
                with open(self._dir / (name + ".pack"), "rb", buffering=0) as handle:
                    known = index.in_pack_order() and all(
                        is_whole_object_entry(entry[0]) for _, _, entry in _entries(handle, index)
                    )
            except (FileNotFoundError, IndexError, RepositoryError):
                known = False
            self._whole[name] = known
        return known

    def _merge(self, packs: list[_Pack]) -> str:
        # Every source is opened before anything is written: a pack removed meanwhile
        # (a concurrent merge, git gc) stays readable, or the merge fails before it began.
        # Sources are read a piece at a time, not mapped (mapped pages count as our
        # memory), and merged in id order, so the result is one of ours again.
        with contextlib.ExitStack() as stack:
            sources = []
            for pack in packs:
                index = PackIndex((self._dir / (pack.name + ".idx")).read_bytes())
                path = self._dir / (pack.name + ".pack")
                handle = stack.enter_context(open(path, "rb", buffering=0))
                size = os.fstat(handle.fileno()).st_size
                if os.pread(handle.fileno(), 20, size - 20) != index.pack_checksum:
                    raise RepositoryError(f"{path} does not match its index")
                sources.append((handle, index))
            ids = heapq.merge(*(_ids(index) for _, index in sources))
            count = sum(1 for _ in itertools.groupby(ids))
            encoder = PackEncoder(count)
            merged = heapq.merge(
                *(_entries(handle, index) for handle, index in sources), key=lambda item: item[0]
            )
            # the first of each id (an object in several packs is copied once)
            firsts = (next(group) for _, group in itertools.groupby(merged, lambda i: i[0]))
            entries = (encoder.add_raw(oid, entry, crc) for oid, crc, entry in firsts)
            return self._write_pack(encoder, entries)

    def _write_pack(self, encoder: PackEncoder, entries: Iterator[bytes]) -> str:
        """Write a pack (header, ``entries``, trailer) durably, then install it."""
        pack_tmp, fd = self._create_tmp("tmp_pack_")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(encoder.header())
                for entry in entries:
                    out.write(entry)
                out.write(encoder.trailer())
                out.flush()
                os.fsync(out.fileno())
            return self._install(pack_tmp, encoder)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pack_tmp)

    def _install(self, pack_tmp: str, encoder: PackEncoder) -> str:
        """Write the index, then name both files (pack first: readers look for the index)."""
        name = "pack-" + encoder.checksum.hex()
        idx_tmp, fd = self._create_tmp("tmp_idx_")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(encoder.index())
                out.flush()
                os.fsync(out.fileno())
            if self._extra_mode:
                for tmp in (pack_tmp, idx_tmp):
                    os.chmod(tmp, (os.stat(tmp).st_mode & 0o777) | self._extra_mode)
            os.rename(pack_tmp, self._dir / (name + ".pack"))
            os.rename(idx_tmp, self._dir / (name + ".idx"))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(idx_tmp)
        fsync_dir(self._dir)
        self._whole[name] = True
        return name

    def _create_tmp(self, prefix: str) -> tuple[str, int]:
        """A new file in the pack directory named as git names its temporary packs.

        Created read-only (0444 less the umask, as git creates packs) and open for
        writing. ``git gc`` removes such files when they are old, should we be killed.
        """
        for _ in range(100):
            path = os.path.join(self._dir, prefix + os.urandom(6).hex())
            try:
                return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            except FileExistsError:
                continue
        raise RepositoryError(f"cannot create a temporary file in {self._dir}")

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise RepositoryError(f"cannot {doing} in {self._dir}: {exc}") from exc


def _ids(index: PackIndex) -> Iterator[bytes]:
    return (index.oid(number) for number in range(index.count))


def _entries(handle: BinaryIO, index: PackIndex) -> Iterator[tuple[bytes, int, bytes]]:
    """(id, CRC, entry bytes) of one of our packs, in id order, read a piece at a time.

    Raises:
        RepositoryError: the pack is shorter than its index says.
    """
    size = os.fstat(handle.fileno()).st_size
    buffer, start = b"", 0
    for number in range(index.count):
        offset = index.offset(number)
        end = index.offset(number + 1) if number + 1 < index.count else size - 20
        if end > start + len(buffer):
            keep = buffer[offset - start :] if offset < start + len(buffer) else b""
            start = offset
            want = max(_READ_PIECE, end - start) - len(keep)
            buffer = keep + os.pread(handle.fileno(), want, start + len(keep))
            if len(buffer) < end - start:
                raise RepositoryError(f"{handle.name!r} is shorter than its index says")
        yield index.oid(number), index.crc(number), buffer[offset - start : end - start]


def _geometric_prefix(packs: list[_Pack]) -> list[_Pack]:
    """The smallest packs to merge so that the rest form a factor-2 progression."""
    ordered = sorted(packs, key=lambda pack: (pack.objects, pack.name))
    split = 0
    for i in range(len(ordered) - 1, 0, -1):
        if ordered[i].objects < GEOMETRIC_FACTOR * ordered[i - 1].objects:
            split = i + 1
            break
    total = sum(pack.objects for pack in ordered[:split])
    while split < len(ordered) and ordered[split].objects < GEOMETRIC_FACTOR * total:
        total += ordered[split].objects
        split += 1
    chosen = ordered[:split]
    while chosen and sum(pack.objects for pack in chosen) > MERGE_MAX_OBJECTS:
        chosen.pop()
    return chosen
