"""One resumable, verified upload into a git-annex repository's object store (branch.md 9).

Owns the life of ``<annexdir>/tmp/<kf>``: resuming from its size (discarding it when it is
longer than the key says), appending and hashing bytes as they arrive (the kept prefix is
re-hashed first), and on commit checking size and hash, fsyncing, renaming into the key
directory, freezing modes (0444 object, 0555 key directory) and telling the presence log.
The caller (`AnnexRepoStorage.upload`) holds the per-key locks; this module takes none and
never reads a whole object into memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading
from typing import TYPE_CHECKING

from annexproxy.durable import fsync_dir
from annexproxy.errors import OutOfSpace, StorageError, VerificationFailed
from annexproxy.keys import Key
from annexproxy.storage.base import Others
from annexproxy.storage.hashing import Verifier, verifier_for
from annexproxy.storage.writeback import WriteBack

if TYPE_CHECKING:
    from annexproxy.storage.annexrepo import AnnexRepoStorage

_HASH_PIECE = 1 << 20
_THREAD_WRITE = 256 << 10  # writes at least this large go to a worker thread


_INSTALL_ATTEMPTS = 20


def _os_error(key: Key, what: str, exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutOfSpace(f"{key}: no space left while {what}: {exc}")
    return StorageError(f"{key}: {what} failed: {exc}")


class AnnexUpload:
    """An upload of one key in progress; made by `AnnexRepoStorage.upload`."""

    def __init__(
        self, storage: AnnexRepoStorage, key: Key, fd: int, offset: int, verifier: Verifier | None
    ) -> None:
        self._storage = storage
        self._key = key
        self._fd: int | None = fd
        self._offset = offset
        self._written = offset
        self._verifier = verifier
        self._tmp = storage.layout.tmp_path(key)
        self._done = False
        self._hash_elsewhere = False
        self._io_lock = threading.Lock()
        self._close_pending = False
        self._hash_confirmed = False
        self._already_have: Others | None = () if storage.find_object(key) is not None else None
        self._writeback = WriteBack(fd, offset) if storage.layout.config.fsync else None

    @classmethod
    async def start(cls, storage: AnnexRepoStorage, key: Key) -> AnnexUpload:
        """Open (or resume) the partial file of ``key`` and re-hash what it holds.

        Raises:
            StorageError: the partial file cannot be opened or read.
        """
        tmp = storage.layout.tmp_path(key)
        try:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _os_error(key, f"opening {tmp}", exc) from exc
        try:
            size = os.fstat(fd).st_size
            if key.size is not None and size > key.size:
                # Longer than the key: cannot be a prefix of the content (branch.md 9).
                os.ftruncate(fd, 0)
                size = 0
            verifier = verifier_for(key)
            if verifier is not None and size:
                await asyncio.to_thread(_hash_prefix, fd, size, verifier)
        except OSError as exc:
            os.close(fd)
            raise _os_error(key, f"reading {tmp}", exc) from exc
        except BaseException:
            os.close(fd)
            raise
        return cls(storage, key, fd, size, verifier)

    @property
    def offset(self) -> int:
        """Bytes already held from an earlier attempt; the sender continues from here."""
        return self._offset

    @property
    def already_have(self) -> Others | None:
        """``()`` when the object was in the store as the upload began, else None.

        Fixed when the upload starts, so every caller sees the same answer even while a
        removal of the key runs meanwhile.
        """
        return self._already_have

    def hash_elsewhere(self) -> bool:
        """Leave hashing to the caller (`SharedVerification`); only before any bytes."""
        if self._verifier is None or self._written != 0 or self._done:
            return False
        self._hash_elsewhere = True
        self._verifier = None
        return True

    def confirm_hash(self, matched: bool) -> None:
        """The caller's verdict on the content's hash; a mismatch discards the partial."""
        if not self._hash_elsewhere:
            return
        self._hash_confirmed = matched
        if not matched and not self._done:
            self._discard()

    def _write_sync(self, fd: int, data: bytes) -> None:
        # Under the I/O lock: `close` from the event loop must not close (and let the
        # system reuse) the descriptor while a worker thread still writes to it.
        with self._io_lock:
            if self._fd != fd:
                raise OSError(errno.EBADF, "the upload was closed")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self._writeback is not None:
                self._writeback.written(self._written + len(data))
            if self._verifier is not None:
                self._verifier.update(data)
            if self._close_pending:
                self._fd = None
                os.close(fd)

    async def write(self, data: bytes) -> None:
        """Append bytes to the partial content, hashing them on the way.

        Raises:
            VerificationFailed: more bytes than the key's size (the partial is discarded).
            StorageError: the upload was committed or closed, or writing failed.
        """
        if self._fd is None or self._done:
            raise StorageError(f"{self._key}: write after the upload was finished")
        if self._key.size is not None and self._written + len(data) > self._key.size:
            self._fail(str(self._key.size), f"more than {self._key.size} bytes")
        fd = self._fd
        try:
            if len(data) >= _THREAD_WRITE:
                await asyncio.to_thread(self._write_sync, fd, data)
            else:
                self._write_sync(fd, data)
        except OSError as exc:
            raise _os_error(self._key, f"writing {self._tmp}", exc) from exc
        self._written += len(data)

    def _fail(self, expected: str, got: str) -> None:
        self._discard()
        raise VerificationFailed(
            f"{self._key}: expected {expected}, got {got}; the partial content was discarded,"
            " send it again",
            key=str(self._key),
            expected=expected,
            got=got,
        )

    def _discard(self) -> None:
        self._done = True
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def _verify(self, *, sender_valid: bool) -> None:
        key = self._key
        if key.size is not None and self._written != key.size:
            self._fail(f"{key.size} bytes", f"{self._written} bytes")
        if self._hash_elsewhere:
            if not self._hash_confirmed:
                self._fail("a hash confirmed by the sender's gateway", "no confirmation")
        elif self._verifier is None:
            if not sender_valid:
                self._fail("VALID", "INVALID")
        elif not self._verifier.matches():
            self._fail(self._verifier.expected, self._verifier.hexdigest())

    async def commit(self, *, sender_valid: bool) -> Others:
        """Verify, make durable, move into the object store and report presence.

        Args:
            sender_valid: the sender said VALID; only decisive for unhashable keys.

        Raises:
            VerificationFailed: size or hash mismatch; the partial content is discarded.
            StorageError: the upload was already finished, or storing it failed.
        """
        if self._done or self._fd is None:
            raise StorageError(f"{self._key}: commit after the upload was finished")
        async with self._storage.content_change(self._key):
            if self._storage.find_object(self._key) is not None:
                self._discard()  # already present: nothing to do (git-annex's ALREADY-HAVE)
                return ()
            self._verify(sender_valid=sender_valid)
            fd = self._fd
            try:
                await asyncio.to_thread(self._sync_and_install, fd)
            except OSError as exc:
                raise _os_error(self._key, "storing the object", exc) from exc
            self._done = True
            if self._storage.presence_log is not None:
                await self._storage.presence_log(self._key, True)
            return ()

    def _sync_and_install(self, fd: int) -> None:
        """Sync (when configured), close and install: one trip to a worker thread."""
        if self._storage.layout.config.fsync:
            with self._io_lock:  # a `close` meanwhile waits for the fsync (close_pending)
                if self._fd != fd:
                    raise OSError(errno.EBADF, "the upload was closed")
                os.fsync(fd)
            if self._writeback is not None and (failed := self._writeback.finish()):
                raise failed  # a background flush failed: the fsync may not have said so
        self.close()
        self._install()

    def _install(self) -> None:
        """Rename into ``<hashdir>/<kf>/<kf>``, freeze, and fsync the directories."""
        dest = self._storage.layout.new_object_path(self._key)
        keydir = dest.parent
        os.chmod(self._tmp, 0o444)
        for attempt in range(_INSTALL_ATTEMPTS):
            keydir.parent.mkdir(parents=True, exist_ok=True)
            try:
                keydir.mkdir()
            except FileExistsError:
                keydir.chmod(0o755)  # a frozen, empty leftover from an interrupted removal
            except FileNotFoundError:
                continue  # a removal pruned the empty hash directories meanwhile
            try:
                os.replace(self._tmp, dest)
                break
            except FileNotFoundError:
                # A removal of this key (here or by git-annex) pruned the empty key
                # directory between mkdir and rename; make it again.
                if attempt == _INSTALL_ATTEMPTS - 1 or not self._tmp.exists():
                    raise
        else:
            raise FileNotFoundError(f"{keydir} kept disappearing while storing {self._key}")
        durable = self._storage.layout.config.fsync
        if durable:
            fsync_dir(keydir)
        keydir.chmod(0o555)
        if durable:
            fsync_dir(keydir.parent)

    def close(self) -> None:
        """Close the partial file; its bytes stay for a later resume unless discarded.

        While a worker thread is writing (a write abandoned as too slow), the thread
        closes the file when its write returns.
        """
        if self._writeback is not None:
            self._writeback.close()
        if not self._io_lock.acquire(blocking=False):
            self._close_pending = True
            return
        try:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)
        finally:
            self._io_lock.release()


def _hash_prefix(fd: int, size: int, verifier: Verifier) -> None:
    pos = 0
    while pos < size:
        piece = os.pread(fd, min(_HASH_PIECE, size - pos), pos)
        if not piece:
            raise OSError(errno.EIO, "partial file shrank while it was hashed")
        verifier.update(piece)
        pos += len(piece)
