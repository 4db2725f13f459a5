"""The client side of the P2P protocol: typed operations on a server over a byte stream.

`P2PClient` speaks to git-annex-shell p2pstdio, annexproxy-shell, or any P2P server: it
checks the server's UUID, negotiates the version, and offers one method per operation of
wire.md 2.6. A server's ``ERROR`` becomes `StorageError`; a connection that breaks or
answers out of turn becomes `NodeUnavailable` and the client is marked broken (it must
not be reused). One request is in flight at a time, as the protocol requires.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

from annexproxy.errors import NodeUnavailable, ProtocolError, StorageError
from annexproxy.keys import Key
from annexproxy.p2p import messages as m
from annexproxy.p2p import versions
from annexproxy.p2p.connection import ConnectionClosed, P2PConnection, PayloadChunk, PayloadEnd
from annexproxy.p2p.states import Role
from annexproxy.transports.driver import Event, P2PDriver
from annexproxy.transports.streams import ByteStream
from annexproxy.uuids import RepoUUID


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """A SUCCESS/FAILURE answer and the other UUIDs a -PLUS form named."""

    ok: bool
    others: tuple[RepoUUID, ...] = ()


def _outcome(event: Event) -> Outcome | None:
    match event:
        case m.Success():
            return Outcome(ok=True)
        case m.Failure():
            return Outcome(ok=False)
        case m.SuccessPlus(uuids=uuids):
            return Outcome(ok=True, others=uuids)
        case m.FailurePlus(uuids=uuids):
            return Outcome(ok=False, others=uuids)
    return None


class P2PClient:
    """A connected, authenticated P2P client."""

    def __init__(
        self,
        driver: P2PDriver,
        uuid: RepoUUID,
        closer: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._driver = driver
        self._closer = closer
        self.uuid = uuid
        self.broken = False
        self._valid = False

    @classmethod
    async def connect(
        cls,
        stream: ByteStream,
        *,
        expected_uuid: str | None = None,
        max_version: int = versions.MAX_VERSION,
        bypass: tuple[RepoUUID, ...] = (),
        closer: Callable[[], Awaitable[object]] | None = None,
    ) -> P2PClient:
        """Read AUTH-SUCCESS (ssh-style servers speak first) and negotiate the version.

        Raises:
            NodeUnavailable: the server did not greet us, or serves another repository.
        """
        driver = P2PDriver(P2PConnection(Role.CLIENT), stream)
        client = cls(driver, RepoUUID(""), closer)
        greeting = await client._receive()
        if not isinstance(greeting, m.AuthSuccess):
            raise NodeUnavailable(f"server did not start with AUTH-SUCCESS but {greeting!r}")
        if expected_uuid is not None and greeting.uuid != expected_uuid:
            raise NodeUnavailable(
                f"server serves repository {greeting.uuid}, not the expected {expected_uuid}"
            )
        client.uuid = greeting.uuid
        if max_version > 0:
            reply = await client._request(m.Version(version=max_version))
            if not isinstance(reply, m.Version | m.Error):
                client._fail(f"expected VERSION, got {reply!r}")
        if bypass and versions.has_plus(client.version):
            await client._send(m.Bypass(uuids=bypass))
        return client

    async def aclose(self) -> None:
        """Close the connection (the server sees EOF and ends cleanly)."""
        if self._closer is not None:
            closer, self._closer = self._closer, None
            await closer()

    @property
    def version(self) -> int:
        """The negotiated protocol version."""
        return self._driver.conn.version

    # --- plumbing ---------------------------------------------------------------------

    def _fail(self, why: str) -> NoReturn:
        self.broken = True
        raise NodeUnavailable(f"P2P connection to {self.uuid or 'server'} failed: {why}")

    async def _send(self, msg: m.Message) -> None:
        if self.broken:
            self._fail("used after it broke")
        try:
            await self._driver.send(msg)
        except (ProtocolError, StorageError) as exc:
            self._fail(str(exc))

    async def _receive(self) -> Event:
        try:
            event = await self._driver.next_event()
        except (ProtocolError, StorageError) as exc:
            self._fail(str(exc))
        if isinstance(event, ConnectionClosed):
            self._fail("the server closed the connection")
        return event

    async def _request(self, msg: m.Message) -> Event:
        await self._send(msg)
        return await self._receive()

    def _server_error(self, reply: Event, what: str) -> StorageError:
        if isinstance(reply, m.Error):
            return StorageError(f"{self.uuid}: {what}: {reply.text}")
        self._fail(f"{what}: unexpected reply {reply!r}")

    async def _outcome_of(self, msg: m.Message, what: str) -> Outcome:
        reply = await self._request(msg)
        outcome = _outcome(reply)
        if outcome is None:
            raise self._server_error(reply, what)
        return outcome

    # --- operations -------------------------------------------------------------------

    async def checkpresent(self, key: Key) -> bool:
        """CHECKPRESENT.

        Raises:
            StorageError: the server cannot tell (ERROR).
            NodeUnavailable: the connection failed.
        """
        return (await self._outcome_of(m.CheckPresent(key=key), f"checkpresent {key}")).ok

    async def lockcontent(self, key: Key) -> bool:
        """LOCKCONTENT; True means locked until `unlockcontent` or the connection ends.

        Raises:
            StorageError: the server answered ERROR.
            NodeUnavailable: the connection failed.
        """
        return (await self._outcome_of(m.LockContent(key=key), f"lockcontent {key}")).ok

    async def unlockcontent(self) -> None:
        """UNLOCKCONTENT (no reply).

        Raises:
            NodeUnavailable: the connection failed.
        """
        await self._send(m.UnlockContent())

    async def remove(self, key: Key, *, before: int | None = None) -> Outcome:
        """REMOVE, or REMOVE-BEFORE when ``before`` (a server timestamp) is given.

        Raises:
            StorageError: ERROR reply (read-only server, ...), or REMOVE-BEFORE asked of a
                server older than v3.
            NodeUnavailable: the connection failed (a git-annex server aborts the
                connection when the content is locked).
        """
        if before is None:
            return await self._outcome_of(m.Remove(key=key), f"remove {key}")
        if not versions.has_timestamps(self.version):
            raise StorageError(f"{self.uuid} speaks v{self.version}; REMOVE-BEFORE needs v3")
        return await self._outcome_of(
            m.RemoveBefore(timestamp=before, key=key), f"remove {key} before {before}"
        )

    async def gettimestamp(self) -> int:
        """GETTIMESTAMP: the server's monotonic clock.

        Raises:
            StorageError: ERROR reply.
            NodeUnavailable: the connection failed.
        """
        reply = await self._request(m.GetTimestamp())
        if not isinstance(reply, m.Timestamp):
            raise self._server_error(reply, "gettimestamp")
        return reply.timestamp

    async def get_start(self, key: Key, offset: int = 0, associated_file: str | None = None) -> int:
        """Send GET and read the DATA line; return how many payload bytes follow.

        Follow with `get_chunks` and then `get_finish`.

        Raises:
            StorageError: ERROR reply.
            NodeUnavailable: the connection failed.
        """
        reply = await self._request(m.Get(offset=offset, associated_file=associated_file, key=key))
        if not isinstance(reply, m.Data):
            raise self._server_error(reply, f"get {key}")
        return reply.length

    async def get_chunks(self) -> AsyncIterator[bytes]:
        """Yield the payload of a GET, then read VALID/INVALID (v1+).

        Raises:
            NodeUnavailable: the connection failed.
        """
        while True:
            event = await self._receive()
            if isinstance(event, PayloadEnd):
                break
            assert isinstance(event, PayloadChunk)
            yield event.data
        self._valid = True
        if versions.has_validity(self.version):
            event = await self._receive()
            if not isinstance(event, m.Valid | m.Invalid):
                self._fail(f"expected VALID or INVALID, got {event!r}")
            self._valid = isinstance(event, m.Valid)

    @property
    def last_get_valid(self) -> bool:
        """Whether the sender said VALID after the last GET payload (always True in v0)."""
        return self._valid

    async def get_finish(self, ok: bool) -> None:
        """Tell the server whether we took the content (SUCCESS or FAILURE).

        Raises:
            NodeUnavailable: the connection failed.
        """
        await self._send(m.Success() if ok else m.Failure())

    async def put_start(self, key: Key, associated_file: str | None = None) -> int | Outcome:
        """Send PUT; return the offset to send from, or the ALREADY-HAVE outcome.

        Raises:
            StorageError: ERROR reply (read-only server, ...).
            NodeUnavailable: the connection failed.
        """
        reply = await self._request(m.Put(associated_file=associated_file, key=key))
        match reply:
            case m.PutFrom(offset=offset):
                return offset
            case m.AlreadyHave():
                return Outcome(ok=True)
            case m.AlreadyHavePlus(uuids=uuids):
                return Outcome(ok=True, others=uuids)
        raise self._server_error(reply, f"put {key}")

    async def put_data(self, length: int) -> None:
        """Announce ``length`` payload bytes after PUT-FROM.

        Raises:
            NodeUnavailable: the connection failed.
        """
        await self._send(m.Data(length=length))

    async def put_chunk(self, data: bytes) -> None:
        """Send payload bytes.

        Raises:
            NodeUnavailable: the connection failed.
        """
        if self.broken:
            self._fail("used after it broke")
        try:
            await self._driver.send_payload(data)
        except (ProtocolError, StorageError) as exc:
            self._fail(str(exc))

    async def put_finish(self, *, valid: bool = True) -> Outcome:
        """Send VALID/INVALID (v1+) and read the server's verdict.

        Raises:
            StorageError: ERROR reply.
            NodeUnavailable: the connection failed.
        """
        if versions.has_validity(self.version):
            await self._send(m.Valid() if valid else m.Invalid())
        reply = await self._receive()
        outcome = _outcome(reply)
        if outcome is None:
            raise self._server_error(reply, "put")
        return outcome
