"""The P2P protocol's messages as frozen value objects (wire.md 2.3).

One class per command word. The byte form of every message lives only in
`annexproxy.p2p.wire`; this module knows nothing about bytes. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from annexproxy.keys import Key
from annexproxy.uuids import RepoUUID

GitService = Literal["git-upload-pack", "git-receive-pack"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    """``AUTH <client-uuid> <authtoken>`` (network transports)."""

    uuid: RepoUUID
    token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSuccess:
    """``AUTH-SUCCESS <server-uuid>``: names the repository being served."""

    uuid: RepoUUID


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthFailure:
    """``AUTH-FAILURE``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Version:
    """``VERSION <n>``: the client's highest version, then the server's choice."""

    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Bypass:
    """``BYPASS <uuid>...`` (v2+): gateways not to route through."""

    uuids: tuple[RepoUUID, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckPresent:
    """``CHECKPRESENT <key>``."""

    key: Key


@dataclass(frozen=True, slots=True, kw_only=True)
class LockContent:
    """``LOCKCONTENT <key>``."""

    key: Key


@dataclass(frozen=True, slots=True, kw_only=True)
class UnlockContent:
    """``UNLOCKCONTENT`` (no parameters)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Remove:
    """``REMOVE <key>``."""

    key: Key


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveBefore:
    """``REMOVE-BEFORE <timestamp> <key>`` (v3+)."""

    timestamp: int
    key: Key


@dataclass(frozen=True, slots=True, kw_only=True)
class GetTimestamp:
    """``GETTIMESTAMP`` (v3+)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Timestamp:
    """``TIMESTAMP <n>``: the server's monotonic clock in seconds."""

    timestamp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Get:
    """``GET <offset> <af> <key>``; ``associated_file`` None is the empty token."""

    offset: int
    associated_file: str | None
    key: Key


@dataclass(frozen=True, slots=True, kw_only=True)
class Put:
    """``PUT <af> <key>``."""

    associated_file: str | None
    key: Key


@dataclass(frozen=True, slots=True, kw_only=True)
class PutFrom:
    """``PUT-FROM <offset>``."""

    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AlreadyHave:
    """``ALREADY-HAVE``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlreadyHavePlus:
    """``ALREADY-HAVE-PLUS <uuid>...`` (v2+)."""

    uuids: tuple[RepoUUID, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Data:
    """``DATA <len>``; exactly ``length`` raw bytes follow the line."""

    length: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DataPresent:
    """``DATA-PRESENT`` (v4): the content was delivered out of band."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Valid:
    """``VALID``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Invalid:
    """``INVALID``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Success:
    """``SUCCESS``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SuccessPlus:
    """``SUCCESS-PLUS <uuid>...`` (v2+)."""

    uuids: tuple[RepoUUID, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """``FAILURE``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FailurePlus:
    """``FAILURE-PLUS <uuid>...`` (v2+)."""

    uuids: tuple[RepoUUID, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Connect:
    """``CONNECT <service>``: run git over the P2P connection."""

    service: GitService


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectDone:
    """``CONNECTDONE <exitcode>``."""

    exit_code: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyChange:
    """``NOTIFYCHANGE``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Changed:
    """``CHANGED <sha>...``: new object ids of changed refs."""

    shas: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    """``ERROR <text>``."""

    text: str


Message = (
    Auth
    | AuthSuccess
    | AuthFailure
    | Version
    | Bypass
    | CheckPresent
    | LockContent
    | UnlockContent
    | Remove
    | RemoveBefore
    | GetTimestamp
    | Timestamp
    | Get
    | Put
    | PutFrom
    | AlreadyHave
    | AlreadyHavePlus
    | Data
    | DataPresent
    | Valid
    | Invalid
    | Success
    | SuccessPlus
    | Failure
    | FailurePlus
    | Connect
    | ConnectDone
    | NotifyChange
    | Changed
    | Error
)
