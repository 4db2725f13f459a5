"""Reads from a special remote resume where they broke off, and start at the asked offset.

A backend that breaks its stream once after some bytes stands for an S3 connection
reset or a disk read error; the calls it records show which object was asked for from
which offset, so a test can tell a resumed read from one that started over.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from annexproxy.errors import KeyNotPresent, NodeUnavailable, OutOfSpace, StorageError
from annexproxy.keys import Key
from annexproxy.special import chunking
from annexproxy.special.backend import StoreSession
from annexproxy.special.directory import DirectoryBackend
from annexproxy.special.storage import SpecialRemoteStorage
from annexproxy.testing.storage_conformance import MemoryChunkLog, store
from annexproxy.uuids import RepoUUID

UUID = RepoUUID("16e4c38d-ff44-4d84-8615-69ede6414762")
DATA = bytes(range(256)) * 10  # 2560 bytes: 3 chunks of 1000
KEY = Key.parse("SHA256E-s2560--" + hashlib.sha256(DATA).hexdigest())


class Breaking:
    """A directory backend whose reads break after ``break_after`` bytes, ``breaks`` times.

    Reads come in pieces of ``piece`` bytes and have no local file (no sendfile).
    """

    def __init__(self, inner: DirectoryBackend, *, break_after: int, breaks: int = 1) -> None:
        self.inner = inner
        self.break_after = break_after
        self.breaks = breaks
        self.piece = 100
        self.only: int | None = None  # break only reads of this chunk
        self.calls: list[tuple[int | None, int]] = []  # (chunk number, offset)
        self.error: StorageError = NodeUnavailable("connection reset by peer")

    def store(self, name: Key, size: int | None) -> AbstractAsyncContextManager[StoreSession]:
        return self.inner.store(name, size)

    async def retrieve(self, name: Key, offset: int = 0) -> AsyncIterator[bytes]:
        self.calls.append((name.chunk_num, offset))
        sent = 0
        async for data in self.inner.retrieve(name, offset):
            for i in range(0, len(data), self.piece):
                chosen = self.only is None or self.only == name.chunk_num
                if chosen and self.breaks and sent >= self.break_after:
                    self.breaks -= 1
                    raise self.error
                piece = data[i : i + self.piece]
                sent += len(piece)
                yield piece

    def local_path(self, name: Key) -> Path | None:
        return None

    async def present(self, name: Key) -> bool:
        return await self.inner.present(name)

    async def remove(self, name: Key) -> None:
        await self.inner.remove(name)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def no_wait(seconds: float) -> None:
    return None


async def read(storage: SpecialRemoteStorage, key: Key, offset: int = 0) -> bytes:
    async with storage.retrieve(key, offset) as source:
        got = b"".join([chunk async for chunk in source.chunks(300)])
        assert len(got) == source.length
        return got


def storage_over(
    tmp_path: Path, chunk_size: int | None, **kwargs: int
) -> tuple[SpecialRemoteStorage, Breaking]:
    log = MemoryChunkLog()
    plain = SpecialRemoteStorage(
        UUID, DirectoryBackend(tmp_path), chunk_size=chunk_size, chunk_log=log
    )
    asyncio.run(store(plain, DATA, KEY))
    backend = Breaking(DirectoryBackend(tmp_path), **kwargs)
    storage = SpecialRemoteStorage(
        UUID, backend, chunk_size=chunk_size, chunk_log=log, sleep=no_wait
    )
    return storage, backend


@pytest.mark.parametrize(
    ("positions", "expected"),
    [
        (0, (0, 0)),
        (999, (0, 999)),
        (1000, (1, 0)),
        (2559, (2, 559)),
        (2560, (2, 560)),
        (3000, (3, 0)),
    ],
)
def test_locate_finds_the_chunk_holding_a_byte(positions: int, expected: tuple[int, int]) -> None:
    names = chunking.chunk_keys(KEY, 1000, 3)
    assert chunking.locate(names, positions) == expected
    assert chunking.locate([KEY], positions) == (0, positions)


def test_an_unchunked_read_resumes_at_the_byte_it_stopped(tmp_path: Path) -> None:
    storage, backend = storage_over(tmp_path, None, break_after=1700)
    assert asyncio.run(read(storage, KEY)) == DATA
    assert backend.calls == [(None, 0), (None, 1700)]  # not started over


def test_a_chunked_read_resumes_in_the_chunk_it_stopped_in(tmp_path: Path) -> None:
    storage, backend = storage_over(tmp_path, 1000, break_after=300)
    backend.only = 2  # byte 1300 of the content
    assert asyncio.run(read(storage, KEY)) == DATA
    assert backend.calls == [(1, 0), (2, 0), (2, 300), (3, 0)]


def test_a_read_from_an_offset_starts_in_the_chunk_holding_it(tmp_path: Path) -> None:
    storage, backend = storage_over(tmp_path, 1000, break_after=10**9)
    assert asyncio.run(read(storage, KEY, 1500)) == DATA[1500:]
    assert backend.calls == [(2, 500), (3, 0)]  # chunk 1 is never read


def test_an_unchunked_read_from_an_offset_seeks(tmp_path: Path) -> None:
    storage, backend = storage_over(tmp_path, None, break_after=10**9)
    assert asyncio.run(read(storage, KEY, 2000)) == DATA[2000:]
    assert backend.calls == [(None, 2000)]


def test_resuming_is_bounded(tmp_path: Path) -> None:
    storage, backend = storage_over(tmp_path, None, break_after=500, breaks=100)
    with pytest.raises(NodeUnavailable, match="connection reset"):
        asyncio.run(read(storage, KEY))
    # The first read, then one per delay; each resumed where the last stopped.
    assert backend.calls == [(None, 0), (None, 500), (None, 1000), (None, 1500)]


@pytest.mark.parametrize(
    "error", [KeyNotPresent("gone", key=str(KEY)), OutOfSpace("no room to spool")]
)
def test_what_reading_again_cannot_fix_is_not_retried(tmp_path: Path, error: StorageError) -> None:
    storage, backend = storage_over(tmp_path, None, break_after=500)
    backend.error = error
    with pytest.raises(type(error)):
        asyncio.run(read(storage, KEY))
    assert backend.calls == [(None, 0)]


def test_failing_to_start_shows_before_the_source_is_handed_over(tmp_path: Path) -> None:
    storage, backend = storage_over(tmp_path, None, break_after=0, breaks=1)
    backend.error = OutOfSpace("no room to spool")

    async def go() -> None:
        with pytest.raises(OutOfSpace):
            async with storage.retrieve(KEY):
                pytest.fail("a source was handed over")  # pragma: no cover

    asyncio.run(go())


def test_a_short_object_is_read_again_then_reported(tmp_path: Path) -> None:
    storage, backend = storage_over(tmp_path, None, break_after=10**9)
    stored = next(tmp_path.rglob(KEY.keyfile() + "/" + KEY.keyfile()))
    stored.chmod(0o644)
    stored.write_bytes(DATA[:1000])  # truncated behind our back
    with pytest.raises(NodeUnavailable, match="ended at byte 1000 of 2560"):
        asyncio.run(read(storage, KEY))
    assert backend.calls == [(None, 0), (None, 1000), (None, 1000), (None, 1000)]


def test_directory_stores_sync_only_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)  # the directory backend calls os.fsync
    for fsync, name in ((False, "nosync"), (True, "sync")):
        synced.clear()
        top = tmp_path / name
        top.mkdir()
        plain = SpecialRemoteStorage(UUID, DirectoryBackend(top, fsync=fsync))
        asyncio.run(store(plain, DATA, KEY))
        # The file, the key's directory and the directory the key's directory went into.
        assert len(synced) == (3 if fsync else 0)
