"""The one loop that pumps a sans-I/O `P2PConnection` over a `ByteStream`.

Like httpcore's ``_receive_event``: ask the connection for an event, and when it needs
data, read some from the stream and feed it. Sending is `send` / `send_payload` /
`send_file`, which keep the connection's accounting and the bytes on the wire in step.
"""

from __future__ import annotations

from annexproxy.errors import StorageError
from annexproxy.p2p import messages as m
from annexproxy.p2p.connection import Event as Event
from annexproxy.p2p.connection import NeedData, P2PConnection
from annexproxy.transports.streams import CHUNK, ByteStream


class P2PDriver:
    """A P2P connection bound to a byte stream."""

    def __init__(self, conn: P2PConnection, stream: ByteStream) -> None:
        self.conn = conn
        self.stream = stream

    async def next_event(self) -> Event:
        """Return the next event, reading from the stream as needed.

        Raises:
            RemoteProtocolError: the peer broke a rule (see `P2PConnection.next_event`).
            NodeUnavailable: the stream failed.
        """
        while True:
            event = self.conn.next_event()
            if not isinstance(event, NeedData):
                return event
            self.conn.receive_data(await self.stream.receive_some(CHUNK))

    async def send(self, msg: m.Message) -> None:
        """Send one message.

        Raises:
            LocalProtocolError: not allowed now.
            NodeUnavailable: the stream failed.
        """
        await self.stream.send_all(self.conn.send(msg))

    async def send_payload(self, data: bytes) -> None:
        """Send payload bytes after a DATA line.

        Raises:
            LocalProtocolError: more than announced.
            NodeUnavailable: the stream failed.
        """
        await self.stream.send_all(self.conn.send_payload(data))

    async def send_file(self, fd: int, offset: int, count: int) -> None:
        """Send payload bytes from a file region, zero-copy where possible.

        Raises:
            StorageError: the file ended early; the connection cannot go on, since a
                DATA line's length can only be honoured or the connection closed.
            NodeUnavailable: the stream failed.
        """
        sent = await self.stream.send_file(fd, offset, count)
        self.conn.payload_sent(sent)
        if sent < count:
            raise StorageError(f"the object file ended after {sent} of {count} bytes")
