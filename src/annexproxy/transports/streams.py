"""Byte streams the P2P driver runs over: the protocol, stdio, and an in-memory pair.

A `ByteStream` moves bytes and, where the operating system allows, sends a file region
without copying it through Python (sendfile). Blocking stdio is served from worker
threads so the event loop stays free for locks and timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import select
import stat
from typing import Protocol

from annexproxy.errors import NodeUnavailable

CHUNK = 1 << 20
PIPE_READ = CHUNK
"""Most bytes one read from a pipe gathers."""


class ByteStream(Protocol):
    """A bidirectional byte stream."""

    async def receive_some(self, max_bytes: int = CHUNK) -> bytes:
        """Return some received bytes; ``b""`` at end of stream."""
        ...

    async def send_all(self, data: bytes) -> None:
        """Send all of ``data``.

        Raises:
            NodeUnavailable: the peer went away.
        """
        ...

    async def send_file(self, fd: int, offset: int, count: int) -> int:
        """Send ``count`` bytes of the open file ``fd`` from ``offset``; return the count sent.

        Reads with explicit offsets (the descriptor's position is not used). Fewer than
        ``count`` means the file ended early.

        Raises:
            NodeUnavailable: the peer went away.
        """
        ...


def _widen_pipe(fd: int) -> None:
    """Give a pipe a 1 MiB buffer where Linux allows it (fewer, larger reads and writes)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None:
        return
    with contextlib.suppress(OSError):
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, set_size, CHUNK)


def _sendfile_disabled() -> bool:
    # Kill switch, like aiohttp's AIOHTTP_NOSENDFILE.
    return bool(os.environ.get("ANNEXPROXY_NOSENDFILE"))


class FdStream:
    """A stream over two blocking file descriptors (stdin/stdout of annexproxy-shell)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._inbox = bytearray(PIPE_READ)
        self._reading = False
        for fd in (read_fd, write_fd):
            _widen_pipe(fd)

    async def receive_some(self, max_bytes: int = CHUNK) -> bytes:
        """Read from the input descriptor in a worker thread.

        What is already waiting is gathered in the same thread hop, up to ``max_bytes``
        (at most `PIPE_READ`): a pipe hands out at most its buffer per read, and an
        upload should not cost a hop (and a write per node) for every 64 KiB. The worker
        reads into one reused buffer and the bytes are made here, on the event loop's
        thread: blocks of this size made and freed in rotating worker threads spread
        over glibc's per-thread heaps and fragment them (1 MiB reads once grew
        annexproxy-shell to 146 MB during an upload).

        Raises:
            NodeUnavailable: the read failed, or an earlier, cancelled one still runs.
        """
        if self._reading:
            raise NodeUnavailable("an abandoned read from the client is still under way")
        try:
            count = await asyncio.to_thread(self._read_available, min(max_bytes, PIPE_READ))
        except OSError as exc:
            raise NodeUnavailable(f"reading from the client failed: {exc}") from exc
        return bytes(memoryview(self._inbox)[:count])

    def _read_available(self, max_bytes: int) -> int:
        self._reading = True
        try:
            view = memoryview(self._inbox)[:max_bytes]
            total = os.readv(self._read_fd, [view])
            while 0 < total < max_bytes:
                ready, _, _ = select.select([self._read_fd], [], [], 0)
                if not ready:
                    break
                more = os.readv(self._read_fd, [view[total:]])
                if not more:
                    break  # end of stream: the next read reports it
                total += more
            return total
        finally:
            self._reading = False

    async def send_all(self, data: bytes) -> None:
        """Write everything to the output descriptor."""
        try:
            await asyncio.to_thread(self._write_all, data)
        except OSError as exc:
            raise NodeUnavailable(f"writing to the client failed: {exc}") from exc

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._write_fd, view)
            view = view[written:]

    async def send_file(self, fd: int, offset: int, count: int) -> int:
        """Send a file region with sendfile (chunked pread/write fallback)."""
        try:
            return await asyncio.to_thread(self._send_file, fd, offset, count)
        except OSError as exc:
            raise NodeUnavailable(f"sending an object to the client failed: {exc}") from exc

    def _send_file(self, fd: int, offset: int, count: int) -> int:
        sent = 0
        if not _sendfile_disabled():
            try:
                while sent < count:
                    n = os.sendfile(self._write_fd, fd, offset + sent, count - sent)
                    if n == 0:
                        return sent
                    sent += n
                return sent
            except OSError:
                if sent:
                    raise
        while sent < count:
            chunk = os.pread(fd, min(CHUNK, count - sent), offset + sent)
            if not chunk:
                break
            self._write_all(chunk)
            sent += len(chunk)
        return sent
