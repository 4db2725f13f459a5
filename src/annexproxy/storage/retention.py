"""Retention timestamps: the ``<kf>.rtm`` / ``<kf>.rtl`` files next to an object (branch.md 10).

Owns reading, writing and deleting retention times. git-annex writes ``<kf>.rtm`` when it
serves LOCKCONTENT, holding the expiry time (POSIX seconds, fractional, followed by ``s``)
600 s ahead, so the content stays undroppable even if the serving process dies; writers
take an exclusive record lock on ``<kf>.rtl``, keep the later of the old and new times and
replace the file atomically. A normal release deletes both files again. This module must
not decide whether content may go beyond "the retention time is in the future".
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from decimal import Decimal
from pathlib import Path

from annexproxy.errors import StorageError
from annexproxy.storage.contentlock import FileLock, lock_exclusive_wait, thawed, try_lock

#: How long LOCKCONTENT protects content after the lock was taken (git-annex: 10 minutes).
RETENTION_SECONDS = 600

# timestamp := ["+"|"-"] DIGIT+ [ "." DIGIT+ ] [ "s" ]   (branch.md section 3)
_TIMESTAMP = re.compile(r"([+-]?[0-9]+(?:\.[0-9]+)?)s?\Z")

# rtm path -> (expiry this process wrote, number of our locks relying on it)
_WRITTEN: dict[str, tuple[Decimal, int]] = {}


def rtm_path(obj: Path) -> Path:
    """The retention-time file of an object file."""
    return obj.with_name(obj.name + ".rtm")


def rtl_path(obj: Path) -> Path:
    """The lock file guarding the retention-time file."""
    return obj.with_name(obj.name + ".rtl")


def parse_timestamp(text: str) -> Decimal | None:
    """Parse a git-annex timestamp (``1795624946.5s``); None if it is not one."""
    match = _TIMESTAMP.match(text.strip())
    return Decimal(match.group(1)) if match else None


def format_timestamp(value: Decimal) -> str:
    """Format a POSIX time as git-annex does: decimal, trailing zeros dropped, then ``s``."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "s"


def read_expiry(obj: Path) -> Decimal | None:
    """The retention time of an object, or None when there is none (or it is unreadable)."""
    try:
        return parse_timestamp(rtm_path(obj).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def protected(obj: Path, now: float) -> bool:
    """True while the object's retention time lies in the future."""
    expiry = read_expiry(obj)
    return expiry is not None and expiry > Decimal(repr(now))


async def _guard(obj: Path) -> FileLock:
    path = rtl_path(obj)
    lock = try_lock(path, exclusive=True)
    return lock if lock is not None else await lock_exclusive_wait(path)


def _write_atomically(target: Path, text: str, tmpdir: Path) -> None:
    tmpdir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmpdir, prefix="rtm.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        with thawed(target.parent):
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


async def remember(obj: Path, tmpdir: Path, now: float) -> Decimal:
    """Extend the object's retention to ``now`` + 600 s (keeping a later existing time).

    Args:
        obj: the object file.
        tmpdir: a directory on the same file system for the temporary file (othertmp).
        now: POSIX time.

    Returns:
        The expiry time now recorded.

    Raises:
        StorageError: the retention file could not be written.
    """
    guard = await _guard(obj)
    try:
        wanted = Decimal(repr(now)).quantize(Decimal("0.000001")) + RETENTION_SECONDS
        existing = read_expiry(obj)
        expiry = max(wanted, existing) if existing is not None else wanted
        if existing is None or expiry > existing:
            _write_atomically(rtm_path(obj), format_timestamp(expiry), tmpdir)
    except OSError as exc:
        raise StorageError(f"cannot write retention time {rtm_path(obj)}: {exc}") from exc
    finally:
        guard.release()
    _, holders = _WRITTEN.get(str(rtm_path(obj)), (expiry, 0))
    _WRITTEN[str(rtm_path(obj))] = (expiry, holders + 1)
    return expiry


async def forget(obj: Path) -> None:
    """A lock of ours is released normally: delete the retention files once nobody needs them.

    The ``.rtm`` file is only deleted if it still holds the time this process wrote.

    Raises:
        StorageError: the files could not be deleted.
    """
    name = str(rtm_path(obj))
    expiry, holders = _WRITTEN.get(name, (Decimal(0), 1))
    if holders > 1:
        _WRITTEN[name] = (expiry, holders - 1)
        return
    _WRITTEN.pop(name, None)
    if not obj.parent.exists():
        return
    guard = await _guard(obj)
    ours = read_expiry(obj) == expiry
    try:
        if ours:
            with thawed(obj.parent):
                rtm_path(obj).unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot delete retention time {rtm_path(obj)}: {exc}") from exc
    finally:
        guard.release(unlink=ours)


async def clear_expired(obj: Path) -> None:
    """Delete an expired retention time (called while holding the exclusive content lock).

    Raises:
        StorageError: the files could not be deleted.
    """
    if not rtm_path(obj).exists():
        return
    guard = await _guard(obj)
    try:
        with thawed(obj.parent):
            rtm_path(obj).unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot delete retention time {rtm_path(obj)}: {exc}") from exc
    finally:
        guard.release(unlink=True)
