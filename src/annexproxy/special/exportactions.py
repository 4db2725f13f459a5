"""File-name operations of an ``exporttree=yes`` special remote (git-annex ``ExportActions``).

An export location is a ``/``-separated path from the top of the remote (a file of the
exported tree, the annexobjects area, or a temporary name). `ExportActions` is what the
exporter and `ExportTreeBackend` need; `DirectoryExport` implements it for the
``directory`` remote as git-annex's ``Remote/Directory.hs`` does: a file is written to a
temporary file beside its name and renamed into place, so it is never seen half-written;
a removal or a rename deletes the parent directories it left empty, up to (not
including) the remote's top. Locations that would leave the top (``..``, absolute
paths) are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import Protocol

from annexproxy.errors import KeyNotPresent, NodeUnavailable, StorageError
from annexproxy.special.backend import StoreSession
from annexproxy.special.directory import FileStoreSession

_READ = 1 << 20


class ExportActions(Protocol):
    """Store, read, test, remove and rename files by their exported names."""

    def store(
        self, location: str, size: int | None = None
    ) -> AbstractAsyncContextManager[StoreSession]:
        """Start writing ``location``; nothing is visible there until the commit.

        ``size`` is the length to come (None: unknown).

        Raises:
            StorageError: the remote cannot be written.
        """
        ...

    def retrieve(self, location: str, offset: int = 0) -> AsyncIterator[bytes]:
        """Yield the file's bytes from ``offset``.

        Raises:
            KeyNotPresent: there is no such file.
        """
        ...

    def local_path(self, location: str) -> Path | None:
        """A local file holding it (for sendfile), or None."""
        ...

    async def present(self, location: str) -> bool:
        """Whether the file exists.

        Raises:
            NodeUnavailable: the remote cannot be reached.
        """
        ...

    async def remove(self, location: str) -> None:
        """Delete the file if it exists, then its parent directories left empty.

        Raises:
            StorageError: it could not be deleted.
        """
        ...

    async def rename(self, source: str, dest: str) -> None:
        """Rename a file (replacing ``dest``), then remove directories left empty.

        Raises:
            StorageError: the rename failed (``source`` missing included).
        """
        ...


def _relative(location: str) -> PurePosixPath:
    path = PurePosixPath(location)
    if path.is_absolute() or not path.parts or ".." in path.parts or "\0" in location:
        raise StorageError(f"refusing export location {location!r}")
    return path


def check_location(location: str) -> str:
    """``location`` itself, once checked to stay below the remote's top.

    Raises:
        StorageError: it is absolute, empty, or climbs with ``..``.
    """
    _relative(location)
    return location


class _FileSession(FileStoreSession):
    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.tmp = dest.with_name(f".{dest.name}.annexproxy-{secrets.token_hex(6)}")
        super().__init__(self.tmp, label=dest, target=str(dest), durable=True)

    def _prepare(self) -> None:
        self.dest.parent.mkdir(parents=True, exist_ok=True)

    def _place(self) -> None:
        os.replace(self.tmp, self.dest)

    def _cleanup(self) -> None:
        with contextlib.suppress(OSError):
            self.tmp.unlink()


class DirectoryExport:
    """`ExportActions` on a directory special remote's top directory."""

    def __init__(self, top: Path) -> None:
        """Export below ``top``."""
        self.top = top

    def path_of(self, location: str) -> Path:
        """The file a location names.

        Raises:
            StorageError: the location would leave the top directory.
        """
        return self.top.joinpath(*_relative(location).parts)

    def _require_top(self) -> None:
        if not self.top.is_dir():
            raise NodeUnavailable(f"directory {self.top} is not accessible")

    @asynccontextmanager
    async def store(self, location: str, size: int | None = None) -> AsyncIterator[_FileSession]:
        """Write beside the final name; the commit renames into place."""
        self._require_top()
        session = _FileSession(self.path_of(location))
        async with session.opened(f"cannot store {location} in {self.top}"):
            yield session

    async def retrieve(self, location: str, offset: int = 0) -> AsyncIterator[bytes]:
        """Read the file from ``offset``."""
        path = self.path_of(location)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except OSError as exc:
            raise KeyNotPresent(f"{location} is not in {self.top}", key=location) from exc
        with handle:
            handle.seek(offset)
            while chunk := await asyncio.to_thread(handle.read, _READ):
                yield chunk

    def local_path(self, location: str) -> Path | None:
        """The file itself."""
        path = self.path_of(location)
        return path if path.is_file() else None

    async def present(self, location: str) -> bool:
        """Whether the file exists (an unreachable top directory is an error)."""
        path = self.path_of(location)
        if await asyncio.to_thread(path.is_file):
            return True
        self._require_top()
        return False

    def _prune(self, location: str) -> None:
        """Remove the location's parent directories while empty (``removeExportLocation``)."""
        parent = self.path_of(location).parent
        while parent != self.top and self.top in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                return
            parent = parent.parent

    async def remove(self, location: str) -> None:
        """Delete the file, then the directories left empty."""
        path = self.path_of(location)

        def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self._prune(location)

        try:
            await asyncio.to_thread(remove)
        except OSError as exc:
            raise StorageError(f"cannot remove {location} from {self.top}: {exc}") from exc

    async def rename(self, source: str, dest: str) -> None:
        """Rename within the remote, then remove the directories left empty."""
        src, dst = self.path_of(source), self.path_of(dest)

        def rename() -> None:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            self._prune(source)

        try:
            await asyncio.to_thread(rename)
        except OSError as exc:
            raise StorageError(f"cannot rename {source} to {dest} in {self.top}: {exc}") from exc
