r"""The receive buffer: bounded line extraction and exact-length payload reads.

A line longer than `MAX_LINE` bytes without a newline is a fatal protocol error, as in
git-annex (wire.md 2.2). A ``\\r`` before ``\\n`` is stripped. Pure: no I/O.

Payload bytes are the bulk of what passes through: a received block that arrives while
nothing else is buffered is kept as it came, and a `take` of all of it hands it on
without a copy.
"""

from __future__ import annotations

from annexproxy.errors import RemoteProtocolError

MAX_LINE = 32768


class ReceiveBuffer:
    """Bytes received and not yet consumed."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._scanned = 0
        self._whole: bytes | None = None
        """A received block kept uncopied; only ever set while ``_data`` is empty."""

    def __len__(self) -> int:
        return len(self._data) + (len(self._whole) if self._whole is not None else 0)

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if not data:
            return
        if self._whole is None and not self._data and type(data) is bytes:
            self._whole = data  # immutable: safe to hold without a copy
            return
        self._merge()
        self._data += data

    def _merge(self) -> None:
        if self._whole is not None:
            self._data += self._whole
            self._whole = None

    def next_line(self) -> bytes | None:
        """Remove and return the next complete line without its terminator, or None.

        Raises:
            RemoteProtocolError: (fatal) more than `MAX_LINE` bytes without a newline.
        """
        self._merge()
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
        self._scanned = 0
        whole = self._whole
        if whole is not None and limit >= len(whole):
            self._whole = None
            return whole
        self._merge()
        chunk = bytes(memoryview(self._data)[:limit])
        del self._data[:limit]
        return chunk
