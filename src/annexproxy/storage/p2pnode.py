"""`P2PNodeStorage`: a repository reached through the P2P protocol, as a `Storage`.

The node is whatever serves P2P on a byte stream: ``git-annex-shell p2pstdio`` run
locally or over ssh, annexproxy-shell, or another gateway. Connections are made through
the injected ``opener``; one that finished its request cleanly is kept idle for the next
request (no process or ssh start per request), at most ``max_connections`` run at once
(the per-node parallelism bound), and idle ones are closed after ``idle_timeout``
seconds or with `P2PNodeStorage.aclose`. A held content lock keeps its own connection
until released. A pooled connection found dead is replaced once, for requests that can
be repeated. How git-annex servers report trouble is mapped onto the
storage errors: a connection that a git-annex server aborts during REMOVE while the key
is still present means the content is locked (wire.md 2.6.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from annexproxy.errors import (
    ConfigError,
    ContentLocked,
    KeyNotPresent,
    NodeUnavailable,
    PartialRemoval,
    StorageError,
    VerificationFailed,
)
from annexproxy.keys import Key
from annexproxy.storage.base import Others, PresenceLog
from annexproxy.transports.p2p_client import Outcome, P2PClient
from annexproxy.transports.process import ProcessStream
from annexproxy.uuids import RepoUUID

Opener = Callable[[], Awaitable[P2PClient]]
T = TypeVar("T")


def command_opener(
    argv: Sequence[str],
    *,
    expected_uuid: str | None = None,
    env: Mapping[str, str] | None = None,
    bypass: tuple[RepoUUID, ...] = (),
) -> Opener:
    """Open connections by running ``argv`` (e.g. ``git-annex-shell p2pstdio DIR UUID``).

    ``bypass`` is sent as ``BYPASS`` after the version (v2+): gateways not to route
    through (wire.md 4.7).

    Raises:
        NodeUnavailable: (when called) the program cannot be run or does not greet us.
    """

    async def open_connection() -> P2PClient:
        stream = await ProcessStream.start(argv, env=env)
        try:
            return await P2PClient.connect(
                stream, expected_uuid=expected_uuid, bypass=bypass, closer=stream.aclose
            )
        except BaseException:
            await stream.kill()
            raise

    return open_connection


class _NodeSource:
    def __init__(self, client: P2PClient, key: Key, offset: int, length: int) -> None:
        self._client = client
        self._key = key
        self._offset = offset
        self._length = length
        self.consumed = length == 0

    @property
    def length(self) -> int:
        return self._length

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def fd(self) -> int | None:
        return None

    async def chunks(self, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        if self.consumed:
            return
        async for chunk in self._client.get_chunks():
            for start in range(0, len(chunk), chunk_size):
                yield chunk[start : start + chunk_size]
        self.consumed = True

    def unchanged(self) -> bool:
        return self.consumed and self._client.last_get_valid


class _NodeUpload:
    def __init__(self, client: P2PClient, key: Key, start: int | Outcome) -> None:
        self._client = client
        self._key = key
        self.already = isinstance(start, Outcome)
        self._already_others = start.others if isinstance(start, Outcome) else ()
        self._offset = (key.size or 0) if isinstance(start, Outcome) else start
        self._announced: int | None = None
        self._sent = 0
        self.committed = False

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def already_have(self) -> Others | None:
        return self._already_others if self.already else None

    async def _announce(self) -> int:
        if self._announced is None:
            if self._key.size is None:
                raise StorageError(
                    f"{self._key} has no size field; a P2P upload must announce its length"
                )
            self._announced = self._key.size - self._offset
            await self._client.put_data(self._announced)
        return self._announced

    async def write(self, data: bytes) -> None:
        if self.already or not data:
            return
        announced = await self._announce()
        if self._sent + len(data) > announced:
            raise VerificationFailed(
                f"{self._key}: more bytes than its size",
                key=str(self._key),
                expected=str(announced),
                got=str(self._sent + len(data)),
            )
        await self._client.put_chunk(data)
        self._sent += len(data)

    async def commit(self, *, sender_valid: bool) -> Others:
        if self.already:
            self.committed = True
            return self._already_others
        announced = await self._announce()
        if self._sent != announced:
            raise VerificationFailed(
                f"{self._key}: {self._sent} of {announced} bytes sent",
                key=str(self._key),
                expected=str(announced),
                got=str(self._sent),
            )
        outcome = await self._client.put_finish(valid=sender_valid)
        if not outcome.ok:
            raise VerificationFailed(
                f"{self._client.uuid} did not accept {self._key} (FAILURE)",
                key=str(self._key),
                expected="SUCCESS",
                got="FAILURE",
            )
        self.committed = True
        return outcome.others


class _NodeLock:
    def __init__(self, client: P2PClient) -> None:
        self._client: P2PClient | None = client

    async def release(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(NodeUnavailable):
            await client.unlockcontent()
        await client.aclose()


class P2PNodeStorage:
    """A `Storage` whose objects live behind a P2P server."""

    def __init__(
        self,
        uuid: RepoUUID,
        opener: Opener,
        *,
        presence_log: PresenceLog | None = None,
        max_connections: int = 8,
        idle_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Reach the node with UUID ``uuid`` through connections made by ``opener``.

        Raises:
            ConfigError: ``max_connections`` is below 1.
        """
        if max_connections < 1:
            raise ConfigError("max_connections must be at least 1")
        self._uuid = uuid
        self._opener = opener
        self._presence_log = presence_log
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[tuple[float, P2PClient]] = []
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._closed = False

    @property
    def uuid(self) -> RepoUUID:
        """The node's repository UUID."""
        return self._uuid

    async def _take(self) -> tuple[P2PClient, bool]:
        """An idle connection (True) or a new one (False)."""
        now = self._clock()
        while self._idle:
            since, client = self._idle.pop()
            if now - since < self._idle_timeout and not client.broken:
                return client, True
            await client.aclose()
        return await self._opener(), False

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[P2PClient]:
        async with self._slots:
            client, _ = await self._take()
            async with self._keeping(client):
                yield client

    @asynccontextmanager
    async def _keeping(self, client: P2PClient) -> AsyncIterator[None]:
        """Return ``client`` to the pool when the body ends cleanly, else close it."""
        clean = False
        try:
            yield
            clean = True
        finally:
            if clean and not client.broken and not self._closed:
                self._idle.append((self._clock(), client))
            else:
                await client.aclose()

    async def _repeatable(self, request: Callable[[P2PClient], Awaitable[T]]) -> T:
        """Run a request that can be sent twice; a dead pooled connection is replaced."""
        async with self._slots:
            client, pooled = await self._take()
            try:
                async with self._keeping(client):
                    return await request(client)
            except NodeUnavailable:
                if not pooled:
                    raise
            client = await self._opener()
            async with self._keeping(client):
                return await request(client)

    async def aclose(self) -> None:
        """Close the idle connections; later requests open fresh ones and close them."""
        self._closed = True
        idle, self._idle = self._idle, []
        for _, client in idle:
            await client.aclose()

    async def checkpresent(self, key: Key) -> bool:
        """Ask the node (CHECKPRESENT)."""
        return await self._repeatable(lambda client: client.checkpresent(key))

    @asynccontextmanager
    async def retrieve(self, key: Key, offset: int = 0) -> AsyncIterator[_NodeSource]:
        """GET from the node, streaming."""
        async with self._connection() as client:
            length = await client.get_start(key, offset)
            source = _NodeSource(client, key, offset, length)
            if length == 0:
                async for _ in client.get_chunks():
                    pass
                if not client.last_get_valid and offset == 0 and key.size != 0:
                    await client.get_finish(False)
                    raise KeyNotPresent(f"{key} is not on {self._uuid}", key=str(key))
            yield source
            if not source.consumed:
                client.broken = True  # payload still due: the connection cannot go on
                return
            await client.get_finish(True)

    @asynccontextmanager
    async def upload(
        self, key: Key, associated_file: str | None = None
    ) -> AsyncIterator[_NodeUpload]:
        """PUT to the node.

        Leaving without commit cuts the connection; the node keeps the partial bytes for
        a resume, as git-annex does.
        """
        async with self._connection() as client:
            upload = _NodeUpload(client, key, await client.put_start(key, associated_file))
            try:
                yield upload
            except BaseException:
                client.broken = True
                raise
            if not upload.committed:
                client.broken = True
                return
            if not upload.already and self._presence_log is not None:
                await self._presence_log(key, True)

    async def lock_content(self, key: Key) -> _NodeLock:
        """LOCKCONTENT on a connection kept until the lock is released."""
        client = await self._opener()
        try:
            locked = await client.lockcontent(key)
        except BaseException:
            await client.aclose()
            raise
        if locked:
            return _NodeLock(client)
        await client.aclose()
        if await self.checkpresent(key):
            raise ContentLocked(f"{self._uuid} would not lock {key}", key=str(key))
        raise KeyNotPresent(f"{key} is not on {self._uuid}", key=str(key))

    async def remove(self, key: Key, *, before: int | None = None) -> Others:
        """REMOVE (or REMOVE-BEFORE) on the node."""

        async def remove_present(client: P2PClient) -> Outcome | None:
            if not await client.checkpresent(key):
                return None
            return await client.remove(key, before=before)

        try:
            found = await self._repeatable(remove_present)
        except NodeUnavailable as exc:
            # git-annex servers abort the connection when the content is locked.
            if await self.checkpresent(key):
                raise ContentLocked(f"{self._uuid} refused to remove {key}", key=str(key)) from exc
            raise
        if found is None:
            return ()
        outcome = found
        if not outcome.ok:
            if outcome.others:
                raise PartialRemoval(
                    f"{self._uuid} removed {key} only from {' '.join(outcome.others)}",
                    others=outcome.others,
                )
            if before is not None:
                raise StorageError(
                    f"{self._uuid} did not remove {key} before {before}: the deadline passed "
                    "or the content is locked; lock the other copies again and retry"
                )
            raise ContentLocked(f"{self._uuid} refused to remove {key}", key=str(key))
        if self._presence_log is not None:
            await self._presence_log(key, False)
        return outcome.others

    async def timestamp(self) -> int:
        """The node's clock (GETTIMESTAMP)."""
        return await self._repeatable(lambda client: client.gettimestamp())
