"""Opening a local object file for reading, and reading a region of it in pieces.

Sources that hold a descriptor (`ObjectSource.fd`) open it with `open_object`; reads use
explicit offsets (``pread``, in a worker thread), so the descriptor's position is never
used and one descriptor can serve sendfile and piecewise reads alike.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from annexproxy.errors import KeyNotPresent, StorageError
from annexproxy.keys import Key

READ_LIMIT = 4 << 20
"""The largest single read, whatever piece size a caller asks for."""


def open_object(path: str | os.PathLike[str], key: Key) -> int:
    """Open the object file of ``key`` read-only; the caller closes the descriptor.

    Raises:
        KeyNotPresent: the file is gone (removed just now).
        StorageError: it cannot be opened.
    """
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise KeyNotPresent(f"{key} was removed meanwhile", key=str(key)) from exc
    except OSError as exc:
        raise StorageError(f"{key}: cannot open {os.fsdecode(path)}: {exc}") from exc


async def pread_pieces(
    fd: int, start: int, end: int, piece_size: int, name: str
) -> AsyncIterator[bytes]:
    """Yield bytes ``[start, end)`` of ``fd`` in order, at most ``piece_size`` at a time.

    Raises:
        StorageError: reading failed, or the file (``name``, for the message) is shorter
            than ``end``.
    """
    step = max(1, min(piece_size, READ_LIMIT))
    pos = start
    while pos < end:
        want = min(step, end - pos)
        try:
            piece = await asyncio.to_thread(os.pread, fd, want, pos)
        except OSError as exc:
            raise StorageError(f"reading {name} failed: {exc}") from exc
        if not piece:
            raise StorageError(f"{name} shrank while it was read")
        pos += len(piece)
        yield piece
