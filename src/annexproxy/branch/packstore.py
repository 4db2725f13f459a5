"""Pack files in a repository's ``objects/pack``: one per branch commit, merged as they add up.

Owns the files: a commit's new objects are written as one pack and its index (two
files, instead of a loose object file per blob and tree), made durable before they are
named; and small packs that hold only whole objects (ours) are merged geometrically, as
``git repack --geometric=2`` does, so their number stays logarithmic in the objects
written. A merge copies entries as they are (no decompression), writes the merged pack
before it removes any merged one, and leaves alone what it must not touch: packs with a
``.keep``, ``.promisor``, ``.bitmap``, ``.rev`` or ``.mtimes`` beside them, packs with
deltas (git's own), big packs, and every pack while a ``multi-pack-index`` exists.

Encodings are in `annexproxy.branch.packfile`; this module only does the I/O.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from annexproxy.branch.packfile import (
    PackEncoder,
    entry_spans,
    index_checksum,
    is_whole_object_entry,
    read_index,
)
from annexproxy.errors import RepositoryError

#: Packs with more objects than this are never merged by us (``git gc`` may).
MERGE_MAX_OBJECTS = 50_000
#: Each pack of the kept progression has at least this many times the objects of the
#: packs below it together (git repack --geometric=2).
GEOMETRIC_FACTOR = 2
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
        self._whole: dict[str, bool] = {}  # pack name -> holds only whole objects

    def write(self, objects: Mapping[bytes, tuple[int, bytes]]) -> str:
        """Write ``objects`` (id -> (type, body)) as one pack; return its name.

        Raises:
            RepositoryError: the files could not be written.
        """
        encoder = PackEncoder(len(objects))
        with self._errors("write a pack"):
            self._dir.mkdir(parents=True, exist_ok=True)
            pack_tmp, fd = self._create_tmp("tmp_pack_")
            try:
                with os.fdopen(fd, "wb") as out:
                    chunks = [encoder.header()]
                    chunks.extend(
                        encoder.add(kind, body, oid) for oid, (kind, body) in objects.items()
                    )
                    chunks.append(encoder.trailer())
                    out.write(b"".join(chunks))
                    out.flush()
                    os.fsync(out.fileno())
                return self._install(pack_tmp, encoder)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(pack_tmp)

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
            if count <= MERGE_MAX_OBJECTS and self._holds_whole_objects(name):
                packs.append(_Pack(name, count))
        return packs

    def _holds_whole_objects(self, name: str) -> bool:
        known = self._whole.get(name)
        if known is None:
            try:
                idx = (self._dir / (name + ".idx")).read_bytes()
                with open(self._dir / (name + ".pack"), "rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                        known = all(
                            is_whole_object_entry(data[entry.offset])
                            for entry in read_index(idx)
                            if entry.offset < size
                        )
            except (FileNotFoundError, ValueError, RepositoryError):
                known = False
            self._whole[name] = known
        return known

    def _merge(self, packs: list[_Pack]) -> str:
        with contextlib.ExitStack() as stack:
            sources = []
            seen: set[bytes] = set()
            for pack in packs:
                idx = (self._dir / (pack.name + ".idx")).read_bytes()
                handle = stack.enter_context(open(self._dir / (pack.name + ".pack"), "rb"))
                data = stack.enter_context(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
                if data[-20:] != index_checksum(idx):
                    raise RepositoryError(f"{pack.name}.pack does not match its index")
                spans = []
                for entry, end in entry_spans(read_index(idx), len(data)):
                    if entry.oid not in seen:
                        seen.add(entry.oid)
                        spans.append((entry, end))
                sources.append((data, spans))
            encoder = PackEncoder(len(seen))
            pack_tmp, fd = self._create_tmp("tmp_pack_")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(encoder.header())
                    for data, spans in sources:
                        for entry, end in spans:
                            out.write(
                                encoder.add_raw(entry.oid, data[entry.offset : end], entry.crc)
                            )
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
        directory = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
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
