"""In-memory byte streams for driving sessions in tests without processes or sockets."""

from __future__ import annotations

import os
from collections.abc import Sequence


class ScriptedStream:
    """A `ByteStream` that delivers fixed input pieces, then EOF, and records all output."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self._pieces = [p for p in pieces if p]
        self.output = bytearray()

    async def receive_some(self, max_bytes: int = 1 << 20) -> bytes:
        """Return the next input piece (at most ``max_bytes``), or ``b""`` at the end."""
        if not self._pieces:
            return b""
        piece = self._pieces[0]
        if len(piece) > max_bytes:
            self._pieces[0] = piece[max_bytes:]
            return piece[:max_bytes]
        self._pieces.pop(0)
        return piece

    async def send_all(self, data: bytes) -> None:
        """Record output."""
        self.output += data

    async def send_file(self, fd: int, offset: int, count: int) -> int:
        """Record a file region as output."""
        data = os.pread(fd, count, offset)
        self.output += data
        return len(data)
