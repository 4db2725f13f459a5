r"""The receive buffer: bounded line extraction and exact-length payload reads.

A line longer than `MAX_LINE` bytes without a newline is a fatal protocol error, as in
git-annex (wire.md 2.2). A ``\\r`` before ``\\n`` is stripped. Pure: no I/O.
"""

from __future__ import annotations

from annexproxy.errors import RemoteProtocolError

MAX_LINE = 32768


class ReceiveBuffer:
    """Bytes received and not yet consumed."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._scanned = 0

    def __len__(self) -> int:
        return len(self._data)

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._data += data

    def next_line(self) -> bytes | None:
        """Remove and return the next complete line without its terminator, or None.

        Raises:
            RemoteProtocolError: (fatal) more than `MAX_LINE` bytes without a newline.
        """
        index = self._data.find(b"\n", self._scanned)
        if index < 0:
            self._scanned = len(self._data)
            if len(self._data) > MAX_LINE:
                raise RemoteProtocolError(
                    f"line longer than {MAX_LINE} bytes without a newline", fatal=True
                )
            return None
        if index > MAX_LINE:
            raise RemoteProtocolError(
                f"line longer than {MAX_LINE} bytes without a newline", fatal=True
            )
        line = bytes(self._data[:index])
        del self._data[: index + 1]
        self._scanned = 0
        return line[:-1] if line.endswith(b"\r") else line

    def take(self, limit: int) -> bytes:
        """Remove and return up to ``limit`` bytes."""
        chunk = bytes(self._data[:limit])
        del self._data[:limit]
        self._scanned = 0
        return chunk
