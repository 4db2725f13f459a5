"""The byte form of P2P messages: the single source of truth for the wire format.

Owns tokenisation (wire.md 2.2: parameters split off one at a time at the first
whitespace, the last parameter takes the rest of the line), strict integer parsing,
associated-file encoding (wire.md section 1) and message formatting. Any line that does
not parse raises `RemoteProtocolError` with git-annex's reply ``unknown command``.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from annexproxy.errors import AnnexProxyError, RemoteProtocolError
from annexproxy.keys import Key
from annexproxy.p2p import messages as m
from annexproxy.uuids import RepoUUID, parse_uuid

_UNSIGNED = re.compile(r"[0-9]+\Z")
_SIGNED = re.compile(r"-?[0-9]+\Z")
_WHITESPACE = re.compile(r"\s")
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")

UNKNOWN_COMMAND = "unknown command"


class _Unparsable(Exception):
    """Internal: the line does not parse (turned into RemoteProtocolError at the top)."""


def _split(rest: str | None, count: int) -> list[str]:
    """Split ``count`` parameters off ``rest``; the last one takes the remainder."""
    if count == 0:
        if rest is not None:
            raise _Unparsable("parameters given to a message that takes none")
        return []
    if rest is None:
        raise _Unparsable("missing parameters")
    params: list[str] = []
    for _ in range(count - 1):
        match = _WHITESPACE.search(rest)
        if match is None:
            raise _Unparsable("missing parameters")
        params.append(rest[: match.start()])
        rest = rest[match.end() :]
    params.append(rest)
    return params


def _int(text: str) -> int:
    if not _UNSIGNED.match(text):
        raise _Unparsable(f"not a number: {text!r}")
    return int(text)


def _key(text: str) -> Key:
    try:
        return Key.parse(text)
    except AnnexProxyError as exc:
        raise _Unparsable(str(exc)) from exc


def _uuid(text: str) -> RepoUUID:
    try:
        return parse_uuid(text)
    except AnnexProxyError as exc:
        raise _Unparsable(str(exc)) from exc


def _uuids(rest: str | None) -> tuple[RepoUUID, ...]:
    return tuple(_uuid(u) for u in (rest or "").split())


def decode_associated_file(token: str) -> str | None:
    """Decode an associated-file token (wire.md section 1); the empty token is None.

    Raises:
        RemoteProtocolError: the path is absolute.
    """
    if token == "":
        return None
    out: list[str] = []
    i = 0
    while i < len(token):
        c = token[i]
        if c == "%":
            if token.startswith("%%", i):
                out.append("%")
                i += 2
                continue
            out.append("_")
        elif ord(c) < 0x20 or c == "\x7f":
            out.append("_")
        else:
            out.append(c)
        i += 1
    decoded = "".join(out)
    if decoded.startswith("/"):
        raise RemoteProtocolError(f"absolute associated file {decoded!r}", reply=UNKNOWN_COMMAND)
    return decoded


def encode_associated_file(path: str | None) -> str:
    """Encode an associated file for the line protocol: whitespace -> ``%``, ``%`` -> ``%%``."""
    if not path:
        return ""
    return "".join("%%" if c == "%" else "%" if c.isspace() else c for c in path)


def _af(text: str) -> str | None:
    try:
        return decode_associated_file(text)
    except RemoteProtocolError as exc:
        raise _Unparsable(str(exc)) from exc


def _service(text: str) -> m.GitService:
    if text == "git-upload-pack":
        return "git-upload-pack"
    if text == "git-receive-pack":
        return "git-receive-pack"
    raise _Unparsable(f"unknown git service {text!r}")


def _shas(rest: str | None) -> tuple[str, ...]:
    shas = tuple((rest or "").split())
    for sha in shas:
        if not _SHA.match(sha):
            raise _Unparsable(f"not a git object id: {sha!r}")
    return shas


def _exit_code(text: str) -> int:
    if not _SIGNED.match(text):
        raise _Unparsable(f"not an exit code: {text!r}")
    return int(text)


def _auth(rest: str | None) -> m.Message:
    uuid, token = _split(rest, 2)
    return m.Auth(uuid=_uuid(uuid), token=token)


def _get(rest: str | None) -> m.Message:
    offset, af, key = _split(rest, 3)
    return m.Get(offset=_int(offset), associated_file=_af(af), key=_key(key))


def _put(rest: str | None) -> m.Message:
    af, key = _split(rest, 2)
    return m.Put(associated_file=_af(af), key=_key(key))


def _remove_before(rest: str | None) -> m.Message:
    timestamp, key = _split(rest, 2)
    return m.RemoveBefore(timestamp=_int(timestamp), key=_key(key))


def _one(rest: str | None) -> str:
    return _split(rest, 1)[0]


def _none(make: Callable[[], m.Message]) -> Callable[[str | None], m.Message]:
    def parse(rest: str | None) -> m.Message:
        _split(rest, 0)
        return make()

    return parse


_PARSERS: dict[str, Callable[[str | None], m.Message]] = {
    "AUTH": _auth,
    "AUTH-SUCCESS": lambda r: m.AuthSuccess(uuid=_uuid(_one(r))),
    "AUTH-FAILURE": _none(m.AuthFailure),
    "VERSION": lambda r: m.Version(version=_int(_one(r))),
    "BYPASS": lambda r: m.Bypass(uuids=_uuids(r)),
    "CHECKPRESENT": lambda r: m.CheckPresent(key=_key(_one(r))),
    "LOCKCONTENT": lambda r: m.LockContent(key=_key(_one(r))),
    "UNLOCKCONTENT": _none(m.UnlockContent),
    "REMOVE": lambda r: m.Remove(key=_key(_one(r))),
    "REMOVE-BEFORE": _remove_before,
    "GETTIMESTAMP": _none(m.GetTimestamp),
    "TIMESTAMP": lambda r: m.Timestamp(timestamp=_int(_one(r))),
    "GET": _get,
    "PUT": _put,
    "PUT-FROM": lambda r: m.PutFrom(offset=_int(_one(r))),
    "ALREADY-HAVE": _none(m.AlreadyHave),
    "ALREADY-HAVE-PLUS": lambda r: m.AlreadyHavePlus(uuids=_uuids(r)),
    "DATA": lambda r: m.Data(length=_int(_one(r))),
    "DATA-PRESENT": _none(m.DataPresent),
    "VALID": _none(m.Valid),
    "INVALID": _none(m.Invalid),
    "SUCCESS": _none(m.Success),
    "SUCCESS-PLUS": lambda r: m.SuccessPlus(uuids=_uuids(r)),
    "FAILURE": _none(m.Failure),
    "FAILURE-PLUS": lambda r: m.FailurePlus(uuids=_uuids(r)),
    "CONNECT": lambda r: m.Connect(service=_service(_one(r))),
    "CONNECTDONE": lambda r: m.ConnectDone(exit_code=_exit_code(_one(r))),
    "NOTIFYCHANGE": _none(m.NotifyChange),
    "CHANGED": lambda r: m.Changed(shas=_shas(r)),
    "ERROR": lambda r: m.Error(text=r or ""),
}


def parse_message(line: bytes) -> m.Message:
    """Parse one protocol line (without its line terminator).

    Raises:
        RemoteProtocolError: the line is not a message (reply ``unknown command``).
    """
    text = line.decode("utf-8", "surrogateescape")
    command, sep, rest = text.partition(" ")
    parser = _PARSERS.get(command)
    if parser is None:
        raise RemoteProtocolError(f"unknown command word {command[:40]!r}", reply=UNKNOWN_COMMAND)
    try:
        return parser(rest if sep else None)
    except _Unparsable as exc:
        raise RemoteProtocolError(
            f"cannot parse {command} line: {exc}", reply=UNKNOWN_COMMAND
        ) from exc


def _words(uuids: tuple[str, ...]) -> str:
    return "".join(" " + u for u in uuids)


def format_message(msg: m.Message) -> bytes:
    """Turn a message into its line, including the terminating newline."""
    return (_format(msg) + "\n").encode("utf-8", "surrogateescape")


def _format(msg: m.Message) -> str:
    match msg:
        case m.Auth(uuid=uuid, token=token):
            return f"AUTH {uuid} {token}"
        case m.AuthSuccess(uuid=uuid):
            return f"AUTH-SUCCESS {uuid}"
        case m.Version(version=version):
            return f"VERSION {version}"
        case m.Bypass(uuids=uuids):
            return "BYPASS" + _words(uuids)
        case m.CheckPresent(key=key):
            return f"CHECKPRESENT {key}"
        case m.LockContent(key=key):
            return f"LOCKCONTENT {key}"
        case m.Remove(key=key):
            return f"REMOVE {key}"
        case m.RemoveBefore(timestamp=timestamp, key=key):
            return f"REMOVE-BEFORE {timestamp} {key}"
        case m.Timestamp(timestamp=timestamp):
            return f"TIMESTAMP {timestamp}"
        case m.Get(offset=offset, associated_file=af, key=key):
            return f"GET {offset} {encode_associated_file(af)} {key}"
        case m.Put(associated_file=af, key=key):
            return f"PUT {encode_associated_file(af)} {key}"
        case m.PutFrom(offset=offset):
            return f"PUT-FROM {offset}"
        case m.AlreadyHavePlus(uuids=uuids):
            return "ALREADY-HAVE-PLUS" + _words(uuids)
        case m.Data(length=length):
            return f"DATA {length}"
        case m.SuccessPlus(uuids=uuids):
            return "SUCCESS-PLUS" + _words(uuids)
        case m.FailurePlus(uuids=uuids):
            return "FAILURE-PLUS" + _words(uuids)
        case m.Connect(service=service):
            return f"CONNECT {service}"
        case m.ConnectDone(exit_code=code):
            return f"CONNECTDONE {code}"
        case m.Changed(shas=shas):
            return "CHANGED" + _words(shas)
        case m.Error(text=text):
            return f"ERROR {text}"
    return _BARE[type(msg)]


_BARE: dict[type, str] = {
    m.AuthFailure: "AUTH-FAILURE",
    m.UnlockContent: "UNLOCKCONTENT",
    m.GetTimestamp: "GETTIMESTAMP",
    m.AlreadyHave: "ALREADY-HAVE",
    m.DataPresent: "DATA-PRESENT",
    m.Valid: "VALID",
    m.Invalid: "INVALID",
    m.Success: "SUCCESS",
    m.Failure: "FAILURE",
    m.NotifyChange: "NOTIFYCHANGE",
}
