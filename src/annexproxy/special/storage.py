"""A special remote as a `Storage`: verification and chunking over a `RemoteBackend`.

* Uploads stream into the backend while the content is hashed; an unchunked object is
  made visible (committed) only once its hash matched the key, so nothing unverified is
  ever stored under a key's name. Chunked uploads store each chunk as it fills and the
  last one after verification; the chunk log is written only then, and the chunks of
  content that failed are removed. Nothing is spooled to disk or memory.
* Reads stream the object (or its chunks, in order) from the backend; a backend with a
  local file lets the transport use sendfile. A read from an offset asks the backend for
  that offset (in the chunk holding it), and a read that fails part way is resumed from
  the byte after the last one delivered, a bounded number of times (`RESUME_DELAYS`).
* Content cannot be locked on a special remote (git-annex answers FAILURE); REMOVE-BEFORE
  is honoured against the gateway's own clock, which also answers GETTIMESTAMP (the
  request git-annex's gateway leaves unanswered for special remotes).
* Unlike git-annex's gateway, content already on the remote is answered ALREADY-HAVE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Protocol

from annexproxy.branch.journal import vector_clock
from annexproxy.errors import (
    ContentLocked,
    KeyNotPresent,
    NodeUnavailable,
    OutOfSpace,
    StorageError,
    VerificationFailed,
)
from annexproxy.keys import Key
from annexproxy.special import chunking
from annexproxy.special.backend import RemoteBackend, SharedStore, StoreSession
from annexproxy.storage.base import ContentLock, Others, PresenceLog
from annexproxy.storage.contentlock import holding_exclusive
from annexproxy.storage.fileread import open_object, pread_pieces
from annexproxy.storage.hashing import Verifier, verifier_for
from annexproxy.uuids import RepoUUID

log = logging.getLogger(__name__)

_THREAD_HASH = 1 << 16


_UPLOADS: dict[str, tuple[asyncio.Lock, int]] = {}
"""Uploads in this process, by ``"<remote uuid> <key>"``: their lock and users."""


class ChunkLog(Protocol):
    """The gateway's chunk logs (``<key>.log.cnk``), read and changed through its journal."""

    async def read(self, key: Key) -> bytes:
        """The chunk log of ``key`` (``b""`` when there is none)."""
        ...

    async def change(self, key: Key, change: Callable[[bytes], bytes]) -> None:
        """Rewrite the chunk log of ``key`` under the journal lock."""
        ...


RESUME_DELAYS = (0.0, 1.0, 4.0)
"""Seconds to wait before each re-read of a retrieval that failed part way; their number
bounds how often one retrieval is resumed."""


def _resumable(exc: StorageError) -> bool:
    """Whether reading again may help (a lost connection; not an absent or bad object)."""
    return not isinstance(exc, KeyNotPresent | VerificationFailed | OutOfSpace)


class _Source:
    """The content of a key read from its stored objects, resumed where a read broke off.

    When the backend's stream fails part way (a reset connection, a read error), it is
    opened again at the byte after the last one delivered (a ranged GET, a seek; the
    chunk holding that byte for chunked content), at most ``len(delays)`` times.
    """

    def __init__(
        self,
        storage: SpecialRemoteStorage,
        key: Key,
        names: list[Key],
        offset: int,
        length: int,
        path: Path | None,
    ) -> None:
        self._storage = storage
        self._key = key
        self._names = names
        self._offset = offset
        self._length = length
        self._path = path
        self._fd: int | None = None
        self._position = offset
        self._reader: AsyncGenerator[bytes, None] | None = None
        self._first = b""
        self.resumed = 0
        """How many times reading was resumed after a failure (statistics, tests)."""

    @property
    def length(self) -> int:
        return self._length

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def fd(self) -> int | None:
        return self._fd

    async def start(self) -> None:
        """Begin reading, so that a failure to start shows before any byte is promised.

        No such object, no room to spool, the remote unreachable: all are raised here.
        An object in a local file (a directory remote's) is opened here, and read through
        that descriptor.

        Raises:
            StorageError: reading cannot start.
        """
        if self._path is not None:
            self._fd = open_object(self._path, self._key)
            return
        if self._length == 0:
            return
        self._reader = self._read()
        with contextlib.suppress(StopAsyncIteration):
            self._first = await anext(self._reader)

    async def aclose(self) -> None:
        """Stop reading (the backend's stream or the local file is closed)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._reader is not None:
            await self._reader.aclose()

    async def chunks(self, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        if self._fd is not None:
            end = self._offset + self._length
            name = f"{self._key}: {self._path}"
            async for piece in pread_pieces(self._fd, self._offset, end, chunk_size, name):
                yield piece
            return
        if self._reader is None:
            self._reader = self._read()
        first, self._first = self._first, b""
        for i in range(0, len(first), chunk_size):
            yield first[i : i + chunk_size]
        async for piece in self._reader:
            for i in range(0, len(piece), chunk_size):
                yield piece[i : i + chunk_size]

    async def _read(self) -> AsyncGenerator[bytes, None]:
        end = self._offset + self._length
        delays = self._storage.resume_delays
        while self._position < end:
            stream = self._from(self._position)
            try:
                # Read each stream to its end (an external program's transfer then ends
                # cleanly); bytes past the content's length are dropped.
                async for piece in stream:
                    piece = piece[: end - self._position]
                    self._position += len(piece)
                    if piece:
                        yield piece
                if self._position < end:
                    raise NodeUnavailable(
                        f"reading {self._key} from special remote {self._storage.uuid} "
                        f"ended at byte {self._position} of {end}"
                    )
            except StorageError as exc:
                if not _resumable(exc) or self.resumed >= len(delays):
                    raise
                log.warning(
                    "reading %s from special remote %s failed at byte %d (%s); resuming "
                    "there (%d of at most %d)",
                    self._key, self._storage.uuid, self._position, exc,
                    self.resumed + 1, len(delays),
                )  # fmt: skip
                await self._storage.sleep(delays[self.resumed])
                self.resumed += 1
            finally:
                await stream.aclose()

    async def _from(self, position: int) -> AsyncGenerator[bytes, None]:
        index, skip = chunking.locate(self._names, position)
        for name in self._names[index:]:
            pieces = self._storage.backend.retrieve(name, skip)
            try:
                async for piece in pieces:
                    yield piece
            finally:
                close = getattr(pieces, "aclose", None)
                if close is not None:
                    await close()
            skip = 0

    def unchanged(self) -> bool:
        return True


class _Upload:
    def __init__(self, storage: SpecialRemoteStorage, key: Key, already: bool) -> None:
        self._storage = storage
        self._key = key
        self._already = already
        self._verifier: Verifier | None = verifier_for(key)
        self._received = 0
        self._placed = 0  # bytes handed to store sessions
        chunk_size = storage.chunk_size
        if chunk_size is not None and (key.size is None or not chunking.chunkable(key)):
            chunk_size = None
        self._chunk_size = chunk_size
        self._stack = AsyncExitStack()
        self._session: StoreSession | None = None
        self._session_fill = 0
        self._stored: list[Key] = []
        self._pending: Key | None = None
        self._group: object | None = None
        self.done = False

    @property
    def offset(self) -> int:
        return 0

    @property
    def already_have(self) -> Others | None:
        return () if self._already else None

    def share_spool(self, group: object) -> int | None:
        """Share spools with the other uploads of a fan-out (`SpoolSharing`)."""
        if self._received or not isinstance(self._storage.backend, SharedStore):
            return None
        self._group = group
        return sys.maxsize if self._chunk_size is None else self._chunk_size - 1

    def _name(self, number: int) -> Key:
        if self._chunk_size is None:
            return self._key
        return chunking.chunk_keys(self._key, self._chunk_size, number)[-1]

    async def _open(self) -> StoreSession:
        if self._session is None:
            number = len(self._stored) + 1
            name = self._name(number)
            size = self._key.size
            if self._chunk_size is not None and size is not None:
                size = min(self._chunk_size, size - (number - 1) * self._chunk_size)
            backend = self._storage.backend
            self._session = await self._stack.enter_async_context(
                backend.store_shared(name, size, self._group)
                if self._group is not None and isinstance(backend, SharedStore)
                else backend.store(name, size)
            )
            self._pending = name
            self._session_fill = 0
        return self._session

    async def _seal(self) -> None:
        """Commit the current chunk (only before the last one: that waits for the hash)."""
        assert self._session is not None
        assert self._pending is not None
        await self._session.commit()
        self._stored.append(self._pending)
        self._session = None
        self._pending = None

    async def write(self, data: bytes) -> None:
        if self._already:
            return  # the content is there: what is sent is not needed
        if self.done:
            raise StorageError(f"{self._key}: write after the upload ended")
        size = self._key.size
        if size is not None and self._received + len(data) > size:
            raise VerificationFailed(
                f"{self._key}: more bytes than its size",
                key=str(self._key),
                expected=str(size),
                got=str(self._received + len(data)),
            )
        if self._verifier is not None:
            if len(data) >= _THREAD_HASH:
                await asyncio.to_thread(self._verifier.update, data)
            else:
                self._verifier.update(data)
        self._received += len(data)
        view = memoryview(data)
        while view:
            session = await self._open()
            room = len(view)
            if self._chunk_size is not None:
                room = min(room, self._chunk_size - self._session_fill)
            await session.write(bytes(view[:room]))
            self._session_fill += room
            self._placed += room
            view = view[room:]
            if (
                self._chunk_size is not None
                and self._session_fill == self._chunk_size
                and self._placed < (size or 0)
            ):
                await self._seal()  # a full chunk with more to come; the last one waits

    def _verify(self, sender_valid: bool) -> None:
        key = self._key
        if key.size is not None and self._received != key.size:
            raise VerificationFailed(
                f"{key}: got {self._received} of {key.size} bytes",
                key=str(key),
                expected=str(key.size),
                got=str(self._received),
            )
        if self._verifier is None:
            if not sender_valid:
                raise VerificationFailed(
                    f"{key} cannot be verified and the sender said INVALID",
                    key=str(key),
                    expected="VALID",
                    got="INVALID",
                )
        elif not self._verifier.matches():
            raise VerificationFailed(
                f"{key}: content hash {self._verifier.hexdigest()} does not match",
                key=str(key),
                expected=self._verifier.expected,
                got=self._verifier.hexdigest(),
            )

    async def commit(self, *, sender_valid: bool) -> Others:
        if self._already:
            self.done = True
            return ()
        if self.done:
            raise StorageError(f"{self._key}: commit after the upload ended")
        self.done = True
        try:
            self._verify(sender_valid)
        except VerificationFailed:
            await self._remove_stored()
            raise
        await self._open()  # empty content: one empty object (or chunk)
        await self._seal()
        if self._chunk_size is not None:
            await self._storage.log_chunks(self._key, self._chunk_size, len(self._stored))
        if self._storage.presence_log is not None:
            await self._storage.presence_log(self._key, True)
        return ()

    async def _remove_stored(self) -> None:
        for name in self._stored:
            with contextlib.suppress(StorageError):
                await self._storage.backend.remove(name)
        self._stored.clear()

    async def aclose(self) -> None:
        """Abandon what was not committed (stored chunks of unfinished content stay)."""
        await self._stack.aclose()


class SpecialRemoteStorage:
    """A `Storage` for one special remote."""

    def __init__(
        self,
        uuid: RepoUUID,
        backend: RemoteBackend,
        *,
        chunk_size: int | None = None,
        chunk_log: ChunkLog | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        presence_log: PresenceLog | None = None,
        lock_dir: Path | None = None,
        resume_delays: Sequence[float] = RESUME_DELAYS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Serve the remote ``uuid`` stored in ``backend``.

        Args:
            uuid: the special remote's UUID.
            backend: its primitive operations.
            chunk_size: its ``chunk=`` size (None: it does not chunk new uploads).
            chunk_log: the gateway's chunk logs; None reads no chunked layouts.
            monotonic: the gateway's clock (GETTIMESTAMP, REMOVE-BEFORE).
            presence_log: awaited after content was stored (True) or removed (False).
            lock_dir: where uploads take their cross-process lock files
                (``lck.<keyfile>``; the gateway's ``annex/transfer/upload/<uuid>``, as
                git-annex's own uploads to the remote); None: this process only.
            resume_delays: seconds to wait before each re-read of a retrieval that failed
                part way (how many: how often it is resumed at most).
            sleep: waits those seconds (injected by tests).
        """
        self._uuid = uuid
        self.backend = backend
        self.chunk_size = chunk_size
        self._chunk_log = chunk_log
        self._monotonic = monotonic
        self.presence_log = presence_log
        self._lock_dir = lock_dir
        self.resume_delays = tuple(resume_delays)
        self.sleep = sleep

    @property
    def uuid(self) -> RepoUUID:
        """The special remote's UUID."""
        return self._uuid

    async def _recorded(self, key: Key) -> list[tuple[int, int]]:
        if self._chunk_log is None:
            return []
        return chunking.recorded_chunks(await self._chunk_log.read(key), self._uuid)

    async def _all_present(self, names: list[Key]) -> bool:
        for name in names:
            if not await self.backend.present(name):
                return False
        return True

    async def _layout(self, key: Key, *, log_speculative: bool = False) -> list[Key] | None:
        """The stored names of ``key``'s content, or None when it is not all there.

        As git-annex's checkpresent: layouts are tried in order, each up to its first
        missing piece; an error is raised only when the last layout tried failed with
        one (a later layout found missing forgets it). A remote that does not chunk
        looks at the unchunked key before reading the chunk log. With
        ``log_speculative``, content found in the current chunk size's unlogged layout
        is recorded in the chunk log (so a later change of ``chunk=`` still finds it).

        Raises:
            StorageError: the remote could not be asked.
        """
        deferred: StorageError | None = None
        if self.chunk_size is None:
            try:
                if await self._all_present([key]):
                    return [key]
            except StorageError as exc:
                deferred = exc
        recorded = await self._recorded(key)
        for names in chunking.layouts(key, self.chunk_size, recorded):
            if self.chunk_size is None and names == [key]:
                continue  # asked first
            try:
                present = await self._all_present(names)
            except StorageError as exc:
                deferred = exc
                continue
            if present:
                method = _chunk_method(names)
                if log_speculative and method is not None and method not in recorded:
                    await self.log_chunks(key, *method)
                return names
            deferred = None
        if deferred is not None:
            raise deferred
        return None

    async def log_chunks(self, key: Key, chunk_size: int, count: int) -> None:
        """Record in the chunk log that ``count`` chunks of ``chunk_size`` are stored."""
        if self._chunk_log is None:
            return
        now = vector_clock()
        await self._chunk_log.change(
            key, lambda content: chunking.record_chunks(content, self._uuid, chunk_size, count, now)
        )

    async def checkpresent(self, key: Key) -> bool:
        """Whether every stored piece of the content is there."""
        return await self._layout(key, log_speculative=True) is not None

    @asynccontextmanager
    async def retrieve(self, key: Key, offset: int = 0) -> AsyncIterator[_Source]:
        """Stream the content (or its chunks in order) from ``offset``.

        Reading starts before the source is handed over, so that a remote that cannot
        send (or a spool without room) fails before any byte is promised; a read that
        fails part way is resumed where it stopped (`_Source`).

        Raises:
            KeyNotPresent: the content is not on the remote.
            StorageError: reading cannot start.
        """
        names = await self._layout(key)
        if names is None:
            raise KeyNotPresent(f"{key} is not on special remote {self._uuid}", key=str(key))
        path = self.backend.local_path(names[0]) if names == [key] else None
        size = key.size
        if size is None and path is not None:
            size = path.stat().st_size
        if size is None:
            raise StorageError(
                f"{key} has no size field; a special remote cannot say how long it is"
            )
        offset = max(0, min(offset, size))
        source = _Source(self, key, names, offset, size - offset, path)
        try:
            await source.start()
            yield source
        finally:
            await source.aclose()

    @asynccontextmanager
    async def _exclusive(self, key: Key) -> AsyncIterator[None]:
        """Be the only upload of ``key`` to this remote.

        In this process, and with a lock directory in every process of the gateway
        (git-annex's uploads to the remote included).
        """
        name = f"{self._uuid} {key}"
        lock, users = _UPLOADS.get(name, (asyncio.Lock(), 0))
        _UPLOADS[name] = (lock, users + 1)
        try:
            async with lock:
                if self._lock_dir is None:
                    yield
                    return
                path = self._lock_dir / ("lck." + key.keyfile())
                async with holding_exclusive(path, unlink=True):
                    yield
        finally:
            lock, users = _UPLOADS[name]
            if users == 1:
                del _UPLOADS[name]
            else:
                _UPLOADS[name] = (lock, users - 1)

    @asynccontextmanager
    async def upload(self, key: Key, associated_file: str | None = None) -> AsyncIterator[_Upload]:
        """Store ``key``, verified; one upload of a key at a time.

        The content is looked for once the upload is the only one: one that waited for
        another finds what that stored and answers ALREADY-HAVE, so a chunk of verified
        content is never rewritten by a concurrent upload.
        """
        async with self._exclusive(key):
            upload = _Upload(self, key, await self.checkpresent(key))
            try:
                yield upload
            finally:
                await upload.aclose()

    async def lock_content(self, key: Key) -> ContentLock:
        """Refused: a special remote cannot keep content locked (git-annex: FAILURE)."""
        if not await self.checkpresent(key):
            raise KeyNotPresent(f"{key} is not on special remote {self._uuid}", key=str(key))
        raise ContentLocked(
            f"special remote {self._uuid} cannot lock {key}; drop proofs need another copy",
            key=str(key),
        )

    async def remove(self, key: Key, *, before: int | None = None) -> Others:
        """Remove every stored piece of ``key``; record its chunks gone."""
        if before is not None and await self.timestamp() >= before:
            raise StorageError(f"the deadline to remove {key} passed; lock the copies again")
        recorded = await self._recorded(key)
        had = await self._layout(key) is not None
        gone: list[int] = []
        for names in chunking.layouts(key, self.chunk_size, recorded):
            for name in names:
                await self.backend.remove(name)
            method = _chunk_method(names)
            if method is not None and method[0] not in gone:
                gone.append(method[0])
        # As git-annex: every chunk size tried is logged removed, the current one's too
        # (so a removal from a chunked remote always leaves a chunk log line).
        for chunk_size in gone:
            await self.log_chunks(key, chunk_size, 0)
        if had and self.presence_log is not None:
            await self.presence_log(key, False)
        return ()

    async def timestamp(self) -> int:
        """The gateway's clock."""
        return int(self._monotonic())


def _chunk_method(names: list[Key]) -> tuple[int, int] | None:
    """(chunk size, count) of a chunked layout; None for the unchunked key."""
    first = names[0] if names else None
    if first is None or not first.is_chunk or first.chunk_size is None:
        return None
    return first.chunk_size, len(names)
