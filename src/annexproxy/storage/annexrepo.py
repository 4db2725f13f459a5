"""`AnnexRepoStorage`: the `Storage` protocol over a local git-annex repository's object store.

Owns reading, adding, locking and removing objects under ``<annexdir>/objects`` exactly as
git-annex does (branch.md 9-10), so that git-annex and annexproxy can work on one
repository at once: both hash-directory schemes, frozen modes, ``.lck`` record locks,
``.rtm`` retention, the download transfer lock, resumable ``tmp/<kf>`` partial files and
verify-fsync-rename before content counts as present. It must not write the git-annex
branch or location logs: it reports presence changes to the injected ``presence_log``.
Lock-file mechanics live in `annexproxy.storage.contentlock`, paths and configuration in
`annexproxy.storage.annexlayout`, the upload in `annexproxy.storage.annexupload`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from annexproxy.errors import ContentLocked, KeyNotPresent, RepositoryError, StorageError
from annexproxy.keys import Key
from annexproxy.storage import retention
from annexproxy.storage.annexlayout import AnnexLayout, open_layout
from annexproxy.storage.annexupload import AnnexUpload
from annexproxy.storage.base import Others, PresenceLog
from annexproxy.storage.contentlock import FileLock, lock_exclusive_wait, thawed, try_lock
from annexproxy.storage.fileread import open_object, pread_pieces
from annexproxy.uuids import RepoUUID

# Process-wide: one asyncio lock per download-lock file, since record locks never make a
# process wait for itself. Entries are dropped when nobody uses them.
_UPLOADS: dict[str, tuple[asyncio.Lock, int]] = {}


@asynccontextmanager
async def _inprocess_exclusive(name: str) -> AsyncIterator[None]:
    lock, users = _UPLOADS.get(name, (asyncio.Lock(), 0))
    _UPLOADS[name] = (lock, users + 1)
    try:
        async with lock:
            yield
    finally:
        lock, users = _UPLOADS[name]
        if users == 1:
            del _UPLOADS[name]
        else:
            _UPLOADS[name] = (lock, users - 1)


def _delete_object(key: Key, obj: Path) -> None:
    try:
        with thawed(obj.parent):
            obj.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"{key}: cannot delete {obj}: {exc}") from exc


@dataclass(slots=True, kw_only=True, eq=False)
class _FileSource:
    """An open object file, read by descriptor (a drop meanwhile does not affect it)."""

    key: Key
    file_path: Path
    fd: int
    size: int
    start: int
    identity: tuple[int, int, int, int]

    @property
    def length(self) -> int:
        return max(0, self.size - self.start)

    @property
    def offset(self) -> int:
        return self.start

    def chunks(self, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        name = f"{self.key}: {self.file_path}"
        return pread_pieces(self.fd, self.start, self.size, chunk_size, name)

    def unchanged(self) -> bool:
        # What was sent came through the descriptor: only a change of the file itself
        # (size, modification time) matters, not a removal of its name meanwhile.
        try:
            now = os.fstat(self.fd)
        except OSError:
            return False
        return (now.st_ino, now.st_dev, now.st_size, now.st_mtime_ns) == self.identity


@dataclass(slots=True, kw_only=True, eq=False)
class _AnnexContentLock:
    """A LOCKCONTENT lock: the shared ``.lck`` lock plus a retention time in ``.rtm``."""

    storage: AnnexRepoStorage
    lock: FileLock
    object_path: Path
    released: bool = False

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        try:
            await retention.forget(self.object_path)
        finally:
            self.lock.release(unlink=True)


class AnnexRepoStorage:
    """A `Storage` over a local git-annex repository (bare or non-bare, version 10).

    Open it with `open`. Reading works for any initialised repository; adding, locking
    and removing content are refused for repositories that git-annex locks differently
    (``annex.version`` below 10, ``annex.pidlock=true``).
    """

    def __init__(
        self,
        layout: AnnexLayout,
        *,
        presence_log: PresenceLog | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.layout = layout
        self.presence_log = presence_log
        self.clock = clock
        self._monotonic = monotonic

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        presence_log: PresenceLog | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> AnnexRepoStorage:
        """Open the git-annex repository at ``path`` (its config is read once, here).

        Args:
            path: the top of a non-bare repository or a bare repository directory.
            presence_log: awaited after content became present (True) or was removed
                (False); the server points it at the git-annex journal.
            clock: POSIX time, for retention timestamps.
            monotonic: the clock behind `timestamp`.

        Raises:
            RepositoryError: not a git-annex repository, or its config is malformed.
        """
        return cls(
            open_layout(Path(path)), presence_log=presence_log, clock=clock, monotonic=monotonic
        )

    @property
    def uuid(self) -> RepoUUID:
        """The repository's ``annex.uuid``."""
        return self.layout.config.uuid

    def _now(self) -> int:
        return int(self._monotonic())

    async def timestamp(self) -> int:
        """This process's monotonic clock in whole seconds (GETTIMESTAMP)."""
        return self._now()

    def _require_writable(self) -> None:
        reason = self.layout.config.write_refusal()
        if reason is not None:
            raise RepositoryError(f"will not change {self.layout.path}: {reason}")

    def find_object(self, key: Key) -> Path | None:
        """The object file of ``key`` if it is present, looking where git-annex looks."""
        for candidate in self.layout.object_names(key):
            if os.path.isfile(candidate):
                return Path(candidate)
        return None

    async def checkpresent(self, key: Key) -> bool:
        """Tell whether the content of ``key`` is in the object store.

        Raises:
            StorageError: never for a readable repository; listed for the protocol.
        """
        return self.find_object(key) is not None

    def _lock_shared(self, key: Key) -> tuple[FileLock, Path]:
        """Take the keep-present lock on the object of ``key`` (branch.md 10)."""
        obj = self.find_object(key)
        if obj is None:
            raise KeyNotPresent(f"{key} is not present in {self.layout.path}", key=str(key))
        try:
            lock = try_lock(obj.with_name(obj.name + ".lck"), exclusive=False)
        except StorageError:
            if not obj.exists():
                raise KeyNotPresent(f"{key} was removed meanwhile", key=str(key)) from None
            raise
        if lock is None:
            raise ContentLocked(f"{key} is being removed from {self.layout.path}", key=str(key))
        if not obj.is_file():
            lock.release(unlink=True)
            raise KeyNotPresent(f"{key} was removed meanwhile", key=str(key))
        return lock, obj

    @asynccontextmanager
    async def retrieve(self, key: Key, offset: int = 0) -> AsyncIterator[_FileSource]:
        """Open the content of ``key`` from ``offset``.

        Like git-annex's own server, this takes no content lock: the object is read
        through the descriptor opened here, so a drop meanwhile (which unlinks the file)
        does not cut the read short, and the lock file's creation and removal per read
        are saved.

        Raises:
            KeyNotPresent: the content is not here (or was removed just now).
            StorageError: the object cannot be opened.
        """
        obj = self.find_object(key)
        if obj is None:
            raise KeyNotPresent(f"{key} is not present in {self.layout.path}", key=str(key))
        fd = open_object(obj, key)
        try:
            st = os.fstat(fd)
            yield _FileSource(
                key=key,
                file_path=obj,
                fd=fd,
                size=st.st_size,
                start=max(0, offset),
                identity=(st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns),
            )
        finally:
            os.close(fd)

    @asynccontextmanager
    async def upload(
        self, key: Key, associated_file: str | None = None
    ) -> AsyncIterator[AnnexUpload]:
        """Start or resume an upload of ``key`` into ``<annexdir>/tmp/<kf>``.

        Waits while another upload of the key runs, in this process (asyncio lock) or in
        another one (the download transfer lock, branch.md 9).

        Raises:
            RepositoryError: the repository may not be written.
            StorageError: the partial file or the transfer lock cannot be opened.
        """
        self._require_writable()
        lock_path = self.layout.download_lock_path(key)
        async with _inprocess_exclusive(str(lock_path)):
            try:
                lock_path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create {lock_path.parent}: {exc}") from exc
            transfer_lock = await lock_exclusive_wait(lock_path)
            try:
                upload = await AnnexUpload.start(self, key)
                try:
                    yield upload
                finally:
                    upload.close()
            finally:
                transfer_lock.release(unlink=True)

    async def upload_offset(
        self, key: Key, associated_file: str | None = None
    ) -> tuple[int | None, Others]:
        """Where an upload would resume: the partial file's size, without opening it.

        A partial file longer than the key says counts as nothing (an upload truncates
        it). ``(None, ())`` when the object is present.

        Raises:
            RepositoryError: the repository may not be written.
        """
        self._require_writable()
        if self.find_object(key) is not None:
            return None, ()
        try:
            size = os.stat(self.layout.tmp_path(key)).st_size
        except FileNotFoundError:
            return 0, ()
        except OSError as exc:
            raise StorageError(f"{key}: cannot read its partial file: {exc}") from exc
        if key.size is not None and size > key.size:
            return 0, ()
        return size, ()

    async def lock_content(self, key: Key) -> _AnnexContentLock:
        """Lock the content of ``key`` present, as git-annex serves LOCKCONTENT.

        Takes a shared lock on ``<kf>.lck`` and writes a retention time 600 s ahead into
        ``<kf>.rtm``, so the content stays protected even if this process dies.

        Raises:
            RepositoryError: the repository may not be written.
            KeyNotPresent: nothing to lock.
            ContentLocked: it is being removed.
        """
        self._require_writable()
        lock, obj = self._lock_shared(key)
        try:
            await retention.remember(obj, self.layout.othertmp(), self.clock())
        except BaseException:
            lock.release(unlink=True)
            raise
        return _AnnexContentLock(storage=self, lock=lock, object_path=obj)

    def _check_deadline(self, key: Key, before: int | None) -> None:
        if before is not None and self._now() >= before:
            raise StorageError(
                f"{key}: removal deadline {before} passed (now {self._now()});"
                " lock the other copies again and retry"
            )

    def content_change(self, key: Key) -> AbstractAsyncContextManager[None]:
        """Serialise, within this process, changes to whether ``key`` is present.

        An upload's install and a removal of the same key then happen one after the
        other, each with its location-log entry, so the log ends in the true state.
        """
        return _inprocess_exclusive("content:" + key.keyfile())

    async def remove(self, key: Key, *, before: int | None = None) -> Others:
        """Remove the content of ``key`` (every copy in the object store).

        Raises:
            RepositoryError: the repository may not be written.
            ContentLocked: a content lock or a retention time protects it.
            StorageError: ``before`` passed, or deleting failed.
        """
        self._require_writable()
        async with self.content_change(key):
            removed = False
            for obj in map(Path, self.layout.object_names(key)):
                if obj.is_file():
                    self._check_deadline(key, before)
                    await self._remove_object(key, obj, before)
                    removed = True
            if removed and self.presence_log is not None:
                await self.presence_log(key, False)
            return ()

    async def _remove_object(self, key: Key, obj: Path, before: int | None) -> None:
        if retention.protected(obj, self.clock()):
            raise ContentLocked(f"{key} is retained (.rtm in the future)", key=str(key))
        lock = try_lock(obj.with_name(obj.name + ".lck"), exclusive=True)
        if lock is None:
            raise ContentLocked(f"{key} is locked and cannot be removed", key=str(key))
        keydir = obj.parent
        try:
            if retention.protected(obj, self.clock()):
                raise ContentLocked(f"{key} is retained (.rtm in the future)", key=str(key))
            await retention.clear_expired(obj)
            self._check_deadline(key, before)
            _delete_object(key, obj)
        finally:
            lock.release(unlink=True)
        self._prune(keydir)

    def _prune(self, keydir: Path) -> None:
        """Remove the key directory and hash directories left empty (branch.md 9)."""
        for directory in (keydir, keydir.parent, keydir.parent.parent):
            if directory == self.layout.objects:
                break
            with contextlib.suppress(OSError):
                directory.rmdir()
