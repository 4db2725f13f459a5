"""SpecialRemoteStorage's checkpresent and remove follow git-annex's chunk rules.

git-annex (Remote/Helper/Chunked.hs) logs a layout it found only speculatively (the
current chunk size's, absent from the chunk log), logs every chunk size it tried as
removed, and raises a presence error only when no later layout answered.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from annexproxy.errors import NodeUnavailable
from annexproxy.keys import Key
from annexproxy.special import chunking
from annexproxy.special.backend import StoreSession
from annexproxy.special.directory import DirectoryBackend
from annexproxy.special.storage import SpecialRemoteStorage
from annexproxy.storage.contentlock import try_lock
from annexproxy.testing.storage_conformance import MemoryChunkLog, store
from annexproxy.uuids import RepoUUID

UUID = RepoUUID("16e4c38d-ff44-4d84-8615-69ede6414762")
DATA = bytes(range(256)) * 10  # 2560 bytes: 3 chunks of 1000


class ChunksUnreachable:
    """A directory backend whose chunk objects cannot be asked about."""

    def __init__(self, inner: DirectoryBackend) -> None:
        self.inner = inner

    def store(self, name: Key, size: int | None) -> AbstractAsyncContextManager[StoreSession]:
        return self.inner.store(name, size)

    def retrieve(self, name: Key, offset: int = 0) -> AsyncIterator[bytes]:
        return self.inner.retrieve(name, offset)

    def local_path(self, name: Key) -> Path | None:
        return self.inner.local_path(name)

    async def present(self, name: Key) -> bool:
        if name.is_chunk:
            raise NodeUnavailable("chunks unreachable")
        return await self.inner.present(name)

    async def remove(self, name: Key) -> None:
        await self.inner.remove(name)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_checkpresent_logs_a_speculative_layout(tmp_path: Path) -> None:
    async def go() -> None:
        first = MemoryChunkLog()
        key = await store(
            SpecialRemoteStorage(
                UUID, DirectoryBackend(tmp_path), chunk_size=1000, chunk_log=first
            ),
            DATA,
        )
        assert first.fields(key) == [f"{UUID}:1000 3"]
        # Another gateway whose branch lacks the chunk log finds the chunks and logs them.
        other = MemoryChunkLog()
        storage = SpecialRemoteStorage(
            UUID, DirectoryBackend(tmp_path), chunk_size=1000, chunk_log=other
        )
        assert await storage.checkpresent(key)
        assert other.fields(key) == [f"{UUID}:1000 3"]

    asyncio.run(go())


def test_remove_logs_every_chunk_size_tried(tmp_path: Path) -> None:
    async def go() -> None:
        log = MemoryChunkLog()
        plain = SpecialRemoteStorage(UUID, DirectoryBackend(tmp_path), chunk_log=log)
        key = await store(plain, DATA)  # stored unchunked, then the remote chunks
        chunked = SpecialRemoteStorage(
            UUID, DirectoryBackend(tmp_path), chunk_size=1000, chunk_log=log
        )
        assert await chunked.checkpresent(key)
        assert log.fields(key) == []  # the unchunked key is not logged
        await chunked.remove(key)
        assert not await chunked.checkpresent(key)
        assert log.fields(key) == [f"{UUID}:1000 0"]

    asyncio.run(go())
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_presence_errors_deferred_as_git_annex_does(tmp_path: Path) -> None:
    async def go() -> None:
        log = MemoryChunkLog()
        key = await store(
            SpecialRemoteStorage(UUID, DirectoryBackend(tmp_path), chunk_log=log), DATA
        )
        chunked_first = SpecialRemoteStorage(
            UUID, ChunksUnreachable(DirectoryBackend(tmp_path)), chunk_size=1000, chunk_log=log
        )
        # The chunk layout errs, the unchunked key after it answers: present.
        log.logs[key] = f"1s {UUID}:1000 3\n".encode()
        assert await chunked_first.checkpresent(key)
        await SpecialRemoteStorage(UUID, DirectoryBackend(tmp_path)).remove(key)
        # A later layout found missing forgets the error (git-annex's checklists)...
        assert not await chunked_first.checkpresent(key)
        # ...but when the layout that erred is the last one tried, its error is raised
        # (a remote not chunking now tries the unchunked key first, the log's after).
        log.logs[key] = f"1s {UUID}:1000 3\n".encode()
        unchunked = SpecialRemoteStorage(
            UUID, ChunksUnreachable(DirectoryBackend(tmp_path)), chunk_log=log
        )
        with pytest.raises(NodeUnavailable):
            await unchunked.checkpresent(key)

    asyncio.run(go())


def test_speculative_layout_for_any_sized_key() -> None:
    # git-annex's chunkKeys adds the current chunk size's layout for every key with a
    # size, unstable ones included (only storing skips chunking them).
    url = Key.parse("URL-s2560--http&c%%example.com%f")
    assert not chunking.chunkable(url)
    assert chunking.layouts(url, 1000, []) == [[url], chunking.chunk_keys(url, 1000, 3)]
    unsized = Key.parse("URL--http&c%%example.com%f")
    assert chunking.layouts(unsized, 1000, []) == [[unsized]]


def test_a_concurrent_upload_waits_and_finds_the_content(tmp_path: Path) -> None:
    key = Key.parse(
        "SHA256E-s2560--" + hashlib.sha256(DATA).hexdigest()  # the content's real key
    )
    lock_dir = tmp_path / "annex" / "transfer" / "upload" / UUID
    lock_file = lock_dir / ("lck." + key.keyfile())

    async def go() -> None:
        log = MemoryChunkLog()
        remote = tmp_path / "remote"
        remote.mkdir()
        one, two = (
            SpecialRemoteStorage(
                UUID, DirectoryBackend(remote), chunk_size=1000, chunk_log=log, lock_dir=lock_dir
            )
            for _ in range(2)
        )
        async with one.upload(key) as first:
            assert first.already_have is None
            second_started = asyncio.Event()

            async def second() -> bool:
                second_started.set()
                async with two.upload(key) as upload:
                    return upload.already_have is not None

            waiting = asyncio.create_task(second())
            await second_started.wait()
            assert try_lock(lock_file, exclusive=True) is None  # held
            await first.write(DATA)
            await first.commit(sender_valid=True)
        assert await waiting  # ALREADY-HAVE: nothing rewritten
        assert log.fields(key) == [f"{UUID}:1000 3"]

    asyncio.run(go())
    assert not lock_file.exists()
