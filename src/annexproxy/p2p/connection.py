"""`P2PConnection`: bytes in, events out; messages in, bytes out; and the state between.

The sans-I/O heart of the P2P protocol (STYLE.md habit 1). A driver feeds received bytes
with `receive_data` (``b""`` means EOF) and pulls events with `next_event`; it turns
messages into bytes with `send`. DATA payloads stream through as `PayloadChunk` events
and `send_payload` calls, so nothing buffers a whole object. `_process` is the only
place the conversation state changes; a rule broken by the peer raises
`RemoteProtocolError` (after the state has been reset the way git-annex does, so the
caller only has to send ``ERROR <reply>`` unless the error is fatal), a rule broken by
us raises `LocalProtocolError`. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NoReturn

from annexproxy.errors import LocalProtocolError, RemoteProtocolError
from annexproxy.p2p import messages as m
from annexproxy.p2p import versions
from annexproxy.p2p.buffer import ReceiveBuffer
from annexproxy.p2p.states import (
    AFTER_MISTAKE,
    EXPECTED_REPLY,
    EXPECTED_REPLY_V0,
    NO_VALIDITY_AFTER_DATA,
    PLUS,
    Role,
    State,
    allowed,
)
from annexproxy.p2p.wire import format_message, parse_message

UNEXPECTED_COMMAND: Final = "unexpected command"


@dataclass(frozen=True, slots=True)
class PayloadChunk:
    """Some of the bytes that follow a received ``DATA n``."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PayloadEnd:
    """All ``n`` bytes of a received ``DATA n`` have been delivered."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection at a message boundary."""


class NeedData:
    """Sentinel type: feed more bytes before asking for the next event."""


NEED_DATA: Final = NeedData()

Event = m.Message | PayloadChunk | PayloadEnd | ConnectionClosed


class P2PConnection:
    """One side of a P2P protocol conversation."""

    def __init__(self, our_role: Role, *, state: State = State.START, version: int = 0) -> None:
        """Start a conversation.

        Args:
            our_role: whether we opened the connection (client) or answer (server).
            state: the starting state (IDLE when authentication happened elsewhere).
            version: the protocol version already agreed (0 until VERSION is exchanged).
        """
        self.our_role = our_role
        self._state = state
        self._version = version
        self._requested_version: int | None = None
        self._buffer = ReceiveBuffer()
        self._eof = False
        self._recv_remaining = 0
        self._recv_in_payload = False
        self._send_remaining = 0
        self._remark_due = False

    @property
    def state(self) -> State:
        """The conversation state."""
        return self._state

    @property
    def version(self) -> int:
        """The protocol version in force."""
        return self._version

    @property
    def sending_payload(self) -> int:
        """Payload bytes we still owe after a ``DATA n`` we sent."""
        return self._send_remaining

    # --- receiving ---------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the peer; ``b""`` means the peer closed.

        Raises:
            LocalProtocolError: bytes fed after EOF.
        """
        if self._eof and data:
            raise LocalProtocolError("data received after end of file")
        if data:
            self._buffer.feed(data)
        else:
            self._eof = True

    def next_event(self) -> Event | NeedData:
        """Return the next event, or `NEED_DATA`.

        Raises:
            RemoteProtocolError: the peer broke a rule. Unless ``fatal`` is set the state is
                already reset and the conversation may go on after ``ERROR <reply>``.
        """
        if self._recv_in_payload:
            return self._next_payload_event()
        line = self._buffer.next_line()
        if line is None:
            if not self._eof:
                return NEED_DATA
            if len(self._buffer):
                raise RemoteProtocolError("connection closed in the middle of a line", fatal=True)
            self._state = State.CLOSED
            return ConnectionClosed()
        sender = self.our_role.peer
        try:
            msg = parse_message(line)
        except RemoteProtocolError as exc:
            self._reject(sender, exc, parsed=False)
        self._process(sender, msg, receiving=True)
        if isinstance(msg, m.Data):
            self._recv_remaining = msg.length
            self._recv_in_payload = True
        return msg

    def _next_payload_event(self) -> Event | NeedData:
        if self._recv_remaining == 0:
            self._recv_in_payload = False
            return PayloadEnd()
        chunk = self._buffer.take(self._recv_remaining)
        if chunk:
            self._recv_remaining -= len(chunk)
            return PayloadChunk(chunk)
        if self._eof:
            # A server cut off mid-upload may still say FAILURE before closing, as
            # git-annex does (trace 02 connection A); nothing else can follow.
            uploading = self._state in (State.PUT_VALIDITY, State.AWAIT_PUT_RESULT)
            receiving_upload = uploading and self.our_role is Role.SERVER
            self._state = State.AWAIT_PUT_RESULT if receiving_upload else State.CLOSED
            raise RemoteProtocolError(
                f"connection closed with {self._recv_remaining} bytes of DATA still due",
                fatal=True,
            )
        return NEED_DATA

    def _reject(self, sender: Role, exc: RemoteProtocolError, *, parsed: bool) -> NoReturn:
        """Reset the state after a bad message from the peer and re-raise (wire.md 2.7)."""
        if exc.fatal:
            self._state = State.CLOSED
            raise exc
        state = self._state
        if sender is Role.CLIENT and state in EXPECTED_REPLY:
            table = EXPECTED_REPLY if versions.has_plus(self._version) else EXPECTED_REPLY_V0
            reply = table.get(state, EXPECTED_REPLY[state])
            self._state = AFTER_MISTAKE.get(state, State.IDLE)
            # The ERROR we now send is a remark; the operation goes on (AFTER_MISTAKE).
            self._remark_due = state in AFTER_MISTAKE
        elif sender is Role.CLIENT and state in (State.IDLE, State.START):
            reply = UNEXPECTED_COMMAND if parsed else exc.reply
        else:
            reply = exc.reply if not parsed else f"unexpected message in state {state.value}"
            if sender is Role.SERVER:
                self._state = State.CLOSED
        raise RemoteProtocolError(str(exc), reply=reply, fatal=exc.fatal) from exc

    # --- sending -----------------------------------------------------------------------

    def send(self, msg: m.Message) -> bytes:
        """Turn a message into bytes, checking that we may send it now.

        Raises:
            LocalProtocolError: the message is not allowed in the current state or version.
        """
        if self._send_remaining:
            raise LocalProtocolError(f"{self._send_remaining} payload bytes still due")
        try:
            self._process(self.our_role, msg, receiving=False)
        except RemoteProtocolError as exc:  # our own mistake seen through the shared rules
            raise LocalProtocolError(str(exc)) from exc
        if isinstance(msg, m.Data):
            self._send_remaining = msg.length
        return format_message(msg)

    def send_payload(self, data: bytes) -> bytes:
        """Account for payload bytes and return them unchanged, for writing.

        Raises:
            LocalProtocolError: more bytes than the DATA line announced.
        """
        self.payload_sent(len(data))
        return data

    def payload_sent(self, count: int) -> None:
        """Account for payload bytes written by other means (sendfile).

        Raises:
            LocalProtocolError: more bytes than the DATA line announced.
        """
        if count > self._send_remaining:
            raise LocalProtocolError(
                f"sending {count} payload bytes but only {self._send_remaining} are due"
            )
        self._send_remaining -= count

    # --- the one choke point -------------------------------------------------------------

    def _process(self, sender: Role, msg: m.Message, *, receiving: bool) -> None:
        """Apply ``sender`` sending ``msg`` to the state; the only place state changes.

        Raises:
            RemoteProtocolError: the message is not allowed (the state has been reset).
        """
        kind = type(msg)
        if self._remark_due and sender is self.our_role and kind is m.Error:
            self._remark_due = False
            return
        target = allowed(self._state, sender, kind)
        if target is not None and not self._version_allows(msg):
            target = None
        if target is None:
            exc = RemoteProtocolError(
                f"{kind.__name__} from the {sender.value} is not allowed "
                f"in state {self._state.value} (protocol version {self._version})",
                reply=UNEXPECTED_COMMAND,
            )
            if receiving:
                self._reject(sender, exc, parsed=True)
            raise exc
        if isinstance(msg, m.Version):
            self._apply_version(sender, msg.version)
        if target in NO_VALIDITY_AFTER_DATA and not versions.has_validity(self._version):
            target = NO_VALIDITY_AFTER_DATA[target]
        self._state = target

    def _version_allows(self, msg: m.Message) -> bool:
        if isinstance(msg, PLUS):
            return versions.has_plus(self._version)
        if isinstance(msg, m.DataPresent):
            return versions.has_data_present(self._version)
        return True

    def _apply_version(self, sender: Role, version: int) -> None:
        if sender is Role.CLIENT:
            self._requested_version = version
            return
        requested = self._requested_version if self._requested_version is not None else 0
        if version > requested:
            raise RemoteProtocolError(
                f"server chose version {version}, above the requested {requested}",
                reply="expected VERSION",
            )
        self._version = version
