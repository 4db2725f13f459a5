r"""The external special remote protocol, as the git-annex side speaks it. Pure: no I/O.

Owns the line format of the messages exchanged with a ``git-annex-remote-*`` program
(git-annex ``doc/design/external_special_remote_protocol.mdwn``) and the conversation
state: the start-up handshake (``VERSION`` from the program, our ``EXTENSIONS``, its
reply), ``PREPARE``, one request at a time, and the answers to what the program asks
while it handles a request (``GETCONFIG``, ``GETUUID``, ``DIRHASH`` ...). It must not
start processes, read files or the environment: what it needs from outside (settings,
creds) comes in an `ExternalContext`, and `ExternalConversation` returns the bytes to
write and the events to act on.

Line format: a command word, then a fixed number of parameters separated by single
spaces; the last parameter takes the rest of the line and may contain spaces. When
parsing, a parameter ends at the first whitespace character, as git-annex's
``Utility.SimpleProtocol.splitWord`` does; a ``\r`` before the newline is dropped.

Size: over the ~500-line budget (STYLE.md habit 10) because it holds one small frozen
dataclass per wire message (about 40 of them, the single source of truth for the wire
format); the conversation itself is the last ~200 lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

from annexproxy.errors import KeyFormatError, LocalProtocolError, RemoteProtocolError
from annexproxy.keys import Key

# git-annex gives up on a line after 32 KiB without a newline.
MAX_LINE_BYTES = 32 * 1024
SUPPORTED_VERSIONS = frozenset({1, 2})
# Extensions we offer: no ASYNC (one request at a time per process), no DELEGATE and
# no *-URL replies (the gateway does not download URLs for a remote).
OUR_EXTENSIONS = ("INFO", "GETGITREMOTENAME")

_DIGITS = re.compile(r"[0-9]+\Z")
_SPACE = re.compile(r"\s")


class Direction(Enum):
    """The direction of a ``TRANSFER``."""

    STORE = "STORE"
    RETRIEVE = "RETRIEVE"


# --- messages we send ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Extensions:
    """``EXTENSIONS List``: sent by us at start-up, and the program's reply."""

    names: tuple[str, ...]
    COMMAND: ClassVar[str] = "EXTENSIONS"


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepare:
    """``PREPARE``: get ready to be used."""

    COMMAND: ClassVar[str] = "PREPARE"


@dataclass(frozen=True, slots=True, kw_only=True)
class GetOrdered:
    """``GETORDERED``: does TRANSFER RETRIEVE write the file in order?"""

    COMMAND: ClassVar[str] = "GETORDERED"


@dataclass(frozen=True, slots=True, kw_only=True)
class GetCost:
    """``GETCOST``."""

    COMMAND: ClassVar[str] = "GETCOST"


@dataclass(frozen=True, slots=True, kw_only=True)
class GetAvailability:
    """``GETAVAILABILITY``."""

    COMMAND: ClassVar[str] = "GETAVAILABILITY"


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """``TRANSFER STORE|RETRIEVE Key File``; File is the local file to read or write."""

    direction: Direction
    key: Key
    file: str
    COMMAND: ClassVar[str] = "TRANSFER"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckPresent:
    """``CHECKPRESENT Key``."""

    key: Key
    COMMAND: ClassVar[str] = "CHECKPRESENT"


@dataclass(frozen=True, slots=True, kw_only=True)
class Remove:
    """``REMOVE Key``."""

    key: Key
    COMMAND: ClassVar[str] = "REMOVE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Value:
    """``VALUE Text``: our answer to GETCONFIG, GETUUID, DIRHASH ..."""

    text: str
    COMMAND: ClassVar[str] = "VALUE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Creds:
    """``CREDS User Password``: our answer to GETCREDS (both empty: none)."""

    user: str
    password: str
    COMMAND: ClassVar[str] = "CREDS"


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    """``ERROR Message``: either side gives up on the conversation."""

    message: str
    COMMAND: ClassVar[str] = "ERROR"


Request = Prepare | GetOrdered | GetCost | GetAvailability | Transfer | CheckPresent | Remove
Outgoing = Request | Extensions | Value | Creds | Error


def format_message(message: Outgoing) -> bytes:
    """The wire line (with its newline) of a message we send.

    Raises:
        LocalProtocolError: a parameter would break the line (a newline, or a space
            inside a parameter that is not the last one).
    """
    words: list[str] = [message.COMMAND]
    match message:
        case Extensions(names=names):
            words.append(" ".join(names))
        case Transfer(direction=direction, key=key, file=file):
            words += [direction.value, str(key), file]
        case CheckPresent(key=key) | Remove(key=key):
            words.append(str(key))
        case Value(text=text) | Error(message=text):
            words.append(text)
        case Creds(user=user, password=password):
            if _SPACE.search(user):
                raise LocalProtocolError(f"CREDS user {user!r} contains whitespace")
            words += [user, password]
        case _:
            pass
    line = " ".join(words)
    if "\n" in line or "\r" in line:
        raise LocalProtocolError(
            f"cannot send {message.COMMAND}: a parameter contains a line break ({line!r})"
        )
    return line.encode("utf-8", "surrogateescape") + b"\n"


# --- messages the program sends --------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Version:
    """``VERSION Int``: the first thing the program says."""

    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PrepareSuccess:
    """``PREPARE-SUCCESS``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PrepareFailure:
    """``PREPARE-FAILURE ErrorMsg``."""

    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InitRemoteSuccess:
    """``INITREMOTE-SUCCESS`` (parsed; a gateway never sends INITREMOTE)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InitRemoteFailure:
    """``INITREMOTE-FAILURE ErrorMsg``."""

    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferSuccess:
    """``TRANSFER-SUCCESS STORE|RETRIEVE Key``."""

    direction: Direction
    key: Key


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferFailure:
    """``TRANSFER-FAILURE STORE|RETRIEVE Key ErrorMsg``."""

    direction: Direction
    key: Key
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckPresentSuccess:
    """``CHECKPRESENT-SUCCESS Key``."""

    key: Key


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckPresentFailure:
    """``CHECKPRESENT-FAILURE Key``: positively not present."""

    key: Key


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckPresentUnknown:
    """``CHECKPRESENT-UNKNOWN Key ErrorMsg``: presence cannot be determined now."""

    key: Key
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveSuccess:
    """``REMOVE-SUCCESS Key``."""

    key: Key


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveFailure:
    """``REMOVE-FAILURE Key ErrorMsg``."""

    key: Key
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Cost:
    """``COST Int``."""

    cost: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Availability:
    """``AVAILABILITY GLOBAL|LOCAL|UNAVAILABLE``."""

    availability: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ordered:
    """``ORDERED``: TRANSFER RETRIEVE writes the file in order (a proxy may stream it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Unordered:
    """``UNORDERED``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsupportedRequest:
    """``UNSUPPORTED-REQUEST``: the program does not implement our request."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherResponse:
    """A reply we parse but never ask for (``TRANSFER-RETRIEVE-URL``, ``DELEGATE`` ...)."""

    command: str
    rest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """``PROGRESS Int``: bytes of the current transfer done so far."""

    done: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DirHash:
    """``DIRHASH Key`` (``lower``: ``DIRHASH-LOWER``)."""

    key: Key
    lower: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class GetConfig:
    """``GETCONFIG Setting``."""

    setting: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetConfig:
    """``SETCONFIG Setting Value``: changes the setting while this program runs."""

    setting: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetCreds:
    """``GETCREDS Setting``."""

    setting: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SimpleQuery:
    """``GETUUID``, ``GETGITDIR``, ``GETGITREMOTENAME`` or ``GETWANTED``."""

    command: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """``DEBUG`` or ``INFO`` text for the logs; no reply."""

    command: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchRequest:
    """A request about the git-annex branch a gateway backend does not serve.

    ``SETCREDS``, ``SETWANTED``, ``SETSTATE``, ``GETSTATE``, ``SETURLPRESENT``,
    ``SETURLMISSING``, ``SETURIPRESENT``, ``SETURIMISSING``, ``GETURLS``.
    """

    command: str
    rest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteError:
    """``ERROR ErrorMsg`` from the program: it gives up."""

    message: str


Response = (
    Extensions
    | PrepareSuccess
    | PrepareFailure
    | InitRemoteSuccess
    | InitRemoteFailure
    | TransferSuccess
    | TransferFailure
    | CheckPresentSuccess
    | CheckPresentFailure
    | CheckPresentUnknown
    | RemoveSuccess
    | RemoveFailure
    | Cost
    | Availability
    | Ordered
    | Unordered
    | UnsupportedRequest
    | OtherResponse
)
RemoteRequest = (
    Version | Progress | DirHash | GetConfig | SetConfig | GetCreds | SimpleQuery | Notice
)
Incoming = Response | RemoteRequest | BranchRequest | RemoteError

_NO_ARGS: dict[str, Incoming] = {
    "PREPARE-SUCCESS": PrepareSuccess(),
    "INITREMOTE-SUCCESS": InitRemoteSuccess(),
    "ORDERED": Ordered(),
    "UNORDERED": Unordered(),
    "UNSUPPORTED-REQUEST": UnsupportedRequest(),
    "GETUUID": SimpleQuery(command="GETUUID"),
    "GETGITDIR": SimpleQuery(command="GETGITDIR"),
    "GETGITREMOTENAME": SimpleQuery(command="GETGITREMOTENAME"),
    "GETWANTED": SimpleQuery(command="GETWANTED"),
}
_BRANCH = frozenset(
    {
        "SETCREDS",
        "SETWANTED",
        "SETSTATE",
        "GETSTATE",
        "SETURLPRESENT",
        "SETURLMISSING",
        "SETURIPRESENT",
        "SETURIMISSING",
        "GETURLS",
    }
)
# Replies we never ask for; parsed so that they are reported as out of place.
_OTHER = frozenset(
    {
        "TRANSFER-RETRIEVE-URL",
        "CHECKPRESENT-URL",
        "CLAIMURL-SUCCESS",
        "CLAIMURL-FAILURE",
        "CHECKURL-CONTENTS",
        "CHECKURL-MULTI",
        "CHECKURL-FAILURE",
        "WHEREIS-SUCCESS",
        "WHEREIS-FAILURE",
        "CONFIG",
        "CONFIGEND",
        "INFOFIELD",
        "INFOVALUE",
        "INFOEND",
        "EXPORTSUPPORTED-SUCCESS",
        "EXPORTSUPPORTED-FAILURE",
        "DELEGATE",
    }
)


def _split(rest: str, count: int, line: str) -> list[str]:
    """Split ``rest`` into exactly ``count`` parameters; the last takes the remainder."""
    parts: list[str] = []
    for _ in range(count - 1):
        match = _SPACE.search(rest)
        if match is None:
            raise RemoteProtocolError(f"too few parameters in {line!r}")
        parts.append(rest[: match.start()])
        rest = rest[match.end() :]
    parts.append(rest)
    return parts


def _int(text: str, line: str) -> int:
    if not _DIGITS.match(text):
        raise RemoteProtocolError(f"not a number: {text!r} in {line!r}")
    return int(text)


def _key(text: str, line: str) -> Key:
    try:
        return Key.parse(text)
    except KeyFormatError as exc:
        raise RemoteProtocolError(f"bad key in {line!r}: {exc}") from exc


def _direction(text: str, line: str) -> Direction:
    try:
        return Direction(text)
    except ValueError:
        raise RemoteProtocolError(f"not STORE or RETRIEVE: {text!r} in {line!r}") from None


def parse_line(data: bytes) -> Incoming:
    r"""Parse one line the program sent (with or without its newline).

    Grammar: ``line := COMMAND [" " params] ["\r"] "\n"`` with the parameter count
    fixed per command (module docstring).

    Raises:
        RemoteProtocolError: an unknown command, a wrong parameter count, a bad number
            or key, or a line over `MAX_LINE_BYTES`.
    """
    if len(data) > MAX_LINE_BYTES:
        raise RemoteProtocolError(f"line longer than {MAX_LINE_BYTES} bytes", fatal=True)
    line = data.decode("utf-8", "surrogateescape").removesuffix("\n").removesuffix("\r")
    if "\n" in line:
        raise RemoteProtocolError(f"more than one line in {line!r}")
    match = _SPACE.search(line)
    command, rest = (line, "") if match is None else (line[: match.start()], line[match.end() :])
    if command in _NO_ARGS:
        if rest:
            raise RemoteProtocolError(f"{command} takes no parameters: {line!r}")
        return _NO_ARGS[command]
    return _parse_with_args(command, rest, line)


def _parse_with_args(command: str, rest: str, line: str) -> Incoming:
    match command:
        case "VERSION":
            return Version(version=_int(rest, line))
        case "EXTENSIONS":
            return Extensions(names=tuple(rest.split()))
        case "PREPARE-FAILURE":
            return PrepareFailure(error=rest)
        case "INITREMOTE-FAILURE":
            return InitRemoteFailure(error=rest)
        case "TRANSFER-SUCCESS":
            d, k = _split(rest, 2, line)
            return TransferSuccess(direction=_direction(d, line), key=_key(k, line))
        case "TRANSFER-FAILURE":
            d, k, e = _split(rest, 3, line)
            return TransferFailure(direction=_direction(d, line), key=_key(k, line), error=e)
        case "CHECKPRESENT-SUCCESS":
            return CheckPresentSuccess(key=_key(rest, line))
        case "CHECKPRESENT-FAILURE":
            return CheckPresentFailure(key=_key(rest, line))
        case "CHECKPRESENT-UNKNOWN":
            k, e = _split(rest, 2, line)
            return CheckPresentUnknown(key=_key(k, line), error=e)
        case "REMOVE-SUCCESS":
            return RemoveSuccess(key=_key(rest, line))
        case "REMOVE-FAILURE":
            k, e = _split(rest, 2, line)
            return RemoveFailure(key=_key(k, line), error=e)
        case "COST":
            return Cost(cost=_int(rest, line))
        case "AVAILABILITY":
            return Availability(availability=rest)
        case "PROGRESS":
            return Progress(done=_int(rest, line))
        case "DIRHASH" | "DIRHASH-LOWER":
            return DirHash(key=_key(rest, line), lower=command == "DIRHASH-LOWER")
        case "GETCONFIG":
            return GetConfig(setting=rest)
        case "SETCONFIG":
            s, v = _split(rest, 2, line)
            return SetConfig(setting=s, value=v)
        case "GETCREDS":
            return GetCreds(setting=rest)
        case "DEBUG" | "INFO":
            return Notice(command=command, text=rest)
        case "ERROR":
            return RemoteError(message=rest)
    if command in _BRANCH:
        return BranchRequest(command=command, rest=rest)
    if command in _OTHER:
        return OtherResponse(command=command, rest=rest)
    raise RemoteProtocolError(f"unknown command {command!r} in {line!r}")


# --- the conversation ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalContext:
    """What the gateway tells the program about itself and the remote.

    Attributes:
        uuid: the special remote's UUID (GETUUID).
        gitdir: the gateway repository's git directory, absolute (GETGITDIR).
        remote_name: the git remote name (GETGITREMOTENAME).
        config: the remote's ``remote.log`` settings (GETCONFIG).
        creds: looks up the creds of a setting (GETCREDS); None when there are none.
        wanted: the remote's preferred content expression (GETWANTED; ``""`` when
            unset, as git-annex answers); None: not known, answered with ERROR.
    """

    uuid: str
    gitdir: str
    remote_name: str
    config: Mapping[str, str]
    creds: Callable[[str], tuple[str, str] | None] = field(default=lambda _setting: None)
    wanted: str | None = None


class State(Enum):
    """Where the conversation is."""

    AWAIT_VERSION = "await-version"
    AWAIT_EXTENSIONS = "await-extensions"
    IDLE = "idle"
    BUSY = "busy"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """The program's final reply to the current request."""

    response: Response


@dataclass(frozen=True, slots=True, kw_only=True)
class Note:
    """Something to log: DEBUG/INFO text, or a request we could not honour."""

    text: str


Event = Reply | Progress | Note


class ExternalConversation:
    """The state of one conversation with one external special remote program.

    Feed each line the program writes to `receive_line`; write whatever ``bytes`` it
    returns back to the program; act on its events. Start a request with `send` once
    `state` is `State.IDLE`. After a `RemoteProtocolError` or an ``ERROR`` from the
    program the conversation is closed and the program must be stopped.
    """

    def __init__(self, context: ExternalContext) -> None:
        self.context = context
        self.state = State.AWAIT_VERSION
        self.version: int | None = None
        self.extensions: tuple[str, ...] = ()
        self.request: Request | None = None
        # SETCONFIG changes last while this program runs (git-annex does the same).
        self._config = dict(context.config)

    def send(self, request: Request) -> bytes:
        """Start ``request``; return its line.

        Raises:
            LocalProtocolError: another request is in progress, or the handshake is
                not done, or the conversation is closed.
        """
        if self.state is not State.IDLE:
            raise LocalProtocolError(
                f"cannot send {request.COMMAND} while the conversation is {self.state.value}"
            )
        line = format_message(request)
        self.request = request
        self.state = State.BUSY
        return line

    def receive_line(self, data: bytes) -> tuple[bytes, list[Event]]:
        """Process one line from the program.

        Returns:
            The bytes to write back (possibly empty) and the events to act on.

        Raises:
            RemoteProtocolError: the line is malformed or not allowed now; the
                conversation is closed.
        """
        try:
            message = parse_line(data)
            return self._process(message)
        except RemoteProtocolError:
            self.state = State.CLOSED
            raise

    def _process(self, message: Incoming) -> tuple[bytes, list[Event]]:
        if self.state is State.CLOSED:
            raise RemoteProtocolError("the conversation is closed; stop the program")
        if isinstance(message, RemoteError):
            self.state = State.CLOSED
            raise RemoteProtocolError(
                f"external special remote error: {message.message}", reply=message.message
            )
        if self.state is State.AWAIT_VERSION:
            return self._on_version(message)
        if self.state is State.AWAIT_EXTENSIONS:
            return self._on_extensions(message)
        if self.state is State.IDLE:
            raise RemoteProtocolError(f"unexpected {message!r} while no request is running")
        return self._during_request(message)

    def _on_version(self, message: Incoming) -> tuple[bytes, list[Event]]:
        if not isinstance(message, Version):
            raise RemoteProtocolError(f"expected VERSION first, got {message!r}")
        if message.version not in SUPPORTED_VERSIONS:
            self.state = State.CLOSED
            raise RemoteProtocolError(
                f"the program speaks protocol VERSION {message.version}; only 1 and 2 exist",
                reply="unsupported VERSION",
            )
        self.version = message.version
        self.state = State.AWAIT_EXTENSIONS
        return format_message(Extensions(names=OUR_EXTENSIONS)), []

    def _on_extensions(self, message: Incoming) -> tuple[bytes, list[Event]]:
        if isinstance(message, UnsupportedRequest):
            names: tuple[str, ...] = ()
        elif isinstance(message, Extensions):
            names = message.names
        else:
            raise RemoteProtocolError(f"expected an EXTENSIONS reply, got {message!r}")
        unknown = [name for name in names if name not in OUR_EXTENSIONS]
        if unknown:
            raise RemoteProtocolError(
                f"the program wants extensions annexproxy does not offer: {' '.join(unknown)}"
            )
        self.extensions = names
        self.state = State.IDLE
        return b"", []

    def _during_request(self, message: Incoming) -> tuple[bytes, list[Event]]:
        if isinstance(message, Version):
            return format_message(Error(message="too late to send VERSION")), []
        if isinstance(message, Progress):
            return b"", [message]
        if isinstance(message, Notice):
            return b"", [Note(text=f"{message.command}: {message.text}")]
        if isinstance(message, DirHash | GetConfig | SetConfig | GetCreds | SimpleQuery):
            return self._answer(message)
        if isinstance(message, BranchRequest):
            return self._branch_request(message)
        if not isinstance(message, Response):
            raise RemoteProtocolError(f"unexpected {message!r} during a request")
        self._check_reply(message)
        self.request = None
        self.state = State.IDLE
        return b"", [Reply(response=message)]

    def _answer(
        self, message: DirHash | GetConfig | SetConfig | GetCreds | SimpleQuery
    ) -> tuple[bytes, list[Event]]:
        reply: Outgoing | None
        match message:
            case DirHash(key=key, lower=True):
                reply = Value(text=key.hashdir_lower())
            case DirHash(key=key):
                reply = Value(text=key.hashdir_mixed())
            case GetConfig(setting=setting):
                reply = Value(text=self._config.get(setting, ""))
            case SetConfig(setting=setting, value=value):
                self._config[setting] = value
                reply = None
            case GetCreds(setting=setting):
                user, password = self.context.creds(setting) or ("", "")
                reply = Creds(user=user, password=password)
            case SimpleQuery(command="GETUUID"):
                reply = Value(text=self.context.uuid)
            case SimpleQuery(command="GETGITDIR"):
                reply = Value(text=self.context.gitdir)
            case SimpleQuery(command="GETGITREMOTENAME"):
                reply = Value(text=self.context.remote_name)
            case SimpleQuery(command="GETWANTED") if self.context.wanted is not None:
                reply = Value(text=self.context.wanted)
            case SimpleQuery(command=command):
                reply = Error(message=f"annexproxy cannot answer {command}")
        return (b"" if reply is None else format_message(reply)), []

    def _branch_request(self, message: BranchRequest) -> tuple[bytes, list[Event]]:
        note = Note(text=f"{message.command} ignored: annexproxy does not serve it")
        if message.command.startswith("GET"):
            # A reply is expected; git-annex itself answers ERROR where it cannot.
            return format_message(Error(message=f"annexproxy cannot answer {message.command}")), [
                note
            ]
        return b"", [note]

    def _check_reply(self, message: Response) -> None:
        """Raise unless ``message`` answers the current request."""
        request = self.request
        ok = False
        match request, message:
            case Prepare(), PrepareSuccess() | PrepareFailure():
                ok = True
            case GetOrdered(), Ordered() | Unordered() | UnsupportedRequest():
                ok = True
            case GetCost(), Cost() | UnsupportedRequest():
                ok = True
            case GetAvailability(), Availability() | UnsupportedRequest():
                ok = True
            case Transfer(), TransferSuccess() | TransferFailure():
                ok = (message.direction, message.key) == (request.direction, request.key)
            case CheckPresent(), CheckPresentSuccess() | CheckPresentFailure():
                ok = message.key == request.key
            case CheckPresent(), CheckPresentUnknown():
                ok = message.key == request.key
            case Remove(), RemoveSuccess() | RemoveFailure():
                ok = message.key == request.key
        if not ok:
            name = "no request" if request is None else request.COMMAND
            raise RemoteProtocolError(f"reply {message!r} does not answer {name}")
