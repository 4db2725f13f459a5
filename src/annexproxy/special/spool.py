"""Space for the temp files a gateway spools transfers to, within ``annex.diskreserve``.

Owns the check git-annex makes before it downloads (``checkDiskSpace``) and that its
gateway skips when it spools for a special remote: before a spool file grows by some
bytes, the spool directory's file system must keep ``annex.diskreserve`` free after the
bytes of every spool of this process still to be written there. A `SpoolClaim` holds
what one spool may still write; it is released when the spool ends, on every path.
The arithmetic is `annexproxy.space.reserve`; this module only measures free space.
It does not create the spool files (their owner does), and deletes only those that
dead processes left (`sweep`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from annexproxy.errors import OutOfSpace, StorageError
from annexproxy.space.reserve import rough_size, shortfall

GROWTH = 16 * 1024 * 1024
"""How much more a spool of unknown length claims each time it outgrows its claim."""

_CLAIMED: dict[Path, int] = {}
"""Bytes claimed and not yet written, by spool directory, over this process's spools."""
_GUARD = threading.Lock()
"""Claims are made from the event loop and from worker threads (spool set-up)."""


def free_bytes(directory: Path) -> int:
    """Bytes free to unprivileged users on ``directory``'s file system.

    Raises:
        OSError: the directory cannot be examined.
    """
    return shutil.disk_usage(directory).free


class SpoolArea:
    """A spool directory and the reserve its file system must keep."""

    def __init__(
        self, directory: Path, reserve: int, *, free: Callable[[Path], int] = free_bytes
    ) -> None:
        """Spool to ``directory`` keeping ``reserve`` bytes free (``annex.diskreserve``).

        Args:
            directory: where spool files go (the gateway's ``annex/tmp``).
            reserve: bytes to leave free.
            free: measures free bytes (injected by tests).
        """
        self.directory = directory
        self.reserve = reserve
        self._free = free

    def claim(self, what: str, need: int) -> SpoolClaim:
        """Claim room to write ``need`` bytes of ``what`` (a key).

        Raises:
            OutOfSpace: the file system would keep less than the reserve free.
            StorageError: the spool directory cannot be created.
        """
        claim = SpoolClaim(self, what)
        claim.grow(need)
        return claim

    def _take(self, what: str, need: int) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot spool {what}: cannot create {self.directory}: {exc}"
            ) from exc
        try:
            free: int | None = self._free(self.directory)
        except OSError:
            free = None  # as git-annex when getDiskFree cannot tell: go ahead
        with _GUARD:
            others = _CLAIMED.get(self.directory, 0)
            missing = (
                0
                if free is None
                else shortfall(need=need, free=free, reserve=self.reserve, in_progress=others)
            )
            if missing <= 0:
                _CLAIMED[self.directory] = others + need
                return
        raise OutOfSpace(
            f"not enough free space to spool {what} in {self.directory}: need "
            f"{rough_size(missing)} more to keep annex.diskreserve "
            f"({rough_size(self.reserve)}) free; free some space there or lower "
            "annex.diskreserve in the gateway repository",
            key=what,
            needed=missing,
        )

    def _give_back(self, count: int) -> None:
        with _GUARD:
            left = _CLAIMED.get(self.directory, 0) - count
            if left > 0:
                _CLAIMED[self.directory] = left
            else:
                _CLAIMED.pop(self.directory, None)


class SpoolClaim:
    """Room one spool may still write; `release` gives back what it did not use."""

    def __init__(self, area: SpoolArea, what: str) -> None:
        self._area = area
        self._what = what
        self._left = 0
        self._released = False

    @property
    def left(self) -> int:
        """Bytes claimed and not yet written."""
        return self._left

    def grow(self, need: int) -> None:
        """Claim ``need`` bytes more.

        Raises:
            OutOfSpace: the file system would keep less than the reserve free.
            StorageError: the spool directory cannot be created.
        """
        if need <= 0:
            return
        self._area._take(self._what, need)
        self._left += need

    def wrote(self, count: int) -> None:
        """Account ``count`` bytes written; claim more (in `GROWTH` steps) past the claim.

        Raises:
            OutOfSpace: more room was needed and the reserve would not stay free.
        """
        if count > self._left:
            self.grow(max(GROWTH, count - self._left))
        self._left -= count
        self._area._give_back(count)

    def release(self) -> None:
        """Give back what was claimed and not written (idempotent)."""
        if not self._released:
            self._released = True
            self._area._give_back(self._left)
            self._left = 0


def temp_prefix(what: str) -> str:
    """The name prefix of this process's spool files of kind ``what`` (``store``, ...).

    It carries the host and process id, so that `sweep` can tell the files of processes
    that died (a gateway killed mid-transfer) from those of running ones.
    """
    return f"annexproxy-{what}-{_host()}-{os.getpid()}-"


def sweep(directory: Path, what: str) -> list[Path]:
    """Delete the spool files of kind ``what`` that dead processes on this host left.

    Returns:
        The files deleted.
    """
    gone = []
    for entry in dead_leftovers(directory, f"annexproxy-{what}-{_host()}-"):
        with contextlib.suppress(OSError):
            entry.unlink()
            gone.append(entry)
    return gone


def dead_leftovers(directory: Path, prefix: str) -> list[Path]:
    """Entries of ``directory`` named ``<prefix><pid>-...`` whose process has ended.

    The prefix names this host, so only processes that could be asked are judged.
    """
    found = []
    with contextlib.suppress(OSError):
        for entry in directory.iterdir():
            pid = entry.name.removeprefix(prefix).split("-", 1)[0]
            if entry.name.startswith(prefix) and pid.isdigit() and not _alive(int(pid)):
                found.append(entry)
    return found


def _host() -> str:
    return socket.gethostname().replace("/", "_").replace("-", "_") or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True
