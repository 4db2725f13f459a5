"""Serve one `Storage` to one P2P client: the server side of wire.md 2.6, over any stream.

`P2PSession.run` answers requests until the client closes, sends ERROR at the top level,
or a fatal error happens, and returns the exit status git-annex-shell would (wire.md 3.4).
It owns the per-connection resources (the held content lock, an upload in progress) and
is the per-connection supervisor: the one place that catches broadly, reports on stderr
(through the injected ``report``), answers ERROR where the protocol allows it and closes
only this connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NoReturn

from annexproxy.errors import (
    AnnexProxyError,
    ContentLocked,
    KeyNotPresent,
    PartialRemoval,
    ProtocolError,
    RemoteProtocolError,
    StorageError,
    VerificationFailed,
)
from annexproxy.keys import Key
from annexproxy.p2p import messages as m
from annexproxy.p2p import versions
from annexproxy.p2p.connection import ConnectionClosed, P2PConnection, PayloadChunk, PayloadEnd
from annexproxy.p2p.states import Role, State
from annexproxy.p2p.wire import UNKNOWN_COMMAND
from annexproxy.storage.base import ContentLock, Storage, Upload
from annexproxy.transports.driver import P2PDriver
from annexproxy.transports.streams import ByteStream
from annexproxy.uuids import RepoUUID

READ_ONLY_ERROR = "this repository is read-only; write access denied"
APPEND_ONLY_ERROR = "this repository is append-only; removal denied"
WRITE_PIECE = 1 << 20
"""Upload bytes gathered before they are written (and fanned out to a cluster's nodes)."""


class AccessMode(enum.Enum):
    """What a client may change (GIT_ANNEX_SHELL_READONLY / APPENDONLY, wire.md 2.6.7)."""

    READ_WRITE = "read-write"
    APPEND_ONLY = "append-only"
    READ_ONLY = "read-only"


class _Close(Exception):
    """Internal: end the session with this exit status."""

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionOptions:
    """How a session serves: access mode and which extras this transport offers."""

    mode: AccessMode = AccessMode.READ_WRITE
    # git-annex-shell p2pstdio offers neither (wire.md 2.6.9, 2.6.10).
    notify_change: bool = False
    connect: bool = False
    # Serving a proxied node ("node") or a cluster ("cluster") through a gateway: git-annex
    # gateways treat protocol mistakes more strictly than plain servers (wire.md 4.4).
    proxied: Literal["node", "cluster"] | None = None


class P2PSession:
    """The server side of one P2P connection."""

    def __init__(
        self,
        storage: Storage,
        stream: ByteStream,
        *,
        options: SessionOptions | None = None,
        report: Callable[[str], None] = lambda _msg: None,
        retarget: Callable[[tuple[RepoUUID, ...]], Awaitable[Storage | None]] | None = None,
    ) -> None:
        """Bind a storage to a stream.

        Args:
            storage: what is served; its UUID is announced in AUTH-SUCCESS.
            stream: the client connection.
            options: access mode and transport extras.
            report: where diagnostics go (stderr for annexproxy-shell).
            retarget: for a cluster, the storage to serve once the client sends BYPASS
                (the cluster without the gateways it lists); None ignores BYPASS.
        """
        self._storage = storage
        self._driver = P2PDriver(P2PConnection(Role.SERVER), stream)
        self._options = options or SessionOptions()
        self._report = report
        self._retarget = retarget
        self._lock: ContentLock | None = None
        self._versioned = False
        self._after_version = False

    @property
    def _conn(self) -> P2PConnection:
        return self._driver.conn

    async def run(self) -> int:
        """Serve until the end of the conversation; return the exit status (0 or 1)."""
        try:
            await self._driver.send(m.AuthSuccess(uuid=self._storage.uuid))
            while True:
                try:
                    event = await self._driver.next_event()
                    self._after_version = False
                    if isinstance(event, ConnectionClosed):
                        return 0
                    await self._handle(event)
                except RemoteProtocolError as exc:
                    await self._release_lock_unless_locked()
                    if exc.fatal:
                        raise
                    if self._options.proxied is not None:
                        after_version, self._after_version = self._after_version, False
                        await self._proxied_mistake(exc, after_version)
                        continue
                    await self._driver.send(m.Error(text=exc.reply))
        except _Close as close:
            if close.message:
                self._report(close.message)
            return close.status
        except (ProtocolError, StorageError) as exc:
            self._report(f"protocol error: {exc}")
            return 1
        except AnnexProxyError as exc:
            self._report(str(exc))
            return 1
        finally:
            await self._release_lock_unless_locked(force=True)

    async def _proxied_mistake(self, exc: RemoteProtocolError, after_version: bool) -> None:
        """What a git-annex gateway does with a bad line (wire.md 4.4, trace 04)."""
        if exc.reply == UNKNOWN_COMMAND:
            # The line right after VERSION might have been a BYPASS: a cluster gateway
            # speaking v2+ drops an unparsable one; otherwise it just ends the connection.
            if self._options.proxied == "cluster" and after_version and self._plus_ok():
                return
            raise _Close(0)
        await self._protocol_error()

    async def _protocol_error(self) -> NoReturn:
        await self._send_quietly(m.Error(text="protocol error"))
        raise _Close(1, "protocol error")

    def _plus_ok(self) -> bool:
        return versions.has_plus(self._conn.version)

    async def _release_lock_unless_locked(self, *, force: bool = False) -> None:
        if self._lock is not None and (force or self._conn.state is not State.LOCKED):
            lock, self._lock = self._lock, None
            await lock.release()

    async def _handle(self, event: object) -> None:
        match event:
            case m.Version(version=requested):
                if self._options.proxied is not None and self._versioned:
                    await self._protocol_error()
                self._versioned = self._after_version = True
                await self._driver.send(m.Version(version=versions.negotiate(requested)))
            case m.Bypass(uuids=uuids):
                if self._retarget is not None and self._options.proxied == "cluster":
                    storage = await self._retarget(tuple(uuids))
                    if storage is not None:
                        self._storage = storage
            case m.CheckPresent(key=key):
                await self._checkpresent(key)
            case m.LockContent(key=key):
                await self._lockcontent(key)
            case m.UnlockContent():
                await self._release_lock_unless_locked()
            case m.Remove(key=key):
                await self._remove(key, None)
            case m.RemoveBefore(timestamp=timestamp, key=key):
                await self._remove(key, timestamp)
            case m.GetTimestamp():
                await self._driver.send(m.Timestamp(timestamp=await self._storage.timestamp()))
            case m.Get(offset=offset, key=key):
                await self._get(key, offset)
            case m.Put(associated_file=af, key=key):
                await self._put(key, af)
            case m.Connect(service=service):
                await self._connect(service)
            case m.NotifyChange():
                if self._options.proxied is not None:
                    await self._protocol_error()
                raise _Close(1, "change notification not available")
            case m.Error(text=text):
                if self._options.proxied is not None:
                    raise _Close(1, f"client error: {text}")
                self._report(f"client reported an error: {text}")
                raise _Close(0)
            case _:
                # Replies the connection let through (SUCCESS after GET, ...) need nothing.
                await self._release_lock_unless_locked()

    async def _checkpresent(self, key: Key) -> None:
        try:
            present = await self._storage.checkpresent(key)
        except StorageError as exc:
            await self._driver.send(m.Error(text=f"cannot check presence of {key}: {exc}"))
            return
        await self._driver.send(m.Success() if present else m.Failure())

    async def _lockcontent(self, key: Key) -> None:
        try:
            self._lock = await self._storage.lock_content(key)
        except StorageError as exc:
            if not isinstance(exc, KeyNotPresent | ContentLocked):
                self._report(f"cannot lock {key}: {exc}")
            await self._driver.send(m.Failure())
            return
        await self._driver.send(m.Success())

    async def _remove(self, key: Key, before: int | None) -> None:
        mode = self._options.mode
        if mode is not AccessMode.READ_WRITE:
            text = READ_ONLY_ERROR if mode is AccessMode.READ_ONLY else APPEND_ONLY_ERROR
            await self._driver.send(m.Error(text=text))
            return
        try:
            others = await self._storage.remove(key, before=before)
        except PartialRemoval as exc:
            self._report(f"cannot remove {key} everywhere: {exc}")
            await self._driver.send(self._plus(m.Failure(), exc.others))
            return
        except StorageError as exc:
            self._report(f"cannot remove {key}: {exc}")
            await self._driver.send(m.Failure())
            return
        await self._driver.send(self._plus(m.Success(), others))

    def _plus(self, plain: m.Success | m.Failure, others: Sequence[str]) -> m.Message:
        """SUCCESS/FAILURE, or the -PLUS form naming ``others`` (v2+, wire.md 4.5-4.6)."""
        if not others or not versions.has_plus(self._conn.version):
            return plain
        uuids = tuple(RepoUUID(u) for u in others)
        return (
            m.SuccessPlus(uuids=uuids)
            if isinstance(plain, m.Success)
            else m.FailurePlus(uuids=uuids)
        )

    def _already_have(self, others: Sequence[str]) -> m.Message:
        if not others or not versions.has_plus(self._conn.version):
            return m.AlreadyHave()
        return m.AlreadyHavePlus(uuids=tuple(RepoUUID(u) for u in others))

    async def _get(self, key: Key, offset: int) -> None:
        validity = versions.has_validity(self._conn.version)
        try:
            async with self._storage.retrieve(key, offset) as source:
                await self._driver.send(m.Data(length=source.length))
                if source.fd is not None:
                    await self._driver.send_file(source.fd, source.offset, source.length)
                else:
                    async for chunk in source.chunks():
                        await self._driver.send_payload(chunk)
                unchanged = source.unchanged()
        except KeyNotPresent:
            await self._driver.send(m.Data(length=0))
            unchanged = False
        except StorageError as exc:
            if self._conn.sending_payload or self._conn.state is not State.AWAIT_GET_DATA:
                raise  # a DATA line was sent and cannot be honoured: close
            self._report(f"cannot send {key}: {exc}")
            await self._driver.send(m.Data(length=0))
            unchanged = False
        if validity:
            await self._driver.send(m.Valid() if unchanged else m.Invalid())

    async def _put(self, key: Key, associated_file: str | None) -> None:
        if self._options.mode is AccessMode.READ_ONLY:
            await self._driver.send(m.Error(text=READ_ONLY_ERROR))
            return
        try:
            async with self._storage.upload(key, associated_file) as upload:
                await self._put_into(key, upload)
        except StorageError as exc:
            if self._conn.state is not State.AWAIT_PUT_REPLY:
                raise
            await self._driver.send(m.Error(text=f"cannot store {key}: {exc}"))

    async def _put_into(self, key: Key, upload: Upload) -> None:
        already = upload.already_have
        if already is not None:
            await self._driver.send(self._already_have(already))
            return
        await self._driver.send(m.PutFrom(offset=upload.offset))
        event = await self._driver.next_event()
        if isinstance(event, m.DataPresent):
            present = await self._storage.checkpresent(key)
            await self._driver.send(m.Success() if present else m.Failure())
            return
        if isinstance(event, m.Error):
            return  # the client gave up before sending; nothing to answer
        if isinstance(event, ConnectionClosed):
            raise _Close(0)
        assert isinstance(event, m.Data)  # the connection allows nothing else here
        try:
            failure = await self._receive_payload(upload.write)
        except RemoteProtocolError as exc:
            if exc.fatal and self._conn.state is State.AWAIT_PUT_RESULT:
                await self._send_quietly(m.Failure())
            raise
        sender_valid = True
        if versions.has_validity(self._conn.version):
            sender_valid = await self._receive_validity()
            if self._conn.state is not State.AWAIT_PUT_RESULT:
                return  # the client sent ERROR: it gave up, and expects no answer
        try:
            if failure is not None:
                raise failure
            others = await upload.commit(sender_valid=sender_valid)
        except VerificationFailed as exc:
            self._report(f"verification of content failed: {exc}")
            await self._driver.send(m.Failure())
            return
        except StorageError as exc:
            self._report(f"cannot store {key}: {exc}")
            await self._driver.send(m.Failure())
            return
        await self._driver.send(self._plus(m.Success(), others))

    async def _receive_validity(self) -> bool:
        """Read VALID or INVALID after an upload; anything else counts as INVALID."""
        try:
            return isinstance(await self._driver.next_event(), m.Valid)
        except RemoteProtocolError as exc:
            if exc.fatal:
                raise
            await self._driver.send(m.Error(text=exc.reply))
            return False

    async def _send_quietly(self, msg: m.Message) -> None:
        """Send a last message to a client that may already be gone."""
        with contextlib.suppress(StorageError):
            await self._driver.send(msg)

    async def _receive_payload(
        self, write: Callable[[bytes], Awaitable[None]]
    ) -> StorageError | None:
        """Read a DATA payload into ``write``; a write failure is returned, not raised.

        The whole payload is always read, so the conversation stays in step. Pieces are
        gathered to `WRITE_PIECE` bytes, and one is written while the next is read: over
        a pipe, nothing reads ahead for us, and every write fans out to each node at a
        cost per piece.
        """
        failure: StorageError | None = None
        writing: asyncio.Task[None] | None = None
        gathered: list[bytes] = []
        size = 0

        async def settle() -> None:
            nonlocal failure, writing
            if writing is None:
                return
            task, writing = writing, None
            try:
                await task
            except StorageError as exc:
                failure = failure or exc

        try:
            while True:
                event = await self._driver.next_event()
                end = isinstance(event, PayloadEnd)
                if isinstance(event, PayloadChunk) and failure is None:
                    gathered.append(event.data)
                    size += len(event.data)
                if end or size >= WRITE_PIECE:
                    await settle()
                    if gathered and failure is None:
                        # (a single piece is joined without a copy)
                        writing = asyncio.ensure_future(write(b"".join(gathered)))
                    gathered, size = [], 0
                if end:
                    await settle()
                    return failure
        finally:
            # A failed read ends the upload. What arrived is still written, in order, so
            # that a later upload resumes after it.
            await settle()
            if gathered and failure is None:
                with contextlib.suppress(StorageError):
                    await write(b"".join(gathered))

    async def _connect(self, service: m.GitService) -> None:
        if service == "git-receive-pack" and self._options.mode is not AccessMode.READ_WRITE:
            await self._driver.send(m.Error(text=READ_ONLY_ERROR))
            raise _Close(0)
        raise _Close(1, "relaying to git not supported on this connection")
