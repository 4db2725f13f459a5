"""A conformance suite every `Storage` backend runs unchanged (STYLE.md habit 5).

Subclass `StorageConformance` in a test module (the subclass name must start with
``Test``) and override the `make_storage` fixture to return a factory that opens a fresh,
empty backend with the given presence log. The tests drive the backend only through the
`annexproxy.storage.base` protocol, each inside its own ``asyncio.run``, and synchronise on
events, never on sleeps. This module imports pytest; the library never imports it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, Protocol

import pytest

from annexproxy.errors import (
    ContentLocked,
    KeyNotPresent,
    NodeUnavailable,
    StorageError,
    VerificationFailed,
)
from annexproxy.keys import Key
from annexproxy.storage.base import Storage
from annexproxy.storage.hashing import compute_key

PresenceLog = Callable[[Key, bool], Awaitable[None]]


class StorageFactory(Protocol):
    """Opens a fresh, empty backend that reports presence changes to ``presence_log``."""

    def __call__(self, *, presence_log: PresenceLog | None = None) -> Storage:
        """Open the backend."""
        ...


def run(coro: Coroutine[Any, Any, object]) -> None:
    """Run one test coroutine in a fresh event loop."""
    asyncio.run(coro)


class MemoryChunkLog:
    """Chunk logs kept in a dict, for special-remote storages under test."""

    def __init__(self) -> None:
        self.logs: dict[Key, bytes] = {}

    async def read(self, key: Key) -> bytes:
        """The chunk log of ``key`` (empty when none)."""
        return self.logs.get(key, b"")

    async def change(self, key: Key, change: Callable[[bytes], bytes]) -> None:
        """Rewrite the chunk log of ``key``."""
        self.logs[key] = change(self.logs.get(key, b""))

    def fields(self, key: Key) -> list[str]:
        """The log's lines without their timestamps."""
        return [line.split(" ", 1)[1] for line in self.logs.get(key, b"").decode().splitlines()]


class PresenceRecorder:
    """A presence log that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[Key, bool]] = []

    async def __call__(self, key: Key, present: bool) -> None:
        """Record one presence change."""
        self.calls.append((key, present))


def content(size: int, seed: int = 0) -> bytes:
    """Deterministic test content of ``size`` bytes."""
    block = bytes((i * 7 + seed) % 251 for i in range(251))
    return (block * (size // len(block) + 1))[:size]


def key_of(data: bytes) -> Key:
    """The SHA256E key of ``data`` with a ``.bin`` extension."""
    return compute_key("SHA256E", data, extension=".bin")


async def store(
    storage: Storage, data: bytes, key: Key | None = None, *, sender_valid: bool = True
) -> Key:
    """Upload ``data`` (from the upload's offset on) and commit it; return its key.

    Raises:
        StorageError: the backend refused it.
    """
    key = key or key_of(data)
    async with storage.upload(key) as up:
        await up.write(data[up.offset :])
        await up.commit(sender_valid=sender_valid)
    return key


async def abandon(storage: Storage, key: Key, data: bytes) -> None:
    """Upload ``data`` (from the upload's offset on), then lose the connection.

    Raises:
        RuntimeError: always, from inside the upload, as a broken connection would.
    """
    async with storage.upload(key) as up:
        await up.write(data[up.offset :])
        raise RuntimeError("connection lost")


async def read_all(storage: Storage, key: Key, offset: int = 0, chunk_size: int = 1000) -> bytes:
    """Read an object through `Storage.retrieve`, checking the source's promises.

    Raises:
        KeyNotPresent: the content is not there.
    """
    async with storage.retrieve(key, offset) as src:
        pieces = [piece async for piece in src.chunks(chunk_size)]
        assert all(0 < len(p) <= chunk_size for p in pieces)
        data = b"".join(pieces)
        assert src.offset == offset
        assert len(data) == src.length
        if src.fd is not None:
            assert os.pread(src.fd, src.length, src.offset) == data
        assert src.unchanged()
    return data


class StorageConformance:
    """Tests any `Storage` must pass. Override `make_storage` in a ``Test...`` subclass."""

    supports_resume: ClassVar[bool] = True
    # Whether a read goes on whole when the content is removed meanwhile (no backend
    # locks content while it is read, as git-annex's server does not): true for backends
    # holding the bytes or an open local file (`ObjectSource.fd`).
    reads_survive_removal: ClassVar[bool] = False
    # False for a backend that, like git-annex, stores a key that cannot be verified by
    # hash even when the sender said INVALID.
    refuses_unverifiable_invalid: ClassVar[bool] = True
    # True for a backend that aborts an upload while another of the same key runs, rather
    # than making it wait (git-annex-shell does).
    uploads_abort_when_busy: ClassVar[bool] = False
    # False for special remotes: git-annex cannot lock content on them (LOCKCONTENT fails).
    locks_content: ClassVar[bool] = True

    @pytest.fixture
    def make_storage(self) -> StorageFactory:
        """Return a factory for fresh, empty storages (subclasses override this)."""
        raise NotImplementedError

    def test_checkpresent_and_store(self, make_storage: StorageFactory) -> None:
        """Checkpresent and store."""

        async def body() -> None:
            log = PresenceRecorder()
            storage = make_storage(presence_log=log)
            data = content(5000)
            key = key_of(data)
            assert not await storage.checkpresent(key)
            await store(storage, data)
            assert await storage.checkpresent(key)
            assert log.calls == [(key, True)]
            assert await read_all(storage, key) == data

        run(body())

    def test_retrieve_offsets(self, make_storage: StorageFactory) -> None:
        """Retrieve offsets."""

        async def body() -> None:
            storage = make_storage()
            data = content(3001, seed=1)
            key = await store(storage, data)
            for offset in (0, 1, 1000, 3000):
                assert await read_all(storage, key, offset, chunk_size=700) == data[offset:]
            for offset in (3001, 5000):
                async with storage.retrieve(key, offset) as src:
                    assert src.length == 0
                    assert [p async for p in src.chunks()] == []

        run(body())

    def test_retrieve_absent(self, make_storage: StorageFactory) -> None:
        """Retrieve absent."""

        async def body() -> None:
            storage = make_storage()
            with pytest.raises(KeyNotPresent):
                async with storage.retrieve(key_of(b"absent")):
                    pass

        run(body())

    def test_empty_object(self, make_storage: StorageFactory) -> None:
        """Empty object."""

        async def body() -> None:
            storage = make_storage()
            key = await store(storage, b"")
            assert await storage.checkpresent(key)
            assert await read_all(storage, key) == b""

        run(body())

    def test_commit_of_present_key_is_a_noop(self, make_storage: StorageFactory) -> None:
        """Commit of present key is a noop."""

        async def body() -> None:
            log = PresenceRecorder()
            storage = make_storage(presence_log=log)
            data = content(100)
            key = await store(storage, data)
            async with storage.upload(key) as up:
                await up.write(b"garbage")
                await up.commit(sender_valid=True)
            assert await read_all(storage, key) == data
            assert log.calls == [(key, True)]

        run(body())

    def test_hash_mismatch_fails_and_discards(self, make_storage: StorageFactory) -> None:
        """Hash mismatch fails and discards."""

        async def body() -> None:
            log = PresenceRecorder()
            storage = make_storage(presence_log=log)
            data = content(2000)
            key = key_of(data)
            bad = data[:-1] + b"!"
            with pytest.raises(VerificationFailed) as info:
                await store(storage, bad, key)
            assert info.value.key == str(key)
            assert not await storage.checkpresent(key)
            async with storage.upload(key) as up:
                assert up.offset == 0
            assert log.calls == []

        run(body())

    def test_size_mismatch_fails(self, make_storage: StorageFactory) -> None:
        """Size mismatch fails."""

        async def body() -> None:
            storage = make_storage()
            data = content(2000)
            key = key_of(data)
            for wrong in (data[:-1], data + b"x"):
                with pytest.raises(VerificationFailed):
                    await store(storage, wrong, key)
                assert not await storage.checkpresent(key)

        run(body())

    def test_unverifiable_key_needs_sender_valid(self, make_storage: StorageFactory) -> None:
        """Unverifiable key needs sender valid."""
        if not self.refuses_unverifiable_invalid:
            pytest.skip("this backend accepts unverifiable content the sender called INVALID")

        async def body() -> None:
            storage = make_storage()
            key = Key.parse("WORM-s5-m1700000000--some_file")
            with pytest.raises(VerificationFailed):
                await store(storage, b"hello", key, sender_valid=False)
            assert not await storage.checkpresent(key)
            await store(storage, b"hello", key)
            assert await read_all(storage, key) == b"hello"

        run(body())

    def test_abandoned_upload_leaves_no_object_and_resumes(
        self, make_storage: StorageFactory
    ) -> None:
        """Abandoned upload leaves no object and resumes."""

        async def body() -> None:
            storage = make_storage()
            data = content(10_000, seed=3)
            key = key_of(data)
            async with storage.upload(key) as up:
                assert up.offset == 0
                await up.write(data[:4000])
            assert not await storage.checkpresent(key)
            with pytest.raises(RuntimeError, match="connection lost"):
                await abandon(storage, key, data[:6000])
            assert not await storage.checkpresent(key)
            async with storage.upload(key) as up:
                if self.supports_resume:
                    assert up.offset == 6000
                await up.write(data[up.offset :])
                await up.commit(sender_valid=True)
            assert await read_all(storage, key) == data

        run(body())

    def test_lock_blocks_remove(self, make_storage: StorageFactory) -> None:
        """Lock blocks remove (or, where content cannot be locked, locking is refused)."""
        if not self.locks_content:

            async def refused() -> None:
                storage = make_storage()
                key = await store(storage, content(300))
                with pytest.raises(ContentLocked):
                    await storage.lock_content(key)
                await storage.remove(key)
                with pytest.raises(KeyNotPresent):
                    await storage.lock_content(key)

            run(refused())
            return

        async def body() -> None:
            log = PresenceRecorder()
            storage = make_storage(presence_log=log)
            key = await store(storage, content(300))
            lock = await storage.lock_content(key)
            second = await storage.lock_content(key)
            with pytest.raises(ContentLocked):
                await storage.remove(key)
            await lock.release()
            await lock.release()
            with pytest.raises(ContentLocked):
                await storage.remove(key)
            await second.release()
            await storage.remove(key)
            assert not await storage.checkpresent(key)
            assert log.calls == [(key, True), (key, False)]
            with pytest.raises(KeyNotPresent):
                await storage.lock_content(key)

        run(body())

    def test_removal_during_a_read_leaves_the_read_whole(
        self, make_storage: StorageFactory
    ) -> None:
        """A removal while a read is open succeeds, and the read still gets every byte."""
        if not self.reads_survive_removal:
            pytest.skip("a removal cuts this backend's reads short")

        async def body() -> None:
            storage = make_storage()
            data = content(300)
            key = await store(storage, data)
            async with storage.retrieve(key, 7) as src:
                await storage.remove(key)
                assert not await storage.checkpresent(key)
                if src.fd is not None:
                    assert os.pread(src.fd, src.length, src.offset) == data[7:]
                assert b"".join([p async for p in src.chunks(100)]) == data[7:]
                assert src.unchanged()

        run(body())

    def test_remove_absent_key(self, make_storage: StorageFactory) -> None:
        """Remove absent key."""

        async def body() -> None:
            log = PresenceRecorder()
            storage = make_storage(presence_log=log)
            await storage.remove(key_of(b"never stored"))
            assert log.calls == []

        run(body())

    def test_remove_before_deadline(self, make_storage: StorageFactory) -> None:
        """Remove before deadline."""

        async def body() -> None:
            storage = make_storage()
            key = await store(storage, content(10))
            with pytest.raises(StorageError) as info:
                await storage.remove(key, before=await storage.timestamp())
            assert not isinstance(info.value, ContentLocked)
            assert await storage.checkpresent(key)
            await storage.remove(key, before=await storage.timestamp() + 600)
            assert not await storage.checkpresent(key)

        run(body())

    def test_timestamp_is_monotonic(self, make_storage: StorageFactory) -> None:
        """Timestamp is monotonic."""

        async def body() -> None:
            storage = make_storage()
            first = await storage.timestamp()
            assert isinstance(first, int)
            assert await storage.timestamp() >= first

        run(body())

    def test_concurrent_uploads_end_with_one_good_object(
        self, make_storage: StorageFactory
    ) -> None:
        """Concurrent uploads end with one good object."""

        async def body() -> None:
            log = PresenceRecorder()
            storage = make_storage(presence_log=log)
            data = content(20_000, seed=5)
            key = key_of(data)
            first_in = asyncio.Event()
            let_first_go = asyncio.Event()
            second_entered = False

            async def first() -> None:
                async with storage.upload(key) as up:
                    await up.write(data[:5000])
                    first_in.set()
                    await let_first_go.wait()
                    assert not second_entered
                    await up.write(data[5000:])
                    await up.commit(sender_valid=True)

            async def second() -> None:
                nonlocal second_entered
                await first_in.wait()
                async with storage.upload(key) as up:
                    second_entered = True
                    await up.write(data[up.offset :])
                    await up.commit(sender_valid=True)

            async with asyncio.TaskGroup() as tg:
                tg.create_task(first())
                tg.create_task(second())
                await first_in.wait()
                for _ in range(20):  # let the second upload run until it must wait
                    await asyncio.sleep(0)
                assert not second_entered
                let_first_go.set()
            assert second_entered
            assert await read_all(storage, key) == data
            assert log.calls == [(key, True)]

        run(body())

    def test_bad_upload_then_good_upload(self, make_storage: StorageFactory) -> None:
        """Bad upload then good upload."""

        async def body() -> None:
            storage = make_storage()
            data = content(7000, seed=9)
            key = key_of(data)
            results: list[str] = []

            async def upload(payload: bytes) -> None:
                try:
                    async with storage.upload(key) as up:
                        await up.write(payload[up.offset :])
                        await up.commit(sender_valid=True)
                    results.append("ok")
                except (VerificationFailed, NodeUnavailable):
                    # A git-annex node aborts a connection whose key is being uploaded.
                    results.append("failed")

            async with asyncio.TaskGroup() as tg:
                tg.create_task(upload(content(7000, seed=10)))
                tg.create_task(upload(data))
            if "ok" not in results and self.uploads_abort_when_busy:
                # git-annex-shell aborts a second upload of a key instead of waiting, so
                # the good one can lose the race; what matters is that nothing bad stays.
                assert not await storage.checkpresent(key)
                await store(storage, data, key)
                results.append("ok")
            # The good upload wins; the bad one fails, or finds the key already there.
            assert "ok" in results
            assert await read_all(storage, key) == data

        run(body())
