"""git-annex's lock-file convention: POSIX record locks shared process-wide (branch.md 10).

Owns every fcntl lock annexproxy takes on a git-annex repository: content locks
(``<kf>.lck``, shared to keep content present, exclusive to remove it), retention guards
(``<kf>.rtl``) and transfer locks (``transfer/download/lck/lck.<kf>``). Locks are
``fcntl.lockf`` record locks over the whole file, as git-annex uses; ``flock`` would not
interoperate. Because such locks belong to the process and vanish when *any* descriptor of
the file is closed, this module keeps one descriptor per lock file per process and counts
holders itself, so two holders inside one process conflict exactly as two processes do.
It must not know about keys, objects or verification.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import stat
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from annexproxy.errors import StorageError

_GUARD = threading.Lock()
_SANITY_RETRIES = 5
_BUSY = (errno.EAGAIN, errno.EACCES)


@dataclass(slots=True, kw_only=True, eq=False)
class _Held:
    fd: int
    exclusive: bool
    count: int


# Lock file path -> the one descriptor this process holds a lock through.
_POOL: dict[str, _Held] = {}


@contextmanager
def thawed(directory: Path) -> Iterator[None]:
    """Temporarily add the owner write bit to a (frozen, 0555) directory.

    Raises:
        OSError: the mode could not be read or changed.
    """
    try:
        mode = stat.S_IMODE(directory.stat().st_mode)
    except FileNotFoundError:
        yield
        return
    if mode & stat.S_IWUSR:
        yield
        return
    directory.chmod(mode | stat.S_IWUSR)
    try:
        yield
    finally:
        directory.chmod(mode)


def _same_file(fd: int, path: Path) -> bool:
    """git-annex's sanity check: the locked descriptor is still the file at ``path``."""
    try:
        now = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _open(path: Path, *, exclusive: bool, create: bool) -> int:
    flags = (os.O_RDWR if exclusive else os.O_RDONLY) | (os.O_CREAT if create else 0)
    try:
        with thawed(path.parent):
            return os.open(path, flags | os.O_CLOEXEC, 0o644)
    except PermissionError:
        if not exclusive or not path.exists():
            raise
        # A lock file someone created read-only: we need it writable for a write lock.
        path.chmod(stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)
        return os.open(path, flags | os.O_CLOEXEC, 0o644)


def _try_lockf(fd: int, exclusive: bool) -> bool:
    op = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    try:
        fcntl.lockf(fd, op)
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        raise
    return True


@dataclass(slots=True, kw_only=True, eq=False)
class FileLock:
    """One holder's claim on a lock file; `release` it exactly once (later calls are no-ops)."""

    path: Path
    exclusive: bool
    released: bool = False

    def release(self, *, unlink: bool = False) -> None:
        """Give up this holder's lock.

        Args:
            unlink: delete the lock file when the last holder goes. A shared holder only
                deletes it if it can upgrade to an exclusive lock (nobody else holds it),
                as git-annex does.

        Raises:
            OSError: closing or deleting failed unexpectedly.
        """
        if self.released:
            return
        self.released = True
        with _GUARD:
            key = str(self.path)
            held = _POOL[key]
            held.count -= 1
            if held.count:
                return
            del _POOL[key]
            fd: int | None = held.fd
            if unlink and not held.exclusive:
                # A shared descriptor cannot be upgraded (it is read-only): close it and
                # try a fresh exclusive lock, which fails while anyone else shares it.
                os.close(held.fd)
                fd = _lock_fresh(self.path, exclusive=True, create=False)
            if fd is None:
                return
            if unlink and _same_file(fd, self.path):
                with thawed(self.path.parent):
                    self.path.unlink(missing_ok=True)
            os.close(fd)


def try_lock(path: Path, *, exclusive: bool, create: bool = True) -> FileLock | None:
    """Take a shared or exclusive lock on ``path`` without waiting.

    A shared lock joins an existing shared lock of this process; any other combination
    within this process is refused, as it would be between processes.

    Returns:
        The lock, or None when it is held incompatibly (here or by another process), or
        when ``create`` is False and the file does not exist.

    Raises:
        StorageError: the lock file could not be opened or locked.
    """
    key = str(path)
    with _GUARD:
        held = _POOL.get(key)
        if held is not None:
            if exclusive or held.exclusive:
                return None
            held.count += 1
            return FileLock(path=path, exclusive=False)
        try:
            fd = _lock_fresh(path, exclusive=exclusive, create=create)
        except OSError as exc:
            raise StorageError(f"cannot lock {path}: {exc.strerror or exc}") from exc
        if fd is None:
            return None
        _POOL[key] = _Held(fd=fd, exclusive=exclusive, count=1)
        return FileLock(path=path, exclusive=exclusive)


def _lock_fresh(path: Path, *, exclusive: bool, create: bool) -> int | None:
    for _ in range(_SANITY_RETRIES):
        try:
            fd = _open(path, exclusive=exclusive, create=create)
        except FileNotFoundError:
            if create:
                raise
            return None
        if not _try_lockf(fd, exclusive):
            os.close(fd)
            return None
        if _same_file(fd, path):
            return fd
        # The file was deleted or replaced between open and lock: the lock is void.
        os.close(fd)
        if not create:
            return None
    raise OSError(errno.EAGAIN, "lock file keeps being replaced", str(path))


async def lock_exclusive_wait(path: Path) -> FileLock:
    """Take an exclusive lock on ``path``, waiting (in a thread) while another process has it.

    Within this process the caller must already serialise users of ``path`` (an asyncio
    lock), since record locks never make a process wait for itself.

    Raises:
        StorageError: the lock file could not be opened or locked, or this process already
            holds it.
    """
    while True:
        lock = try_lock(path, exclusive=True)
        if lock is not None:
            return lock
        with _GUARD:
            if str(path) in _POOL:
                raise StorageError(f"{path} is already locked by this process")
        await _wait_unlocked(path)


@asynccontextmanager
async def holding_exclusive(path: Path, *, unlink: bool = False) -> AsyncIterator[FileLock]:
    """Hold an exclusive lock on ``path`` for the block, creating its directory first.

    Creates the directory in a worker thread, then waits as `lock_exclusive_wait` does
    (so the caller serialises users of ``path`` within this process too).

    Args:
        path: the lock file.
        unlink: delete the lock file on release, as git-annex does with transfer locks.

    Raises:
        StorageError: the directory could not be created, or the lock file could not be
            opened or locked.
    """
    try:
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {path.parent}: {exc}") from exc
    held = await lock_exclusive_wait(path)
    try:
        yield held
    finally:
        held.release(unlink=unlink)


async def _wait_unlocked(path: Path) -> None:
    """Block (in a thread) until another process lets go of ``path``, then let go too."""
    try:
        fd = _open(path, exclusive=True, create=True)
    except OSError as exc:
        raise StorageError(f"cannot lock {path}: {exc.strerror or exc}") from exc
    future = asyncio.get_running_loop().run_in_executor(None, fcntl.lockf, fd, fcntl.LOCK_EX)
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        # The thread may still get the lock later; closing the descriptor then drops it.
        future.add_done_callback(lambda _f: os.close(fd))
        raise
    except OSError as exc:
        os.close(fd)
        raise StorageError(f"cannot lock {path}: {exc.strerror or exc}") from exc
    # Closing drops the lock; `try_lock` takes it again through the pool.
    os.close(fd)
