"""The storage conformance suite over `SpecialRemoteStorage` and the external backend.

Each storage runs its own ``git-annex-remote-testdir`` program (tests/interop/
testdir_remote.py) on a fresh directory, chunked and not. The suite never closes a
storage, so the factory parks a task that closes the backend's programs when
``asyncio.run`` cancels the tasks left at the end of each test.
"""

from __future__ import annotations

import asyncio
from itertools import count
from pathlib import Path

import pytest

from annexproxy.special.external import ExternalBackend
from annexproxy.special.remote import SpecialRemote
from annexproxy.special.storage import SpecialRemoteStorage
from annexproxy.testing.storage_conformance import (
    MemoryChunkLog,
    PresenceLog,
    StorageConformance,
    StorageFactory,
)
from annexproxy.uuids import RepoUUID

UUID = RepoUUID("5b0ff1a4-6b5e-4c57-9c53-0a3c2d6c27e1")


async def _close_at_shutdown(backend: ExternalBackend) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        await backend.aclose()


class TestExternalUnchunked(StorageConformance):
    supports_resume = False
    locks_content = False
    chunk_size: int | None = None

    @pytest.fixture
    def make_storage(self, tmp_path: Path, program_on_path: Path) -> StorageFactory:
        numbers = count()
        parked: set[asyncio.Task[None]] = set()

        def make(*, presence_log: PresenceLog | None = None) -> SpecialRemoteStorage:
            top = tmp_path / f"remote{next(numbers)}"
            (top / "store").mkdir(parents=True)
            remote = SpecialRemote(
                uuid=UUID,
                name="ext",
                type="external",
                params={"externaltype": "testdir", "directory": str(top / "store")},
            )
            backend = ExternalBackend(remote, program="git-annex-remote-testdir", base=top)
            task = asyncio.get_running_loop().create_task(_close_at_shutdown(backend))
            parked.add(task)
            task.add_done_callback(parked.discard)
            return SpecialRemoteStorage(
                UUID,
                backend,
                chunk_size=self.chunk_size,
                chunk_log=MemoryChunkLog(),
                presence_log=presence_log,
            )

        return make


class TestExternalChunked(TestExternalUnchunked):
    chunk_size = 1000
