"""Early write-back of file data that will be fsynced: Linux ``sync_file_range``.

A fan-out writes the same object to several node repositories and fsyncs each one at
commit. Left alone, the kernel holds all of it dirty and the final fsyncs write it out
one after the other, after the last byte arrived. `WriteBack` asks the kernel to start
writing each piece (`WRITEBACK_STEP` bytes) as soon as it is complete, so the disk works
while the data still streams in and the fsync at commit has little left to do. Where
``sync_file_range`` is missing (not Linux), it does nothing; fsync alone stays correct.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

WRITEBACK_STEP = 8 << 20
_SYNC_FILE_RANGE_WRITE = 2

_Starter = Callable[[int, int, int], None]


def _load() -> _Starter | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library already loaded
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int

    def start(fd: int, offset: int, length: int) -> None:
        # Advisory: a failure (EIO is also reported by the fsync) changes nothing.
        call(fd, offset, length, _SYNC_FILE_RANGE_WRITE)

    return start


_START = _load()


class WriteBack:
    """Tracks how far a file was written and starts write-back of each full step.

    Not thread-safe by itself: call `written` from whoever writes the file (under the
    writer's own lock).
    """

    def __init__(self, fd: int, offset: int = 0, step: int = WRITEBACK_STEP) -> None:
        self._fd = fd
        self._started = offset
        self._step = step

    def written(self, end: int) -> None:
        """The file now holds bytes up to ``end``; start writing out completed steps."""
        if _START is None or end - self._started < self._step:
            return
        _START(self._fd, self._started, end - self._started)
        self._started = end
