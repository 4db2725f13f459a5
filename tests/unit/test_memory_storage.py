"""MemoryStorage runs the shared storage conformance suite, plus a few memory-only checks."""

from __future__ import annotations

import pytest

from annexproxy.errors import StorageError, VerificationFailed
from annexproxy.storage.base import Storage
from annexproxy.storage.memory import MemoryStorage
from annexproxy.testing.storage_conformance import (
    PresenceLog,
    StorageConformance,
    StorageFactory,
    content,
    key_of,
    read_all,
    run,
)


class TestMemoryConformance(StorageConformance):
    reads_survive_removal = True

    @pytest.fixture
    def make_storage(self) -> StorageFactory:
        def make(*, presence_log: PresenceLog | None = None) -> Storage:
            return MemoryStorage(presence_log=presence_log)

        return make


def test_store_nowait_verifies() -> None:
    storage = MemoryStorage()
    data = content(100)
    with pytest.raises(VerificationFailed):
        storage.store_nowait(key_of(data), data + b"x")
    storage.store_nowait(key_of(data), data)
    assert storage.keys() == {key_of(data)}


def test_injected_clock_bounds_removal() -> None:
    now = [100.0]
    storage = MemoryStorage(monotonic=lambda: now[0])
    key = key_of(b"abc")
    storage.store_nowait(key, b"abc")

    async def body() -> None:
        deadline = await storage.timestamp() + 5
        now[0] += 5
        with pytest.raises(StorageError, match="deadline"):
            await storage.remove(key, before=deadline)
        assert await read_all(storage, key) == b"abc"

    run(body())


def test_source_notices_replacement() -> None:
    storage = MemoryStorage()
    key = key_of(b"abc")
    storage.store_nowait(key, b"abc")

    async def body() -> None:
        async with storage.retrieve(key) as src:
            assert src.unchanged()
            storage.store_nowait(key, b"abc")
            assert not src.unchanged()

    run(body())
