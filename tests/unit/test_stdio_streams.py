"""Stdio streams for real: FdStream over a pipe (reads gather what waits, each result its
own bytes), and ProcessStream sending a file region to a child."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from annexproxy.errors import NodeUnavailable
from annexproxy.transports.process import ProcessStream
from annexproxy.transports.streams import PIPE_READ, FdStream


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_gathers_what_waits_and_keeps_earlier_results(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    stream = FdStream(read_fd, write_fd)

    async def run() -> list[bytes]:
        got = []
        for part in (b"a" * 1000, b"b" * 3000):
            os.write(write_fd, part)
        got.append(await stream.receive_some())
        os.write(write_fd, b"c" * 10)
        got.append(await stream.receive_some(4))
        got.append(await stream.receive_some())
        os.close(write_fd)
        got.append(await stream.receive_some())
        return got

    first, second, third, end = asyncio.run(run())
    # The inbox is reused between reads: results must not change under a later read.
    assert first == b"a" * 1000 + b"b" * 3000
    assert (second, third, end) == (b"cccc", b"cccccc", b"")


def test_a_read_is_at_most_pipe_read(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    stream = FdStream(read_fd, write_fd)
    total = PIPE_READ + 4096

    async def run() -> list[bytes]:
        writer = asyncio.create_task(
            asyncio.to_thread(os.write, write_fd, bytes(range(256)) * (total // 256))
        )
        parts, have = [], 0
        while have < total:
            part = await stream.receive_some()
            assert 0 < len(part) <= PIPE_READ
            parts.append(part)
            have += len(part)
        await writer
        return parts

    assert b"".join(asyncio.run(run())) == bytes(range(256)) * (total // 256)


def test_a_closed_descriptor_is_a_clear_error(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    stream = FdStream(read_fd, write_fd)
    os.close(read_fd)
    with pytest.raises(NodeUnavailable, match="reading from the client failed"):
        asyncio.run(stream.receive_some())


def test_process_stream_sends_a_file_region(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    source = tmp_path / "object"
    source.write_bytes(data)
    out = tmp_path / "copy"

    async def run() -> tuple[int, int | None]:
        stream = await ProcessStream.start(["sh", "-c", f"cat > '{out}'"])
        fd = os.open(source, os.O_RDONLY)
        try:
            sent = await stream.send_file(fd, 1000, len(data))  # runs past the end
        finally:
            os.close(fd)
        return sent, await stream.aclose()

    sent, status = asyncio.run(run())
    assert (sent, status) == (len(data) - 1000, 0)
    assert out.read_bytes() == data[1000:]
