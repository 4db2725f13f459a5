"""A byte stream to a child process's stdin/stdout (git-annex-shell, ssh, annexproxy-shell).

`ProcessStream.start` runs the command; `aclose` closes its input, waits a bounded time
for it to end and kills it otherwise, so no child outlives its owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from annexproxy.errors import NodeUnavailable
from annexproxy.transports.streams import CHUNK

EXIT_WAIT = 10.0


class ProcessStream:
    """The stdio of one child process as a `ByteStream`."""

    def __init__(self, proc: asyncio.subprocess.Process, argv: Sequence[str]) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        self._proc = proc
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        self._argv = list(argv)

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ProcessStream:
        """Start ``argv`` with piped stdin/stdout (stderr is inherited).

        Raises:
            NodeUnavailable: the program cannot be started.
        """
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                limit=CHUNK,
            )
        except OSError as exc:
            raise NodeUnavailable(f"cannot run {argv[0]}: {exc}") from exc
        return cls(proc, argv)

    async def receive_some(self, max_bytes: int = CHUNK) -> bytes:
        """Read some output; ``b""`` once the process closed its stdout."""
        try:
            return await self._stdout.read(max_bytes)
        except OSError as exc:
            raise NodeUnavailable(f"reading from {self._argv[0]} failed: {exc}") from exc

    async def send_all(self, data: bytes) -> None:
        """Write to the process's stdin.

        Raises:
            NodeUnavailable: the process has gone.
        """
        try:
            self._stdin.write(data)
            await self._stdin.drain()
        except (OSError, RuntimeError) as exc:
            raise NodeUnavailable(f"{self._argv[0]} went away: {exc}") from exc

    async def send_file(self, fd: int, offset: int, count: int) -> int:
        """Copy a file region to the process in bounded chunks (read off the event loop)."""
        sent = 0
        while sent < count:
            chunk = await asyncio.to_thread(os.pread, fd, min(CHUNK, count - sent), offset + sent)
            if not chunk:
                break
            await self.send_all(chunk)
            sent += len(chunk)
        return sent

    async def aclose(self) -> int | None:
        """Close stdin, wait for the process to end (killing it if it lingers).

        Returns:
            The exit status, or None if it had to be killed.
        """
        with contextlib.suppress(OSError, RuntimeError):
            self._stdin.close()
        try:
            async with asyncio.timeout(EXIT_WAIT):
                return await self._proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await self._proc.wait()
            return None

    async def kill(self) -> None:
        """End the process at once (a connection that cannot be left in a sane state)."""
        with contextlib.suppress(ProcessLookupError):
            self._proc.kill()
        with contextlib.suppress(OSError, RuntimeError):
            self._stdin.close()
        await self._proc.wait()
