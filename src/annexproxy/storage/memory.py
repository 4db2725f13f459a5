"""`MemoryStorage`: the `Storage` protocol held in RAM, for tests, the demo and the simulator.

Owns only its dictionaries. Its semantics copy the local repository backend (branch.md
9-10 as seen through `annexproxy.storage.base`): shared content locks block removal
(reads take none), removal makes new locks fail, uploads are exclusive per key and
resumable, and content is verified by size and hash before it becomes present. It must
not touch files or the network; everything happens inside one event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from annexproxy.errors import ContentLocked, KeyNotPresent, StorageError, VerificationFailed
from annexproxy.keys import Key
from annexproxy.storage.base import Others, PresenceLog
from annexproxy.storage.hashing import verifier_for
from annexproxy.uuids import RepoUUID

DEFAULT_UUID = RepoUUID("00000000-0000-4000-8000-00000000f00d")


def check_content(key: Key, data: bytes, *, sender_valid: bool) -> None:
    """Check whole content against its key: size, then hash (or the sender's word).

    Raises:
        VerificationFailed: the size or hash differs, or an unhashable key was not VALID.
    """
    if key.size is not None and len(data) != key.size:
        raise VerificationFailed(
            f"{key}: received {len(data)} bytes, the key says {key.size}; resend it",
            key=str(key),
            expected=str(key.size),
            got=str(len(data)),
        )
    verifier = verifier_for(key)
    if verifier is None:
        if not sender_valid:
            raise VerificationFailed(
                f"{key}: cannot be checked by hash and the sender did not say VALID",
                key=str(key),
                expected="VALID",
                got="INVALID",
            )
        return
    verifier.update(data)
    if not verifier.matches():
        raise VerificationFailed(
            f"{key}: content hashes to {verifier.hexdigest()}; resend it",
            key=str(key),
            expected=verifier.expected,
            got=verifier.hexdigest(),
        )


@dataclass(slots=True, kw_only=True, eq=False)
class _MemorySource:
    data: bytes
    offset: int
    generation: int
    storage: MemoryStorage
    key: Key

    @property
    def length(self) -> int:
        return max(0, len(self.data) - self.offset)

    @property
    def fd(self) -> int | None:
        return None

    async def chunks(self, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        for pos in range(self.offset, len(self.data), chunk_size):
            yield self.data[pos : pos + chunk_size]

    def unchanged(self) -> bool:
        # The bytes were taken at open: only a new store of the key (a new generation)
        # counts as a change, not a removal meanwhile.
        now = self.storage._generations.get(self.key, self.generation)
        return now == self.generation


@dataclass(slots=True, kw_only=True, eq=False)
class _MemoryLock:
    storage: MemoryStorage
    key: Key
    released: bool = False

    async def release(self) -> None:
        if not self.released:
            self.released = True
            self.storage._unlock(self.key)


@dataclass(slots=True, kw_only=True, eq=False)
class _MemoryUpload:
    storage: MemoryStorage
    key: Key
    buffer: bytearray
    offset: int
    already_have: Others | None = None
    committed: bool = False

    async def write(self, data: bytes) -> None:
        if self.committed:
            raise StorageError(f"{self.key}: write after commit")
        self.buffer += data

    async def commit(self, *, sender_valid: bool) -> Others:
        storage, key = self.storage, self.key
        self.committed = True
        if key in storage._objects:
            storage._partial.pop(key, None)
            return ()
        data = bytes(self.buffer)
        storage._partial.pop(key, None)
        check_content(key, data, sender_valid=sender_valid)
        storage._objects[key] = data
        storage._generation += 1
        storage._generations[key] = storage._generation
        if storage.presence_log is not None:
            await storage.presence_log(key, True)
        return ()


@dataclass(slots=True, kw_only=True, eq=False)
class MemoryStorage:
    """A `Storage` whose objects live in a dict.

    Args:
        uuid: the repository UUID it answers for.
        presence_log: awaited after content became present (True) or was removed (False).
        monotonic: the clock behind `timestamp` (seconds).
    """

    uuid: RepoUUID = DEFAULT_UUID
    presence_log: PresenceLog | None = None
    monotonic: Callable[[], float] = time.monotonic
    _objects: dict[Key, bytes] = field(init=False, default_factory=dict)
    _partial: dict[Key, bytearray] = field(init=False, default_factory=dict)
    _locks: dict[Key, int] = field(init=False, default_factory=dict)
    _upload_locks: dict[Key, asyncio.Lock] = field(init=False, default_factory=dict)
    _upload_users: dict[Key, int] = field(init=False, default_factory=dict)
    _generations: dict[Key, int] = field(init=False, default_factory=dict)
    _generation: int = field(init=False, default=0)

    def store_nowait(self, key: Key, data: bytes) -> None:
        """Put verified content in place at once (seeding tests and the simulator).

        Raises:
            VerificationFailed: ``data`` does not match ``key``.
        """
        check_content(key, data, sender_valid=True)
        self._objects[key] = data
        self._generation += 1
        self._generations[key] = self._generation

    def keys(self) -> frozenset[Key]:
        """The keys whose content is present."""
        return frozenset(self._objects)

    async def checkpresent(self, key: Key) -> bool:
        """Tell whether the content of ``key`` is present.

        Raises:
            StorageError: never, in memory; listed for the protocol.
        """
        return key in self._objects

    @asynccontextmanager
    async def retrieve(self, key: Key, offset: int = 0) -> AsyncIterator[_MemorySource]:
        """Open the content of ``key`` from ``offset``.

        No lock, as with the local repository backend: a removal meanwhile does not
        affect the bytes already taken.

        Raises:
            KeyNotPresent: the content is not here.
        """
        data = self._objects.get(key)
        if data is None:
            raise KeyNotPresent(f"{key} is not present in memory storage", key=str(key))
        yield _MemorySource(
            data=data,
            offset=max(0, offset),
            generation=self._generations[key],
            storage=self,
            key=key,
        )

    @asynccontextmanager
    async def upload(
        self, key: Key, associated_file: str | None = None
    ) -> AsyncIterator[_MemoryUpload]:
        """Start or resume an upload of ``key``; waits while another upload of it runs.

        Raises:
            StorageError: never, in memory; listed for the protocol.
        """
        lock = self._upload_locks.setdefault(key, asyncio.Lock())
        self._upload_users[key] = self._upload_users.get(key, 0) + 1
        try:
            async with lock:
                buffer = self._partial.setdefault(key, bytearray())
                if key.size is not None and len(buffer) > key.size:
                    buffer.clear()
                yield _MemoryUpload(
                    storage=self,
                    key=key,
                    buffer=buffer,
                    offset=len(buffer),
                    already_have=() if key in self._objects else None,
                )
        finally:
            self._upload_users[key] -= 1
            if not self._upload_users[key]:
                del self._upload_users[key]
                del self._upload_locks[key]

    async def lock_content(self, key: Key) -> _MemoryLock:
        """Lock the content of ``key`` present until the lock is released.

        Raises:
            KeyNotPresent: nothing to lock.
        """
        if key not in self._objects:
            raise KeyNotPresent(f"{key} is not present in memory storage", key=str(key))
        self._locks[key] = self._locks.get(key, 0) + 1
        return _MemoryLock(storage=self, key=key)

    def _unlock(self, key: Key) -> None:
        count = self._locks.get(key, 0) - 1
        if count > 0:
            self._locks[key] = count
        else:
            self._locks.pop(key, None)

    async def remove(self, key: Key, *, before: int | None = None) -> Others:
        """Remove the content of ``key``; absent content is not an error.

        Raises:
            ContentLocked: the content is locked.
            StorageError: ``before`` has passed.
        """
        if key not in self._objects:
            return ()
        if self._locks.get(key):
            raise ContentLocked(f"{key} is locked and cannot be removed", key=str(key))
        if before is not None and self._now() >= before:
            raise StorageError(f"{key}: removal deadline {before} passed; lock it again")
        del self._objects[key]
        self._generations.pop(key, None)
        if self.presence_log is not None:
            await self.presence_log(key, False)
        return ()

    def _now(self) -> int:
        return int(self.monotonic())

    async def timestamp(self) -> int:
        """The monotonic clock in whole seconds."""
        return self._now()
