"""Making a directory's entries durable: the one ``fsync`` of a directory the project uses.

Owns only that: after a file is renamed or created in a directory, syncing the
directory makes the name itself survive a crash (POSIX; ext4 mostly does it anyway).
"""

from __future__ import annotations

import os


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Fsync ``directory`` itself.

    Raises:
        OSError: it cannot be opened or synced.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
