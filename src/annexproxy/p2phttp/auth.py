"""Who may do what over HTTP: git annex p2phttp's authentication options (wire.md 5.8).

`AuthPolicy.decide` implements the decision procedure that matches every observation of
trace 12: which credentials count, what anonymous users may do, and when a refusal is
401 (with the Basic challenge) rather than 403. Pure: no I/O; users come in as a mapping
built from the environment by the caller.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from annexproxy.p2phttp.api import Endpoint, HttpError

CHALLENGE: Final = {"WWW-Authenticate": 'Basic realm="git-annex", charset="UTF-8"'}
PASSWORD_PREFIX: Final = "GIT_ANNEX_P2PHTTP_PASSWORD_"
PERMISSIONS_PREFIX: Final = "GIT_ANNEX_P2PHTTP_PERMISSIONS_"


class Mode(enum.Enum):
    """What a user may change."""

    READ_ONLY = "readonly"
    APPEND_ONLY = "appendonly"
    READ_WRITE = "readwrite"


class RequestClass(enum.Enum):
    """Kinds of request, by what they change (wire.md 5.8)."""

    READ = "read"
    WRITE = "write"
    REMOVE = "remove"
    LOCK = "lock"


CLASS_OF: Final[dict[Endpoint, RequestClass]] = {
    "key": RequestClass.READ,
    "checkpresent": RequestClass.READ,
    "gettimestamp": RequestClass.READ,
    "put": RequestClass.WRITE,
    "putoffset": RequestClass.WRITE,
    "remove": RequestClass.REMOVE,
    "remove-before": RequestClass.REMOVE,
    "lockcontent": RequestClass.LOCK,
    "keeplocked": RequestClass.LOCK,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """A user defined by GIT_ANNEX_P2PHTTP_PASSWORD_<name>."""

    name: str
    password: str
    mode: Mode = Mode.READ_WRITE


def users_from_environment(env: Mapping[str, str]) -> dict[str, User]:
    """Read users and their permissions from environment variables."""
    users: dict[str, User] = {}
    for var, password in env.items():
        if not var.startswith(PASSWORD_PREFIX):
            continue
        name = var[len(PASSWORD_PREFIX) :]
        permission = env.get(PERMISSIONS_PREFIX + name, "")
        mode = {"readonly": Mode.READ_ONLY, "appendonly": Mode.APPEND_ONLY}.get(
            permission, Mode.READ_WRITE
        )
        users[name] = User(name=name, password=password, mode=mode)
    return users


_BAD_HEADER: Final = "Error parsing header Authorization failed: invalid basic auth header"


def parse_authorization(header: str) -> tuple[bytes, bytes]:
    """Split a Basic ``Authorization`` header into user name and password.

    Grammar: ``"Basic"`` (any case) whitespace base64(``name [":" password]``). As in
    git-annex, a value without ``:`` is a user with an empty password (it will not
    authenticate), while a header that is not Basic, not padded base64, or empty is
    malformed.

    Raises:
        HttpError: (400) the header is malformed (wire.md 5.8).
    """
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise HttpError(400, _BAD_HEADER)
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except binascii.Error as exc:
        raise HttpError(400, _BAD_HEADER) from exc
    if not decoded:
        raise HttpError(400, _BAD_HEADER)
    name, _, password = decoded.partition(b":")
    return name, password


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthPolicy:
    """The authentication options of a server."""

    users: Mapping[str, User] = field(default_factory=dict)
    authenv: bool = False  # users accepted over HTTPS
    authenv_http: bool = False  # users accepted over plain HTTP too
    unauth_readonly: bool = False
    unauth_appendonly: bool = False
    unauth_nolocking: bool = False
    wideopen: bool = False

    @property
    def offers_auth(self) -> bool:
        """Whether users can log in at all."""
        return self.authenv or self.authenv_http

    def _anonymous_mode(self) -> Mode | None:
        if self.wideopen:
            return Mode.READ_WRITE
        if self.unauth_appendonly:
            return Mode.APPEND_ONLY
        if self.unauth_readonly:
            return Mode.READ_ONLY
        return None

    def _authenticate(self, header: str, tls: bool) -> User | None:
        name, password = parse_authorization(header)
        if not (self.authenv_http or (self.authenv and tls)):
            return None
        user = self.users.get(name.decode("utf-8", "surrogateescape"))
        if user is None or not hmac.compare_digest(user.password.encode(), password):
            return None
        return user

    def decide(self, endpoint: Endpoint, authorization: str | None, *, tls: bool) -> Mode:
        """Allow the request (returning the mode it runs in) or raise the refusal.

        Raises:
            HttpError: 401 with the challenge, 403, or 400 for a malformed header.
        """
        request_class = CLASS_OF[endpoint]
        user = self._authenticate(authorization, tls) if authorization is not None else None
        if user is not None:
            mode = user.mode
            offer_auth = False
            anonymous_locking = False
        else:
            anonymous = self._anonymous_mode()
            if anonymous is None:
                raise HttpError(401, headers=CHALLENGE)
            mode = anonymous
            offer_auth = self.offers_auth and authorization is None
            anonymous_locking = not self.unauth_nolocking
        if _allowed(mode, request_class, anonymous_locking):
            return mode
        if offer_auth:
            raise HttpError(401, headers=CHALLENGE)
        raise HttpError(403)


def _allowed(mode: Mode, request_class: RequestClass, anonymous_locking: bool) -> bool:
    if mode is Mode.READ_WRITE:
        return True
    if request_class is RequestClass.LOCK and anonymous_locking:
        return True
    if mode is Mode.APPEND_ONLY:
        return request_class is not RequestClass.REMOVE
    return request_class is RequestClass.READ
