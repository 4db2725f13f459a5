"""The ``directory`` special remote: objects in a directory tree, as git-annex keeps them.

An object lives at ``<dir>/<hashdirlower><kf>/<kf>`` (``<hashdirmixed>`` is read too,
as git-annex once wrote there); chunk keys hash like their parent key, so the chunks of
one key share a hash directory. A store writes ``<dir>/tmp/<unique>/<kf>`` (git-annex
uses ``tmp/<kf>/``, which concurrent writers share; those of dead processes on this host
are removed by the next store), renames that directory into place,
then makes file and directory read-only (with the gateway's ``annexproxy.fsync``, the
default, the file and the directories it entered are synced to disk first; git-annex
does not sync); a removal deletes the key's directory and the
hash directories left empty (git-annex ``Remote/Directory``).
The directory comes from git config ``remote.NAME.annex-directory``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import shutil
import socket
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Self

from annexproxy.durable import fsync_dir
from annexproxy.errors import ConfigError, KeyNotPresent, NodeUnavailable, StorageError
from annexproxy.keys import Key
from annexproxy.special.backend import LocalSettings
from annexproxy.special.remote import SpecialRemote
from annexproxy.special.spool import dead_leftovers
from annexproxy.storage.writeback import WriteBack

_READ = 1 << 20
_THREAD_WRITE = 1 << 16


class FileStoreSession:
    """A `StoreSession` writing a temporary file; the commit puts it in place.

    Owns the descriptor and the store's life: `opened` opens it in a worker thread and
    discards it unless committed. Subclasses say where it goes: `_prepare` makes the
    temporary file's directory, `_place` moves the closed file into place and `_cleanup`
    removes what a discarded store left.
    """

    open_flags = os.O_EXCL
    """Added to ``O_WRONLY | O_CREAT`` when the temporary file is opened."""
    thread_write = 0
    """Writes at least this long go to a worker thread (0: all of them)."""

    def __init__(self, tmpfile: Path, *, label: object, target: str, durable: bool) -> None:
        """Write ``tmpfile``.

        Args:
            tmpfile: the temporary file.
            label: what is stored, for errors about a store that ended.
            target: what is stored and where, for errors about storing it.
            durable: fsync the file before it is placed.
        """
        self.tmpfile = tmpfile
        self._label = label
        self._target = target
        self._durable = durable
        self._fd: int | None = None
        self._writeback: WriteBack | None = None
        self._end = 0
        self.committed = False

    def _prepare(self) -> None:
        """Make the temporary file's directory."""

    def _place(self) -> None:
        """Move the written, closed temporary file into place."""
        raise NotImplementedError

    def _cleanup(self) -> None:
        """Remove what a discarded store left (the descriptor is closed)."""

    def open(self) -> None:
        """Create the temporary file (blocking).

        Raises:
            OSError: it could not be created.
        """
        self._prepare()
        flags = os.O_WRONLY | os.O_CREAT | self.open_flags | os.O_CLOEXEC
        self._fd = os.open(self.tmpfile, flags, 0o644)
        if self._durable:
            self._end = os.fstat(self._fd).st_size
            self._writeback = WriteBack(self._fd, self._end)

    def _write_sync(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        if self._writeback is not None:
            self._end += len(data)
            self._writeback.written(self._end)

    async def write(self, data: bytes) -> None:
        """Append ``data`` to the temporary file.

        Raises:
            StorageError: the store ended, or writing failed.
        """
        if self._fd is None:
            raise StorageError(f"{self._label}: write after the store ended")
        try:
            if len(data) >= self.thread_write:
                await asyncio.to_thread(self._write_sync, data)
            else:
                self._write_sync(data)
        except OSError as exc:
            raise StorageError(f"cannot write {self.tmpfile}: {exc}") from exc

    async def commit(self) -> None:
        """Sync (when durable) and close the file, then put it in place.

        Raises:
            StorageError: the store ended, or it could not be stored.
        """
        if self._fd is None:
            raise StorageError(f"{self._label}: commit after the store ended")
        try:
            await asyncio.to_thread(self._finish)
        except OSError as exc:
            raise StorageError(f"cannot store {self._target}: {exc}") from exc
        self.committed = True

    def _finish(self) -> None:
        assert self._fd is not None
        fd, self._fd = self._fd, None
        try:
            if self._durable:
                os.fsync(fd)
            if self._writeback is not None and (failed := self._writeback.finish()):
                raise failed  # a background flush failed: the fsync may not have said so
        finally:
            os.close(fd)
        self._place()

    def discard(self) -> None:
        """Close the file and remove what the store left (blocking)."""
        if self._writeback is not None:
            self._writeback.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._cleanup()

    @asynccontextmanager
    async def opened(self, failure: str) -> AsyncIterator[Self]:
        """Open the session for the block; leaving it uncommitted discards it.

        Args:
            failure: what could not be stored should opening fail (``cannot store ...``).

        Raises:
            StorageError: the temporary file could not be created.
        """
        try:
            await asyncio.to_thread(self.open)
        except OSError as exc:
            raise StorageError(f"{failure}: {exc}") from exc
        try:
            yield self
        finally:
            if not self.committed:
                await asyncio.to_thread(self.discard)


class _DirectorySession(FileStoreSession):
    open_flags = os.O_TRUNC
    thread_write = _THREAD_WRITE

    def __init__(self, backend: DirectoryBackend, name: Key) -> None:
        # Not git-annex's tmp/<kf>: that name is shared by every writer of the key, so
        # another process's store would remove or fill our file before we rename it.
        self.tmpdir = backend.top / "tmp" / f"{_tmp_prefix()}{os.getpid()}-{secrets.token_hex(6)}"
        super().__init__(
            self.tmpdir / name.keyfile(),
            label=name,
            target=f"{name} in {backend.top}",
            durable=backend.fsync,
        )
        self._dest = backend.key_dir(name)

    def _prepare(self) -> None:
        self.tmpdir.mkdir(parents=True)

    def _place(self) -> None:
        kf = self.tmpfile.name
        dest = self._dest
        if dest.exists():
            _remove_tree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self.tmpdir, dest)
        except OSError as exc:
            # Another writer put the key in place since: its content is the key's too.
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not (dest / kf).is_file():
                raise
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            return
        if self._durable:
            # The rename is durable once the directories holding the entries are synced.
            fsync_dir(dest)
            fsync_dir(dest.parent)
        with contextlib.suppress(OSError):
            _read_only(dest / kf)
            _read_only(dest)

    def _cleanup(self) -> None:
        if self.tmpdir.exists():
            shutil.rmtree(self.tmpdir, ignore_errors=True)


class DirectoryBackend:
    """A `RemoteBackend` over a directory special remote's tree."""

    def __init__(self, top: Path, *, fsync: bool = True) -> None:
        """Use the remote whose objects are below ``top``.

        Args:
            top: the remote's directory.
            fsync: sync each stored object and its directory before it counts as stored
                (the gateway's ``annexproxy.fsync``).
        """
        self.top = top
        self.fsync = fsync
        self._swept = False

    def _sweep(self) -> None:
        """Remove temp directories that stores of dead processes on this host left."""
        for entry in dead_leftovers(self.top / "tmp", _tmp_prefix()):
            shutil.rmtree(entry, ignore_errors=True)

    def key_dir(self, name: Key) -> Path:
        """The directory an object is stored in (the default, lower-case hash)."""
        return self.top / name.hashdir_lower() / name.keyfile()

    def _locations(self, name: Key) -> list[Path]:
        kf = name.keyfile()
        return [
            self.top / name.hashdir_lower() / kf / kf,
            self.top / name.hashdir_mixed() / kf / kf,
        ]

    def _find(self, name: Key) -> Path | None:
        for path in self._locations(name):
            if path.is_file():
                return path
        if not self.top.is_dir():
            raise NodeUnavailable(f"directory {self.top} is not accessible")
        return None

    @asynccontextmanager
    async def store(self, name: Key, size: int | None) -> AsyncIterator[_DirectorySession]:
        """Write to ``tmp/<unique>/<kf>``; the commit renames it into place."""
        if not self.top.is_dir():
            raise NodeUnavailable(f"directory {self.top} is not accessible")
        if not self._swept:
            self._swept = True
            await asyncio.to_thread(self._sweep)
        session = _DirectorySession(self, name)
        async with session.opened(f"cannot store {name} in {self.top}"):
            yield session

    async def retrieve(self, name: Key, offset: int = 0) -> AsyncIterator[bytes]:
        """Read the object from ``offset`` (a seek: the bytes before are not read).

        Raises:
            KeyNotPresent: the object is not there.
            NodeUnavailable: the directory is missing, or reading failed (an I/O error);
                the caller may read again from where it stopped.
        """
        path = self._find(name)
        if path is None:
            raise KeyNotPresent(f"{name} is not in {self.top}", key=str(name))
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise KeyNotPresent(f"{name} is not in {self.top}", key=str(name)) from exc
        except OSError as exc:
            raise NodeUnavailable(f"cannot open {path}: {exc}") from exc
        with handle:
            position = offset
            try:
                handle.seek(offset)
                while chunk := await asyncio.to_thread(handle.read, _READ):
                    position += len(chunk)
                    yield chunk
            except OSError as exc:
                raise NodeUnavailable(f"reading {path} failed at byte {position}: {exc}") from exc

    def local_path(self, name: Key) -> Path | None:
        """The object's file, for sendfile."""
        try:
            return self._find(name)
        except NodeUnavailable:
            return None

    async def present(self, name: Key) -> bool:
        """Whether the object's file exists.

        Raises:
            NodeUnavailable: the directory itself is missing (an unmounted disk).
        """
        return await asyncio.to_thread(self._find, name) is not None

    async def remove(self, name: Key) -> None:
        """Delete the object's directory and empty hash directories."""
        kf = name.keyfile()
        for hashdir in (name.hashdir_lower(), name.hashdir_mixed()):
            directory = self.top / hashdir / kf
            try:
                await asyncio.to_thread(_remove_with_parents, self.top, directory)
            except OSError as exc:
                raise StorageError(f"cannot remove {name} from {self.top}: {exc}") from exc

    async def aclose(self) -> None:
        """Nothing to release."""


def _tmp_prefix() -> str:
    """Our temp directories' prefix: the host, as processes are only seen on it."""
    host = socket.gethostname().replace("/", "_").replace("-", "_") or "host"
    return f"annexproxy-{host}-"


def _read_only(path: Path) -> None:
    mode = path.stat().st_mode
    path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _retry_writable(func: object, path: str, _info: object) -> None:
    os.chmod(os.path.dirname(path), 0o755)
    if callable(func):
        func(path)


def _remove_tree(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.chmod(0o755)
    shutil.rmtree(directory, onerror=_retry_writable)


def _remove_with_parents(top: Path, directory: Path) -> None:
    if not directory.exists():
        return
    _remove_tree(directory)
    parent = directory.parent
    while parent != top and top in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


def directory_of(remote: SpecialRemote, base: Path) -> Path:
    """Where a directory special remote keeps its objects (relative to ``base``).

    Raises:
        ConfigError: the directory is not configured.
    """
    directory = remote.git.get("annex-directory") or remote.params.get("directory")
    if not directory:
        raise ConfigError(
            f"special remote {remote.name!r} has no directory; set "
            f"remote.{remote.name}.annex-directory (git annex enableremote does)"
        )
    top = Path(directory).expanduser()
    return top if top.is_absolute() else base / top


async def open_directory(
    remote: SpecialRemote, *, base: Path, local: LocalSettings | None = None
) -> DirectoryBackend:
    """The backend of a directory special remote (``remote.NAME.annex-directory``).

    Args:
        remote: the remote's configuration.
        base: the gateway repository's top directory (relative directories).
        local: the gateway's settings (its ``annexproxy.fsync``); None: defaults.

    Raises:
        ConfigError: the directory is not configured.
    """
    fsync = True if local is None else local.fsync
    return DirectoryBackend(directory_of(remote, base), fsync=fsync)
